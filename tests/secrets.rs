//! Security rules: passwords, tokens, codes and keys never reach `Debug`, `Display`, serde output
//! or errors. Distinctive values are planted and every rendering is scanned for them.

use afiliado::core::{
    AccountRecord, AccountState, Command, Contact, Decision, Denied, Locale, NewPassword, Outcome,
    Profile, ProofResult, Register, StartRecovery, decide,
};
use afiliado::crypto::{
    Digest, DigestKey, DummyHash, HashParams, NumericCode, PasswordHash, Token, TokenPurpose,
    hash_password,
};
use afiliado::password::{PasswordContext, PasswordPolicy, PasswordRule};
use afiliado::policy::Policy;
use afiliado::{Email, MemberId, MobilePhone, Password};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use time::OffsetDateTime;
use time::macros::datetime;

const PLANTED: &str = "PlantedSecret-Clave-1234";
/// Short enough for the IESS maximum (15), with a `-` outside its alphabet.
const PLANTED_SHORT: &str = "Plant-Clave-12";
const NOW: OffsetDateTime = datetime!(2026-11-22 08:00 -5);

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[track_caller]
fn assert_absent(rendered: &str, secret: &str) {
    assert!(!secret.is_empty());
    assert!(
        !rendered.contains(secret),
        "secret {secret:?} leaked into {rendered:?}"
    );
}

/// Debug, pretty Debug.
#[track_caller]
fn assert_debug_clean<T: std::fmt::Debug>(value: &T, secret: &str) {
    assert_absent(&format!("{value:?}"), secret);
    assert_absent(&format!("{value:#?}"), secret);
}

/// Debug, pretty Debug and Display.
#[track_caller]
fn assert_shown_clean<T: std::fmt::Debug + std::fmt::Display>(value: &T, secret: &str) {
    assert_debug_clean(value, secret);
    assert_absent(&value.to_string(), secret);
}

fn member() -> MemberId {
    "1710034065".parse().unwrap()
}

fn email() -> Email {
    "ana@example.ec".parse().unwrap()
}

fn digest_of(key: &DigestKey, purpose: TokenPurpose, token: &Token) -> Digest {
    key.digest_token(purpose, token)
}

/// The longest run of characters that may appear in base64 / PHC salt and hash fields.
fn longest_b64_run(s: &str) -> usize {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/'))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Passwords

#[test]
fn password_debug_is_redacted() {
    for p in [
        Password::new(PLANTED),
        Password::from(PLANTED),
        Password::from(PLANTED.to_owned()),
    ] {
        assert_debug_clean(&p, PLANTED);
        assert_eq!(p.expose_secret(), PLANTED);
    }
}

#[test]
fn new_password_debug_is_redacted() {
    let hash = hash_password(
        PLANTED.as_bytes(),
        &HashParams::danger_insecure_for_tests(),
        &mut rng(1),
    )
    .unwrap();
    let np = NewPassword {
        password: Password::new(PLANTED),
        confirmation: Password::new(PLANTED),
        hash: Some(hash.clone()),
    };
    assert_debug_clean(&np, PLANTED);
    let parts: Vec<&str> = hash.as_str().split('$').collect();
    for part in &parts[parts.len() - 2..] {
        assert_debug_clean(&np, part);
    }
}

#[test]
fn commands_carrying_passwords_are_redacted() {
    let key = DigestKey::from_bytes(&[7; 32]).unwrap();
    let token = Token::generate(&mut rng(2));
    let np = || NewPassword {
        password: Password::new(PLANTED),
        confirmation: Password::new(PLANTED),
        hash: None,
    };
    let code = NumericCode::parse("4321", 4).unwrap();
    let activate = Command::Activate {
        link: digest_of(&key, TokenPurpose::Activation, &token),
        code: Some(key.digest_code(TokenPurpose::ActivationCode, member().as_str(), &code)),
        password: np(),
    };
    let reset = Command::ResetPassword {
        link: digest_of(&key, TokenPurpose::Reset, &token),
        password: np(),
        declaration_accepted: true,
    };
    for cmd in [&activate, &reset] {
        assert_debug_clean(cmd, PLANTED);
        assert_debug_clean(cmd, token.expose_secret());
        assert_debug_clean(cmd, "4321");
    }
}

#[test]
fn password_violations_do_not_echo_the_password() {
    let iess = PasswordPolicy::iess();
    let ctx = PasswordContext::new().with_identifier("1710034065");

    // Too long for IESS (max 15): reported alone.
    let long = iess.check(&Password::new(PLANTED), &ctx).unwrap_err();
    assert_eq!(long.rules(), [PasswordRule::TooLong { max: 15 }]);
    assert_shown_clean(&long, PLANTED);

    // The alphabet rule: '-' is outside ASCII alphanumerics.
    let alpha = iess.check(&Password::new(PLANTED_SHORT), &ctx).unwrap_err();
    assert!(
        alpha.contains(PasswordRule::DisallowedCharacter),
        "{alpha:?}"
    );
    assert_shown_clean(&alpha, PLANTED_SHORT);
    // Not even the offending character's neighbourhood.
    assert_shown_clean(&alpha, "Plant-");
    for msg in alpha.messages_es() {
        assert_absent(&msg, PLANTED_SHORT);
    }

    // Identifier rule: the identifier itself is not secret, but the password is.
    let id_pw = "Clave1710034065";
    let with_id = iess.check(&Password::new(id_pw), &ctx).unwrap_err();
    assert!(
        with_id.contains(PasswordRule::ContainsIdentifier),
        "{with_id:?}"
    );
    assert_shown_clean(&with_id, id_pw);

    for v in [long, alpha, with_id] {
        let denied = Denied::PasswordRejected(v);
        assert_shown_clean(&denied, PLANTED);
        assert_shown_clean(&denied, PLANTED_SHORT);
        assert_shown_clean(&denied, id_pw);
    }
}

#[test]
fn password_deserialisation_errors_do_not_echo_input() {
    let number = "8675309123";
    let err = serde_json::from_str::<Password>(number).unwrap_err();
    assert_shown_clean(&err, number);

    #[derive(Debug, serde::Deserialize)]
    struct Form {
        password: Password,
    }
    for bad in [
        format!("{{\"password\": {number}}}"),
        format!("{{\"password\": -{number}}}"),
        format!("{{\"password\": {number}.5}}"),
        "{\"password\": true}".to_owned(),
    ] {
        let err = serde_json::from_str::<Form>(&bad).unwrap_err();
        assert_shown_clean(&err, number);
        assert!(!err.to_string().contains("true"), "{err}");
    }

    // A valid string still works, and the form's Debug stays redacted.
    let form: Form = serde_json::from_str(&format!("{{\"password\": \"{PLANTED}\"}}")).unwrap();
    assert_eq!(form.password.expose_secret(), PLANTED);
    assert_debug_clean(&form, PLANTED);
}

// ---------------------------------------------------------------------------------------
// Tokens, codes, keys, hashes

#[test]
fn token_debug_is_redacted() {
    let key = DigestKey::from_bytes(&[9; 32]).unwrap();
    for seed in 0..8 {
        let token = Token::generate(&mut rng(seed));
        let secret = token.expose_secret().to_owned();
        assert_eq!(secret.len(), Token::LEN);
        assert_debug_clean(&token, &secret);
        // Any 12-character slice of it would be a leak too.
        assert_debug_clean(&token, &secret[..12]);

        let parsed = Token::parse(&secret).unwrap();
        assert_debug_clean(&parsed, &secret);

        let digest = digest_of(&key, TokenPurpose::Unlock, &token);
        assert_debug_clean(&digest, &secret);
        let unlock = Command::Unlock { link: digest };
        assert_debug_clean(&unlock, &secret);
        assert_debug_clean(&unlock, &secret[..12]);
    }
}

#[test]
fn token_parse_errors_do_not_echo_input() {
    // Wrong length, valid alphabet.
    let short = "PlantedTokenSecret_abc123";
    let err = Token::parse(short).unwrap_err();
    assert!(
        matches!(err, afiliado::crypto::TokenError::Length { .. }),
        "{err:?}"
    );
    assert_shown_clean(&err, short);

    // Too long.
    let long = "PlantedTokenSecret".repeat(4);
    let err = Token::parse(&long).unwrap_err();
    assert_shown_clean(&err, &long);
    assert_shown_clean(&err, "PlantedTokenSecret");

    // Bad characters.
    let odd = "PlantedTokenSecret!!*&";
    let err = Token::parse(odd).unwrap_err();
    assert_shown_clean(&err, "PlantedTokenSecret");

    // Right length, non-canonical last character.
    let nc = format!("{}B", &"PlantedTokenSecret".repeat(3)[..42]);
    assert_eq!(nc.len(), Token::LEN);
    let err = Token::parse(&nc).unwrap_err();
    assert_shown_clean(&err, "PlantedTokenSecret");

    // Through the crate-wide error type too.
    let wrapped = afiliado::crypto::CryptoError::from(Token::parse(short).unwrap_err());
    assert_shown_clean(&wrapped, short);
}

#[test]
fn numeric_code_is_redacted() {
    let mut r = rng(3);
    for digits in [4, 6, 10] {
        for _ in 0..5 {
            let code = NumericCode::generate(digits, &mut r).unwrap();
            assert_debug_clean(&code, code.expose_secret());
        }
    }
    let typed = NumericCode::parse(" 9 8 7 6 5 4 ", 6).unwrap();
    assert_eq!(typed.expose_secret(), "987654");
    assert_debug_clean(&typed, "987654");

    // Parse errors never quote the input.
    for (input, digits) in [("98765432", 4), ("98a6", 4), ("987", 4), ("98765", 3)] {
        let err = NumericCode::parse(input, digits).unwrap_err();
        assert_shown_clean(&err, input);
    }
}

#[test]
fn digest_key_is_redacted() {
    let planted: &[u8] = b"PlantedDigestKey-0123456789-abcdefXYZ";
    assert!(planted.len() >= DigestKey::MIN_LEN);
    let hex: String = planted.iter().map(|b| format!("{b:02x}")).collect();
    let ascii = std::str::from_utf8(planted).unwrap();

    let key = DigestKey::from_bytes(planted).unwrap();
    for rendered in [
        format!("{key:?}"),
        format!("{:?}", key.clone()),
        format!("{key:#?}"),
    ] {
        assert_absent(&rendered, ascii);
        assert_absent(&rendered, "PlantedDigestKey");
        assert_absent(&rendered, &hex);
        assert_absent(&rendered, &hex[..16]);
    }

    // A long key (hashed first) and a generated one.
    let long = ascii.repeat(3);
    let key = DigestKey::from_bytes(long.as_bytes()).unwrap();
    assert_debug_clean(&key, "PlantedDigestKey");

    // Too-short key: the error gives lengths only.
    let short = b"PlantedShortKey";
    let err = DigestKey::from_bytes(short).unwrap_err();
    assert_shown_clean(&err, "PlantedShortKey");
    let short_hex: String = short.iter().map(|b| format!("{b:02x}")).collect();
    assert_shown_clean(&err, &short_hex);
}

#[test]
fn password_hash_debug_hides_salt_and_output() {
    let params = HashParams::danger_insecure_for_tests();
    for seed in 0..4 {
        let hash = hash_password(PLANTED.as_bytes(), &params, &mut rng(seed)).unwrap();
        let phc = hash.as_str().to_owned();
        let parts: Vec<&str> = phc.split('$').collect();
        assert_eq!(parts.len(), 6, "{phc}");
        let shown = format!("{hash:?}");
        for secret in &parts[4..] {
            assert_absent(&shown, secret);
        }
        assert_absent(&shown, &phc);
        assert_absent(&shown, PLANTED);
        // It does say what it is.
        assert!(shown.contains("argon2id"), "{shown}");
        assert!(longest_b64_run(&shown) < 16, "{shown}");
    }
}

#[test]
fn password_hash_errors_do_not_echo_input() {
    let planted_phc = "$argon2id$v=19$m=8,t=1,p=1$PlantedSaltValue$";
    let err = PasswordHash::parse(planted_phc).unwrap_err();
    assert_shown_clean(&err, "PlantedSaltValue");

    let err = serde_json::from_str::<PasswordHash>(&format!("\"{planted_phc}\"")).unwrap_err();
    assert_shown_clean(&err, "PlantedSaltValue");
}

#[test]
fn dummy_hash_debug_hides_salt_and_output() {
    let params = HashParams::danger_insecure_for_tests();
    let mut r = rng(11);
    // DummyHash::new draws 32 secret bytes, then the salt, from the same rng: replaying a
    // clone of the rng reproduces its PHC string, so we know what must not be shown.
    let mut replay = r.clone();
    let dummy = DummyHash::new(&params, &mut r).unwrap();
    let mut secret = [0u8; 32];
    replay.fill_bytes(&mut secret);
    let phc = hash_password(&secret, &params, &mut replay).unwrap();
    let phc = phc.as_str();
    let parts: Vec<&str> = phc.split('$').collect();

    // Same amount of randomness consumed: the replay is faithful (otherwise only the
    // replay-independent check below applies).
    let replay_faithful = r.next_u64() == replay.next_u64();

    let shown = format!("{dummy:?}");
    let pretty = format!("{dummy:#?}");
    for rendered in [&shown, &pretty] {
        if replay_faithful {
            for secret in &parts[4..] {
                assert_absent(rendered, secret);
            }
        }
        // Independently of the replay: no salt-sized (22) or output-sized (43) base64 run.
        assert!(longest_b64_run(rendered) < 16, "{rendered}");
    }
    assert!(!dummy.verify(PLANTED.as_bytes()));
}

// ---------------------------------------------------------------------------------------
// Serde output of records and decisions

fn active_record(hash: PasswordHash) -> AccountRecord {
    let mut record = AccountRecord::new(member());
    record.state = AccountState::Active {
        profile: Profile {
            password: hash,
            contact: Contact::email_only(email()),
            enrollment: Default::default(),
            activated_at: NOW,
            password_changed_at: NOW,
            last_login_at: Some(NOW),
        },
        failures: vec![NOW],
    };
    record
}

#[test]
fn active_record_serialises_without_the_password() {
    let hash = hash_password(
        PLANTED.as_bytes(),
        &HashParams::danger_insecure_for_tests(),
        &mut rng(5),
    )
    .unwrap();
    let phc = hash.as_str().to_owned();
    let record = active_record(hash);

    let json = serde_json::to_string(&record).unwrap();
    assert_absent(&json, PLANTED);
    // The hash is what is stored…
    assert!(json.contains(&phc), "{json}");
    // …and round-trips.
    let back: AccountRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, record);

    // Debug of the record shows neither the password nor the hash's salt and output.
    let parts: Vec<&str> = phc.split('$').collect();
    assert_debug_clean(&record, PLANTED);
    for secret in &parts[4..] {
        assert_debug_clean(&record, secret);
    }
}

/// Everything one flow produced, for scanning.
struct Flow {
    /// Secret texts (passwords, tokens, quoted codes) that must never appear.
    secrets: Vec<String>,
    /// Rendered outputs: serde JSON of records and effects, Debug of decisions and commands.
    outputs: Vec<String>,
}

impl Flow {
    fn record(&mut self, cmd: &Command, decision: &Decision) {
        self.outputs.push(format!("{cmd:?}"));
        self.outputs.push(format!("{decision:?}"));
        self.outputs
            .push(serde_json::to_string(&decision.effects).unwrap());
        self.outputs
            .push(serde_json::to_string_pretty(&decision.next).unwrap());
        self.outputs.push(format!("{:?}", decision.outcome));
    }

    fn scan(&self) {
        assert!(!self.secrets.is_empty());
        for out in &self.outputs {
            for s in &self.secrets {
                assert_absent(out, s);
            }
        }
    }
}

/// Decides, hashing the new password only when the core asks for it.
fn decide_hashing(
    record: &AccountRecord,
    mut cmd: Command,
    now: OffsetDateTime,
    policy: &Policy,
    r: &mut StdRng,
    flow: &mut Flow,
) -> Decision {
    let decision = match decide(record, &cmd, now, policy) {
        Err(Denied::HashRequired) => {
            let (Command::Activate { password, .. } | Command::ResetPassword { password, .. }) =
                &mut cmd
            else {
                panic!("hash asked for {cmd:?}");
            };
            password.hash = Some(
                hash_password(
                    password.password.expose_secret().as_bytes(),
                    &policy.hashing,
                    r,
                )
                .unwrap(),
            );
            decide(record, &cmd, now, policy).unwrap()
        }
        other => other.unwrap(),
    };
    flow.record(&cmd, &decision);
    decision
}

fn new_password(text: &str) -> NewPassword {
    NewPassword {
        password: Password::new(text),
        confirmation: Password::new(text),
        hash: None,
    }
}

/// register → activate → wrong login → recovery → reset, on a preset with a code.
fn run_flow(base: Policy, seed: u64) {
    let mut policy = base;
    policy.hashing = HashParams::danger_insecure_for_tests();
    let mut r = rng(seed);
    let key = DigestKey::generate(&mut r);
    let mut flow = Flow {
        secrets: vec![PLANTED.to_owned()],
        outputs: Vec::new(),
    };
    let mut now = NOW;

    // Register.
    let link = Token::generate(&mut r);
    flow.secrets.push(link.expose_secret().to_owned());
    let code = policy
        .activation
        .code_digits
        .map(|d| NumericCode::generate(d, &mut r).unwrap());
    if let Some(c) = &code {
        // Quoted: bare digits also occur in timestamps.
        flow.secrets.push(format!("\"{}\"", c.expose_secret()));
    }
    let code_digest = code
        .as_ref()
        .map(|c| key.digest_code(TokenPurpose::ActivationCode, member().as_str(), c));
    let register = Command::Register(Register {
        contact: Contact {
            email: email(),
            mobile: Some("0991234567".parse::<MobilePhone>().unwrap()),
            landline: None,
        },
        terms_accepted: true,
        proofs: policy
            .registration
            .proofs
            .iter()
            .map(|p| ProofResult::passed(*p))
            .collect(),
        human_verified: true,
        link: digest_of(&key, TokenPurpose::Activation, &link),
        code: code_digest,
        enrollment: Default::default(),
        locale: Locale::EsEc,
    });
    let record = AccountRecord::new(member());
    let d = decide_hashing(&record, register, now, &policy, &mut r, &mut flow);
    assert!(matches!(d.outcome, Outcome::Registered { .. }), "{d:?}");

    // Activate with the planted password.
    now += time::Duration::minutes(2);
    let activate = Command::Activate {
        link: digest_of(
            &key,
            TokenPurpose::Activation,
            &Token::parse(link.expose_secret()).unwrap(),
        ),
        code: code_digest,
        password: new_password(PLANTED),
    };
    let d = decide_hashing(&d.next, activate, now, &policy, &mut r, &mut flow);
    assert_eq!(d.outcome, Outcome::Activated);
    let phc = d.next.password_hash().unwrap().as_str().to_owned();

    // A failed login.
    now += time::Duration::minutes(1);
    let login = Command::Login {
        password_matched: false,
        rehash: None,
    };
    let d = decide_hashing(&d.next, login, now, &policy, &mut r, &mut flow);
    assert!(matches!(d.outcome, Outcome::LoginFailed { .. }), "{d:?}");

    // Recovery and reset with a second planted password.
    now += time::Duration::minutes(1);
    let reset_token = Token::generate(&mut r);
    flow.secrets.push(reset_token.expose_secret().to_owned());
    let start = Command::StartRecovery(StartRecovery {
        claimed_email: Some(email()),
        proofs: policy
            .recovery
            .proofs
            .iter()
            .filter(|p| **p != afiliado::policy::Proof::RegisteredEmail)
            .map(|p| ProofResult::passed(*p))
            .collect(),
        human_verified: true,
        new_email: None,
        link: digest_of(&key, TokenPurpose::Reset, &reset_token),
    });
    let d = decide_hashing(&d.next, start, now, &policy, &mut r, &mut flow);
    assert!(matches!(d.outcome, Outcome::ResetLinkSent { .. }), "{d:?}");

    now += time::Duration::minutes(1);
    let second = "OtraClaveSembrada-5678";
    flow.secrets.push(second.to_owned());
    let reset = Command::ResetPassword {
        link: digest_of(&key, TokenPurpose::Reset, &reset_token),
        password: new_password(second),
        declaration_accepted: true,
    };
    let d = decide_hashing(&d.next, reset, now, &policy, &mut r, &mut flow);
    assert_eq!(d.outcome, Outcome::PasswordReset);
    assert_ne!(d.next.password_hash().unwrap().as_str(), phc);

    // The salt and output of the hashes stay out of every Debug rendering.
    let debug_only: Vec<&String> = flow
        .outputs
        .iter()
        .filter(|o| !o.starts_with('{') && !o.starts_with('['))
        .collect();
    for hash in [phc.as_str(), d.next.password_hash().unwrap().as_str()] {
        let parts: Vec<&str> = hash.split('$').collect();
        for out in &debug_only {
            for secret in &parts[4..] {
                assert_absent(out, secret);
            }
        }
    }

    flow.scan();
}

#[test]
fn isspol_flow_outputs_hold_no_secret() {
    run_flow(Policy::isspol(), 21);
}

#[test]
fn recommended_flow_outputs_hold_no_secret() {
    run_flow(Policy::recommended(), 22);
}

#[test]
fn effects_alone_hold_no_secret() {
    // The effects (outbox + audit) are what leaves the process: check them on their own,
    // including the code unquoted when it cannot collide with a timestamp.
    let mut policy = Policy::recommended();
    policy.hashing = HashParams::danger_insecure_for_tests();
    let mut r = rng(23);
    let key = DigestKey::generate(&mut r);
    let link = Token::generate(&mut r);
    let code = NumericCode::parse("907531", 6).unwrap();
    let register = Command::Register(Register {
        contact: Contact {
            email: email(),
            mobile: Some("0991234567".parse::<MobilePhone>().unwrap()),
            landline: None,
        },
        terms_accepted: true,
        proofs: vec![ProofResult::passed(
            afiliado::policy::Proof::AffiliateNumber,
        )],
        human_verified: true,
        link: digest_of(&key, TokenPurpose::Activation, &link),
        code: Some(key.digest_code(TokenPurpose::ActivationCode, member().as_str(), &code)),
        enrollment: Default::default(),
        locale: Locale::EsEc,
    });
    let d = decide(&AccountRecord::new(member()), &register, NOW, &policy).unwrap();
    assert!(d.notices().count() >= 1);
    let effects = serde_json::to_string(&d.effects).unwrap();
    assert_absent(&effects, link.expose_secret());
    assert_absent(&effects, "907531");
    let next = serde_json::to_string(&d.next).unwrap();
    assert_absent(&next, link.expose_secret());
    assert_absent(&next, "907531");
}
