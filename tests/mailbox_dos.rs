//! "The mailbox holder can always get back in": random sequences of what a stranger holding
//! the cédula (and, where it is the proof, the registered email) can do — wrong logins,
//! unlock requests, recovery requests, registration forms, time passing — against an active
//! account of every preset. Then:
//!
//! 1. the member's own request (an unlock link when locked and the preset offers one, a reset
//!    link otherwise) leaves a live link of that kind addressed to the registered email, due
//!    no later than `notices.link_cooldown` after the request;
//! 2. the mails the stranger caused stay within the documented bounds per local day: at most
//!    `1 + 24 h / link_cooldown` links of each kind and `notices.lock_warnings_per_day` lock
//!    warnings.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;

use afiliado::core::{
    AccountRecord, AccountState, Command, Contact, Effect, NoticeKind, Profile, ProofResult,
    Register, SecurityEnrollment, StartRecovery, decide, local_day,
};
use afiliado::crypto::{Digest, HashParams, hash_password};
use afiliado::policy::Proof;
use afiliado::{Email, MemberId, Policy};
use proptest::prelude::*;
use rand::SeedableRng;
use time::macros::datetime;
use time::{Date, Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-11-22 08:00 -5);
const EMAIL: &str = "ana.perez@example.ec";

#[derive(Clone, Debug)]
enum Op {
    WrongLogin,
    RequestUnlock,
    Recovery,
    Register,
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::WrongLogin),
        3 => Just(Op::RequestUnlock),
        3 => Just(Op::Recovery),
        1 => Just(Op::Register),
        3 => (1i64..7_200).prop_map(Op::Advance),
    ]
}

fn email() -> Email {
    EMAIL.parse().unwrap()
}

fn active(policy: &Policy) -> AccountRecord {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut record = AccountRecord::new("1710034065".parse::<MemberId>().unwrap());
    let _ = policy;
    record.state = AccountState::Active {
        profile: Profile {
            password: hash_password(
                b"Clave2026x",
                &HashParams::danger_insecure_for_tests(),
                &mut rng,
            )
            .unwrap(),
            contact: Contact::email_only(email()),
            enrollment: SecurityEnrollment::default(),
            activated_at: T0,
            password_changed_at: T0,
            last_login_at: None,
        },
        failures: Vec::new(),
    };
    record
}

/// Proof verdicts: the member knows every answer; the stranger knows none (but may know the
/// registered email, which `RegisteredEmail` checks from `claimed_email`).
fn proofs(required: &[Proof], known: bool) -> Vec<ProofResult> {
    required
        .iter()
        .filter(|p| **p != Proof::RegisteredEmail)
        .map(|p| ProofResult {
            proof: *p,
            passed: known,
        })
        .collect()
}

struct Run {
    policy: Policy,
    record: AccountRecord,
    now: OffsetDateTime,
    next_digest: u8,
    /// (local day, kind) → notices to the registered address caused by the stranger.
    mails: HashMap<(Date, &'static str), u32>,
}

impl Run {
    fn digest(&mut self) -> Digest {
        self.next_digest = self.next_digest.wrapping_add(1);
        let mut bytes = [0u8; 32];
        bytes[0] = self.next_digest;
        bytes[1] = 0xA5;
        Digest::from_bytes(bytes)
    }

    fn apply(&mut self, cmd: &Command) -> Option<afiliado::core::Decision> {
        match decide(&self.record, cmd, self.now, &self.policy) {
            Ok(d) => {
                self.record = d.next.clone();
                Some(d)
            }
            Err(_) => None,
        }
    }

    fn recovery(&mut self, known: bool) -> Command {
        Command::StartRecovery(StartRecovery {
            claimed_email: Some(email()),
            proofs: proofs(&self.policy.recovery.proofs, known),
            human_verified: true,
            new_email: None,
            link: self.digest(),
        })
    }

    fn stranger(&mut self, op: &Op) {
        let cmd = match op {
            Op::Advance(s) => {
                self.now += Duration::seconds(*s);
                return;
            }
            Op::WrongLogin => Command::Login {
                password_matched: false,
                rehash: None,
            },
            Op::RequestUnlock => Command::RequestUnlock {
                link: self.digest(),
                human_verified: true,
            },
            Op::Recovery => self.recovery(false),
            Op::Register => Command::Register(Register {
                contact: Contact::email_only("otro@example.ec".parse().unwrap()),
                terms_accepted: true,
                proofs: proofs(&self.policy.registration.proofs, false),
                human_verified: true,
                link: self.digest(),
                code: None,
                enrollment: SecurityEnrollment::default(),
                locale: Default::default(),
            }),
        };
        let Some(d) = self.apply(&cmd) else { return };
        for e in &d.effects {
            if let Effect::Notify(n) = e {
                if !n.to.matches(&email()) {
                    continue;
                }
                let kind = match n.kind {
                    NoticeKind::UnlockLink { .. } => "unlock",
                    NoticeKind::ResetLink { .. } => "reset",
                    NoticeKind::Locked { .. } => "lock",
                    NoticeKind::RegistrationAttemptOnActive => "registration",
                    _ => "other",
                };
                let day = local_day(n.not_before.unwrap_or(self.now));
                *self.mails.entry((day, kind)).or_default() += 1;
            }
        }
    }
}

fn check(policy: Policy, ops: Vec<Op>, after: Vec<Op>) -> Result<(), TestCaseError> {
    let mut policy = policy;
    policy.hashing = HashParams::danger_insecure_for_tests();
    let cooldown = Duration::try_from(policy.notices.link_cooldown.unwrap()).unwrap();
    let mut run = Run {
        record: active(&policy),
        policy,
        now: T0,
        next_digest: 0,
        mails: HashMap::new(),
    };
    for op in &ops {
        run.stranger(op);
    }

    // Bound: per local day, per kind.
    let links_per_day = 1 + (24 * 3600) / cooldown.whole_seconds();
    for ((day, kind), n) in &run.mails {
        let bound = match *kind {
            "unlock" | "reset" => u32::try_from(links_per_day).unwrap(),
            "lock" => run.policy.notices.lock_warnings_per_day,
            "registration" => 1,
            _ => 0,
        };
        prop_assert!(*n <= bound, "{day} {kind}: {n} mails > {bound}");
    }

    // The member asks.
    let asked_at = run.now;
    // What the member sees now (locks lift lazily).
    let (settled, _) = afiliado::core::settle(&run.record, run.now, &run.policy);
    let unlock = settled.state.lock().is_some() && run.policy.unlock.link_ttl.is_some();
    let cmd = if unlock {
        Command::RequestUnlock {
            link: run.digest(),
            human_verified: true,
        }
    } else {
        run.recovery(true)
    };
    let d = run.apply(&cmd);
    prop_assert!(d.is_some(), "the member's request is accepted");
    let (live, due) = if unlock {
        let lock = run.record.state.lock().copied();
        (lock.and_then(|l| l.unlock_link), run.record.unlock_link_at)
    } else {
        let reset = match &run.record.state {
            AccountState::Resetting {
                reset,
                new_email: None,
                ..
            } => Some(*reset),
            _ => None,
        };
        (reset, run.record.reset_link_at)
    };
    let live = live.ok_or_else(|| TestCaseError::fail("no link for the member"))?;
    let due = due.ok_or_else(|| TestCaseError::fail("no due time recorded"))?;
    prop_assert!(
        due <= asked_at + cooldown,
        "due {due} > asked {asked_at} + cooldown"
    );
    prop_assert!(
        live.expires_at > due.max(asked_at),
        "the link is live when it arrives"
    );

    // The stranger goes on until the link arrives; then the newest link of that kind in the
    // inbox still works (or, for unlock, the lock has gone anyway).
    let arrival = due.max(asked_at);
    for op in &after {
        match op {
            Op::Advance(s) => run.now = (run.now + Duration::seconds(*s)).min(arrival),
            other => run.stranger(other),
        }
    }
    run.now = arrival;
    let (settled, _) = afiliado::core::settle(&run.record, run.now, &run.policy);
    if unlock {
        if let Some(lock) = settled.state.lock() {
            let link = lock
                .unlock_link
                .ok_or_else(|| TestCaseError::fail("the member's unlock link died"))?;
            prop_assert!(link.is_live(arrival), "dead on arrival");
            prop_assert!(
                settled
                    .unlock_link_at
                    .is_some_and(|d| d <= asked_at + cooldown)
            );
        }
    } else {
        match &settled.state {
            AccountState::Resetting {
                reset,
                new_email: None,
                ..
            } => {
                prop_assert!(reset.is_live(arrival), "dead on arrival");
                prop_assert!(
                    settled
                        .reset_link_at
                        .is_some_and(|d| d <= asked_at + cooldown)
                );
            }
            other => prop_assert!(false, "the member's reset link died: {other:?}"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn isspol_member_always_gets_back_in(
        ops in proptest::collection::vec(op(), 0..120),
        after in proptest::collection::vec(op(), 0..40),
    ) {
        check(Policy::isspol(), ops, after)?;
    }

    #[test]
    fn iess_member_always_gets_back_in(
        ops in proptest::collection::vec(op(), 0..120),
        after in proptest::collection::vec(op(), 0..40),
    ) {
        check(Policy::iess(), ops, after)?;
    }

    #[test]
    fn recommended_member_always_gets_back_in(
        ops in proptest::collection::vec(op(), 0..120),
        after in proptest::collection::vec(op(), 0..40),
    ) {
        check(Policy::recommended(), ops, after)?;
    }
}
