//! Walks an ISSPOL member's whole account lifecycle through the pure core, on virtual time,
//! with real argon2id hashes, real tokens and keyed digests — and an IESS unlock link at its
//! 3-minute edge. Prints every outcome, notice and audit event.
//!
//! ```sh
//! cargo run --example lifecycle
//! ```
//!
//! The core decides; this example plays the service's part (generate tokens, hash, digest,
//! "commit" by keeping the next record). The async service with stores and an outbox comes
//! in the next release.
#![allow(clippy::disallowed_methods)] // an example is a host: it may draw randomness.

use std::error::Error;

use afiliado::core::{
    AccountRecord, Command, Contact, Denied, Effect, Locale, NewPassword, Outcome, ProofResult,
    Register, SecurityEnrollment, StartRecovery, decide,
};
use afiliado::crypto::{
    DigestKey, NumericCode, Token, TokenPurpose, hash_password, verify_password,
};
use afiliado::policy::{Policy, Proof};
use afiliado::{Email, MemberId, Password};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

struct Host {
    policy: Policy,
    key: DigestKey,
    rng: rand::rngs::ThreadRng,
    record: AccountRecord,
}

impl Host {
    fn run(&mut self, label: &str, now: OffsetDateTime, cmd: &Command) -> Result<Outcome, Denied> {
        let result = decide(&self.record, cmd, now, &self.policy);
        let t = now.time();
        match &result {
            Ok(d) => {
                println!(
                    "[{:02}:{:02}] {label}: {:?}",
                    t.hour(),
                    t.minute(),
                    d.outcome
                );
                for e in &d.effects {
                    match e {
                        Effect::Notify(n) => {
                            println!("          mail to {}: {:?}", n.to.masked(), n.kind)
                        }
                        Effect::Audit(a) => println!("          audit: {:?}", a.kind),
                        _ => {}
                    }
                }
                self.record = d.next.clone();
            }
            Err(denied) => println!(
                "[{:02}:{:02}] {label}: denied ({denied})",
                t.hour(),
                t.minute()
            ),
        }
        result.map(|d| d.outcome)
    }

    /// Activation/reset: decide without a hash first; hash only when the core asks for it.
    fn run_with_password(
        &mut self,
        label: &str,
        now: OffsetDateTime,
        mut cmd: Command,
    ) -> Result<Outcome, Denied> {
        if let Err(Denied::HashRequired) = decide(&self.record, &cmd, now, &self.policy) {
            if let Command::Activate { password, .. } | Command::ResetPassword { password, .. } =
                &mut cmd
            {
                let hash = hash_password(
                    password.password.expose_secret().as_bytes(),
                    &self.policy.hashing,
                    &mut self.rng,
                )
                .map_err(|_| Denied::HashRequired)?;
                password.hash = Some(hash);
            }
        }
        self.run(label, now, &cmd)
    }

    fn login(&mut self, now: OffsetDateTime, password: &str) -> Result<Outcome, Denied> {
        // One verification per login (the service uses a dummy hash for unknown IDs).
        let matched = match self.record.password_hash() {
            Some(h) => verify_password(password.as_bytes(), h).unwrap_or(false),
            None => false,
        };
        let label = if matched {
            "login (right password)"
        } else {
            "login (wrong password)"
        };
        self.run(
            label,
            now,
            &Command::Login {
                password_matched: matched,
                rehash: None,
            },
        )
    }
}

fn new_password(text: &str) -> NewPassword {
    NewPassword {
        password: Password::new(text),
        confirmation: Password::new(text),
        hash: None,
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut rng = rand::rng();
    let key = DigestKey::generate(&mut rng);
    let member: MemberId = "  171003406-5 ".parse()?; // as a member types it
    println!(
        "== ISSPOL (the ISSPOL guide and registration manual): member {} ==",
        member.masked()
    );
    let mut host = Host {
        policy: Policy::isspol(),
        key,
        rng,
        record: AccountRecord::new(member.clone()),
    };

    // Registration: affiliate number checked against the registry by the service.
    let link = Token::generate(&mut host.rng);
    let code = NumericCode::generate(4, &mut host.rng)?;
    let email: Email = "ana.quispe@example.ec".parse()?;
    let t0 = datetime!(2026-11-22 19:00 -5);
    host.run(
        "register",
        t0,
        &Command::Register(Register {
            contact: Contact {
                email: email.clone(),
                mobile: Some("099 123 4567".parse()?),
                landline: None,
            },
            terms_accepted: true,
            proofs: vec![ProofResult::passed(Proof::AffiliateNumber)],
            human_verified: false,
            link: host.key.digest_token(TokenPurpose::Activation, &link),
            code: Some(
                host.key
                    .digest_code(TokenPurpose::ActivationCode, member.as_str(), &code),
            ),
            enrollment: SecurityEnrollment::default(),
            locale: Locale::EsEc,
        }),
    )?;

    // The mail scanner opens the link: nothing is consumed.
    let link_digest = host.key.digest_token(TokenPurpose::Activation, &link);
    host.run(
        "open activation link",
        t0 + Duration::minutes(2),
        &Command::InspectActivation { link: link_digest },
    )?;

    // A weak password is refused with every unmet rule (no hashing happens).
    let code_digest = host
        .key
        .digest_code(TokenPurpose::ActivationCode, member.as_str(), &code);
    let weak = Command::Activate {
        link: link_digest,
        code: Some(code_digest),
        password: new_password("clave"),
    };
    if let Err(Denied::PasswordRejected(v)) =
        host.run("activate with 'clave'", t0 + Duration::minutes(3), &weak)
    {
        for rule in v.rules() {
            println!("          · {}", rule.message_es());
        }
    }
    let activate = Command::Activate {
        link: link_digest,
        code: Some(code_digest),
        password: new_password("Policia2026x"),
    };
    host.run_with_password("activate", t0 + Duration::minutes(4), activate)?;

    // Five wrong passwords lock for 20 minutes.
    let mut now = datetime!(2026-11-22 19:36 -5);
    for _ in 0..5 {
        host.login(now, "Equivocada1")?;
        now += Duration::minutes(1);
    }
    host.login(datetime!(2026-11-22 19:59 -5), "Policia2026x")?;
    host.login(datetime!(2026-11-22 20:00 -5), "Policia2026x")?;

    // Forgot password: cédula + registered email.
    let reset = Token::generate(&mut host.rng);
    let reset_digest = host.key.digest_token(TokenPurpose::Reset, &reset);
    let t1 = datetime!(2026-11-23 09:00 -5);
    host.run(
        "forgot password (right email)",
        t1,
        &Command::StartRecovery(StartRecovery {
            claimed_email: Some(email),
            proofs: vec![],
            human_verified: false,
            new_email: None,
            link: reset_digest,
        }),
    )?;
    let cmd = Command::ResetPassword {
        link: reset_digest,
        password: new_password("RioGuayas2027x"),
        declaration_accepted: false,
    };
    host.run_with_password("reset password", t1 + Duration::minutes(5), cmd)?;
    host.login(t1 + Duration::minutes(6), "RioGuayas2027x")?;

    println!();
    println!("== IESS (the IESS steps article): unlock link valid 3 minutes ==");
    let mut iess = Host {
        policy: Policy::iess(),
        key: DigestKey::generate(&mut rand::rng()),
        rng: rand::rng(),
        record: host.record.clone(),
    };
    let t2 = datetime!(2026-11-24 10:00 -5);
    for i in 0..3 {
        iess.login(t2 + Duration::minutes(i), "Equivocada1")?;
    }
    for (label, at) in [("unlock at 3:00", 180), ("unlock at 2:59", 179)] {
        let token = Token::generate(&mut iess.rng);
        let digest = iess.key.digest_token(TokenPurpose::Unlock, &token);
        let asked = t2 + Duration::minutes(5);
        iess.run(
            "request unlock",
            asked,
            &Command::RequestUnlock {
                link: digest,
                human_verified: true,
            },
        )?;
        let _ = iess.run(
            label,
            asked + Duration::seconds(at),
            &Command::Unlock { link: digest },
        );
    }
    Ok(())
}
