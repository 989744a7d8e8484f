//! Legacy password hashes imported from the previous portals (ISSPOL the ISSPOL guide: "the password is
//! the same as in the previous portal"): bcrypt, Django `pbkdf2_sha256` and salted SHA-256 load
//! as `PasswordHash`, verify through `verify_password`, always need a rehash, never show their
//! salt or output, refuse malformed strings and absurd work factors, and are replaced by the
//! policy's argon2id on the first successful login through `AccountService::login`.
#![allow(clippy::disallowed_methods)]

use afiliado::crypto::{CryptoError, HashParams, PasswordHash, needs_rehash, verify_password};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

const PASSWORD: &str = "Policia2020";
const WRONG: &str = "Policia2021";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `$2b$04$…` made by the `bcrypt` crate.
fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

/// Django's `pbkdf2_sha256$<iterations>$<salt>$<base64>`, made with the `pbkdf2` crate.
fn django_pbkdf2(password: &str, salt: &str, iterations: u32) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt.as_bytes(), iterations, &mut out);
    format!("pbkdf2_sha256${iterations}${salt}${}", STANDARD.encode(out))
}

/// The previous portal's `sha256$<salt>$<hex of SHA-256(salt ‖ password)>`.
fn salted_sha256(password: &str, salt: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(password.as_bytes())
        .finalize();
    format!("sha256${salt}${}", hex(&digest))
}

/// Right and wrong password, needs_rehash under every parameter set, and no salt or output in
/// `Debug` (nor in the password, obviously).
fn check(encoded: &str, alg: &str, right: &[u8], wrong: &[u8]) -> PasswordHash {
    let h = PasswordHash::parse(encoded).unwrap_or_else(|e| panic!("{encoded}: {e}"));
    assert_eq!(h.as_str(), encoded);
    assert_eq!(h.algorithm(), alg);
    assert!(h.is_legacy());
    assert_eq!(h.params(), None);
    assert!(verify_password(right, &h).unwrap(), "{encoded}");
    assert!(!verify_password(wrong, &h).unwrap(), "{encoded}");
    for params in [
        HashParams::OWASP,
        HashParams::danger_insecure_for_tests(),
        HashParams {
            m_cost_kib: 65_536,
            t_cost: 3,
            p_cost: 4,
        },
    ] {
        assert!(needs_rehash(&h, &params));
    }
    // The same through FromStr, TryFrom and serde.
    assert_eq!(encoded.parse::<PasswordHash>().unwrap(), h);
    assert_eq!(PasswordHash::try_from(encoded.to_owned()).unwrap(), h);
    let json = serde_json::to_string(&h).unwrap();
    assert_eq!(serde_json::from_str::<PasswordHash>(&json).unwrap(), h);
    assert_no_secret_in_debug(&h);
    h
}

/// Every field after the parameters (salt, output) and every 8-character window of them is
/// absent from `Debug`.
fn assert_no_secret_in_debug(h: &PasswordHash) {
    let dbg = format!("{h:?} {h:#?}");
    assert!(dbg.contains(h.algorithm()), "{dbg}");
    let secret_fields: Vec<&str> = match h.algorithm() {
        // `$2b$04$<22 salt><31 output>`
        "bcrypt" => {
            let body = &h.as_str()[7..];
            vec![&body[..22], &body[22..]]
        }
        // `pbkdf2_sha256$<i>$<salt>$<hash>` / `sha256$<salt>$<hex>`
        "pbkdf2_sha256" => h.as_str().split('$').skip(2).collect(),
        "sha256_salted" => h.as_str().split('$').skip(1).collect(),
        other => panic!("not a legacy algorithm: {other}"),
    };
    for field in secret_fields {
        assert!(!dbg.contains(field), "{dbg}");
        for i in 0..field.len().saturating_sub(8) {
            assert!(
                !dbg.contains(&field[i..i + 8]),
                "{dbg} contains {}",
                &field[i..i + 8]
            );
        }
    }
}

// ----- vectors made by the reference crates -----------------------------------------------

#[test]
fn bcrypt_made_by_the_bcrypt_crate() {
    let encoded = bcrypt_hash(PASSWORD);
    assert!(encoded.starts_with("$2b$04$"), "{encoded}");
    let h = check(&encoded, "bcrypt", PASSWORD.as_bytes(), WRONG.as_bytes());
    assert_eq!(
        format!("{h:?}"),
        r#"PasswordHash { alg: "bcrypt", params: "v=2b,cost=4" }"#
    );
    // PHP's `$2y$` and the older `$2a$` label the same computation.
    for prefix in ["$2a$", "$2y$"] {
        let relabelled = encoded.replacen("$2b$", prefix, 1);
        check(&relabelled, "bcrypt", PASSWORD.as_bytes(), WRONG.as_bytes());
    }
    // bcrypt only ever saw the first 72 bytes: a 72-byte-prefix match verifies, as it did on
    // the old portal.
    let long = "x".repeat(80);
    let h = PasswordHash::parse(&bcrypt_hash(&long)).unwrap();
    assert!(verify_password(&long.as_bytes()[..72], &h).unwrap());
    assert!(!verify_password(&long.as_bytes()[..71], &h).unwrap());
}

#[test]
fn pbkdf2_made_by_the_pbkdf2_crate() {
    let encoded = django_pbkdf2(PASSWORD, "sal3Aleatoria", 1000);
    let h = check(
        &encoded,
        "pbkdf2_sha256",
        PASSWORD.as_bytes(),
        WRONG.as_bytes(),
    );
    assert_eq!(
        format!("{h:?}"),
        r#"PasswordHash { alg: "pbkdf2_sha256", params: "iterations=1000" }"#
    );
    // Salt and iteration count are part of the computation.
    let other_salt = django_pbkdf2(PASSWORD, "sal3Aleatorio", 1000);
    let mixed = format!(
        "pbkdf2_sha256$1000$sal3Aleatoria${}",
        other_salt.rsplit('$').next().unwrap()
    );
    assert!(!verify_password(PASSWORD.as_bytes(), &PasswordHash::parse(&mixed).unwrap()).unwrap());
    let fewer = encoded.replacen("$1000$", "$999$", 1);
    assert!(!verify_password(PASSWORD.as_bytes(), &PasswordHash::parse(&fewer).unwrap()).unwrap());
}

#[test]
fn salted_sha256_computed_with_sha2() {
    let encoded = salted_sha256(PASSWORD, "Q9x!r7");
    let h = check(
        &encoded,
        "sha256_salted",
        PASSWORD.as_bytes(),
        WRONG.as_bytes(),
    );
    assert_eq!(
        format!("{h:?}"),
        r#"PasswordHash { alg: "sha256_salted", params: "" }"#
    );
    // The order is salt then password, not the other way round.
    let (_, salt_hex) = encoded.split_at("sha256$Q9x!r7$".len());
    let reversed = Sha256::digest(format!("{PASSWORD}Q9x!r7").as_bytes());
    assert_ne!(salt_hex, hex(&reversed));
    let reversed = PasswordHash::parse(&format!("sha256$Q9x!r7${}", hex(&reversed))).unwrap();
    assert!(!verify_password(PASSWORD.as_bytes(), &reversed).unwrap());
    // Exports in upper-case hex verify too.
    let upper = format!("sha256$Q9x!r7${}", salt_hex.to_uppercase());
    check(
        &upper,
        "sha256_salted",
        PASSWORD.as_bytes(),
        WRONG.as_bytes(),
    );
}

// ----- published known answers --------------------------------------------------------------

#[test]
fn django_known_answer() {
    // Django 4.2, tests/auth_tests/test_hashers.py, `test_pbkdf2`:
    // make_password("lètmein", "seasalt", "pbkdf2_sha256").
    let encoded = "pbkdf2_sha256$600000$seasalt$OAXyhAQ/4ZDA9V5RMExt3C1OwQdUpLZ99vm1McFlLRA=";
    check(
        encoded,
        "pbkdf2_sha256",
        "lètmein".as_bytes(),
        "lètmeinz".as_bytes(),
    );
}

#[test]
fn pbkdf2_hmac_sha256_known_answers_as_django_strings() {
    // P = "password", S = "salt", dkLen = 32 (RFC 7914 §11 and the RFC 6070-style vectors).
    for (c, dk) in [
        (
            1,
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b",
        ),
        (
            2,
            "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
        ),
        (
            4096,
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a",
        ),
    ] {
        let encoded = format!("pbkdf2_sha256${c}$salt${}", STANDARD.encode(unhex(dk)));
        check(&encoded, "pbkdf2_sha256", b"password", b"Password");
        // And the crate-made string is the same.
        assert_eq!(django_pbkdf2("password", "salt", c), encoded);
    }
}

#[test]
fn bcrypt_known_answers() {
    // Openwall crypt_blowfish (wrapper.c) / OpenBSD test vectors.
    for (password, encoded) in [
        (
            "U*U",
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        ),
        (
            "U*U*",
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK",
        ),
        (
            "U*U*U",
            "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a",
        ),
        (
            "",
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy",
        ),
    ] {
        let h = check(encoded, "bcrypt", password.as_bytes(), b"U*V");
        assert_eq!(
            format!("{h:?}"),
            r#"PasswordHash { alg: "bcrypt", params: "v=2a,cost=5" }"#
        );
    }
}

// ----- rejection ------------------------------------------------------------------------------

#[test]
fn malformed_legacy_strings_are_rejected_with_a_typed_error() {
    let bcrypt = bcrypt_hash(PASSWORD);
    let pbkdf2 = django_pbkdf2(PASSWORD, "salt", 1000);
    let sha = salted_sha256(PASSWORD, "salt");
    let malformed = [
        bcrypt[..bcrypt.len() - 1].to_owned(), // 52 characters
        format!("{bcrypt}x"),                  // 54 characters
        bcrypt.replacen("$04$", "$4$", 1),     // one-digit cost
        bcrypt.replacen("$04$", "$o4$", 1),
        format!("{}*", &bcrypt[..bcrypt.len() - 1]), // outside the bcrypt alphabet
        format!("{}$", &bcrypt[..bcrypt.len() - 1]),
        "$2b$04$".to_owned(),
        "pbkdf2_sha256$1000$salt".to_owned(),
        pbkdf2.replacen("$1000$", "$1e3$", 1),
        pbkdf2.replacen("$1000$", "$-1$", 1),
        pbkdf2.replacen("$salt$", "$$", 1),
        pbkdf2.replacen("$salt$", "$sa lt$", 1),
        pbkdf2.replacen("$salt$", "$sal\u{e9}$", 1),
        pbkdf2.trim_end_matches('=').to_owned(), // unpadded
        pbkdf2.replacen("$salt$", "$salt$AAAA", 1), // 35 bytes
        format!("{pbkdf2}$"),
        pbkdf2.replace('+', "-").replace('/', "_") + "-", // not standard base64
        sha[..sha.len() - 1].to_owned(),
        format!("{sha}0"),
        format!("{}z", &sha[..sha.len() - 1]),
        sha.replacen("$salt$", "$$", 1),
        "sha256$".to_owned(),
        "pbkdf2_sha1$1000$salt$aGFzaA==".to_owned(), // neither legacy nor PHC
    ];
    for s in &malformed {
        assert_eq!(
            PasswordHash::parse(s),
            Err(CryptoError::MalformedHash),
            "{s}"
        );
        assert!(serde_json::from_str::<PasswordHash>(&serde_json::to_string(s).unwrap()).is_err());
        // The error never echoes the string.
        let msg = PasswordHash::parse(s).unwrap_err().to_string();
        assert_eq!(msg, "malformed password hash");
    }
    // `$2x$` (buggy crypt_blowfish) and `$2$` are recognised but not verified.
    for prefix in ["$2x$", "$2$"] {
        assert_eq!(
            PasswordHash::parse(&bcrypt.replacen("$2b$", prefix, 1)),
            Err(CryptoError::UnsupportedAlgorithm)
        );
    }
}

#[test]
fn absurd_work_factors_are_rejected_before_any_work() {
    let bcrypt = bcrypt_hash(PASSWORD);
    for cost in [0u64, 3, 21, 31, 99] {
        let s = bcrypt.replacen("$04$", &format!("${cost:02}$"), 1);
        let err = PasswordHash::parse(&s).unwrap_err();
        assert_eq!(
            err,
            CryptoError::CostOutOfRange {
                algorithm: "bcrypt",
                found: cost,
                min: 4,
                max: 20,
            }
        );
        assert!(!err.to_string().contains(&bcrypt[7..15]), "{err}");
    }
    // The bounds themselves load (cost 20 is never verified here: it takes about a minute).
    assert!(PasswordHash::parse(&bcrypt.replacen("$04$", "$20$", 1)).is_ok());

    let pbkdf2 = django_pbkdf2(PASSWORD, "salt", 1000);
    for (text, found) in [
        ("0", 0u64),
        ("000", 0),
        ("10000001", 10_000_001),
        ("4294967295", 4_294_967_295),
        ("18446744073709551616", u64::MAX),
        ("999999999999999999999999999999", u64::MAX),
    ] {
        let s = pbkdf2.replacen("$1000$", &format!("${text}$"), 1);
        let err = PasswordHash::parse(&s).unwrap_err();
        assert_eq!(
            err,
            CryptoError::CostOutOfRange {
                algorithm: "pbkdf2_sha256",
                found,
                min: 1,
                max: 10_000_000,
            },
            "{text}"
        );
        assert!(serde_json::from_str::<PasswordHash>(&serde_json::to_string(&s).unwrap()).is_err());
    }
    assert!(
        PasswordHash::parse(&pbkdf2.replacen("$1000$", "$10000000$", 1)).is_ok(),
        "the upper bound is accepted"
    );
}

#[test]
fn argon2_and_other_phc_strings_keep_their_behaviour() {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
    let params = HashParams::danger_insecure_for_tests();
    let h = afiliado::crypto::hash_password(PASSWORD.as_bytes(), &params, &mut rng).unwrap();
    assert!(!h.is_legacy());
    assert_eq!(h.algorithm(), "argon2id");
    assert!(!needs_rehash(&h, &params));
    assert!(verify_password(PASSWORD.as_bytes(), &h).unwrap());

    let scrypt = PasswordHash::parse("$scrypt$ln=4,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo").unwrap();
    assert!(!scrypt.is_legacy());
    assert_eq!(scrypt.algorithm(), "scrypt");
    assert_eq!(
        verify_password(b"pw", &scrypt),
        Err(CryptoError::UnsupportedAlgorithm)
    );
    assert!(needs_rehash(&scrypt, &params));
}

// ----- end to end through the service ---------------------------------------------------------

#[cfg(all(feature = "memory", feature = "service"))]
mod service {
    use std::sync::Arc;

    use afiliado::core::{AccountRecord, AccountState, Contact, Profile, SecurityEnrollment};
    use afiliado::crypto::{DigestKey, HashParams, PasswordHash, needs_rehash, verify_password};
    use afiliado::memory::{MemoryDirectory, MemoryStore};
    use afiliado::ports::{AccountStore, ManualClock, MemberFacts};
    use afiliado::seal::SealKey;
    use afiliado::service::{AccountService, LoginOutcome};
    use afiliado::{MemberId, Password, Policy};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use time::macros::{date, datetime};

    use super::{PASSWORD, WRONG, bcrypt_hash, django_pbkdf2, salted_sha256};

    const MEMBER: &str = "1710034065";

    fn member() -> MemberId {
        MEMBER.parse().unwrap()
    }

    fn policy() -> Policy {
        let mut policy = Policy::isspol();
        policy.hashing = HashParams::danger_insecure_for_tests();
        policy
    }

    /// A service over `store` holding one imported Active account whose password is `legacy`.
    async fn imported(legacy: &str) -> (AccountService, Arc<MemoryStore>) {
        let imported_at = datetime!(2026-11-01 08:00 -5);
        let store = Arc::new(MemoryStore::new());
        let mut record = AccountRecord::new(member());
        record.state = AccountState::Active {
            profile: Profile {
                password: PasswordHash::parse(legacy).unwrap(),
                contact: Contact::email_only("ana.quispe@example.ec".parse().unwrap()),
                enrollment: SecurityEnrollment::default(),
                activated_at: imported_at,
                password_changed_at: imported_at,
                last_login_at: None,
            },
            failures: Vec::new(),
        };
        store
            .commit(&record, 0, Vec::new(), Vec::new())
            .await
            .unwrap();

        let mut rng = StdRng::seed_from_u64(0x1550_0000);
        let facts = MemberFacts::new(member(), "ANA QUISPE", date!(1988 - 03 - 14));
        let service = AccountService::builder(
            policy(),
            DigestKey::generate(&mut rng),
            SealKey::generate(&mut rng),
        )
        .store(store.clone())
        .directory(Arc::new(MemoryDirectory::new().with(facts)))
        .clock(Arc::new(ManualClock::new(datetime!(2026-11-22 19:36 -5))))
        .build()
        .unwrap();
        (service, store)
    }

    async fn stored_hash(store: &MemoryStore) -> PasswordHash {
        let record = store.load(&member()).await.unwrap().unwrap();
        record.password_hash().unwrap().clone()
    }

    async fn migrates_on_first_success(legacy: &str) {
        let (service, store) = imported(legacy).await;
        let params = policy().hashing;

        // A wrong password fails and leaves the legacy hash alone.
        let wrong = service.login(MEMBER, Password::new(WRONG)).await.unwrap();
        assert_eq!(wrong, LoginOutcome::Failed, "{legacy}");
        let still = stored_hash(&store).await;
        assert_eq!(still.as_str(), legacy);
        assert!(still.is_legacy());

        // The old portal's password logs in...
        let ok = service
            .login(MEMBER, Password::new(PASSWORD))
            .await
            .unwrap();
        assert_eq!(ok, LoginOutcome::Success { member: member() }, "{legacy}");

        // ...and the stored hash is now the policy's argon2id.
        let migrated = stored_hash(&store).await;
        assert!(!migrated.is_legacy(), "{migrated:?}");
        assert_eq!(migrated.algorithm(), "argon2id");
        assert_eq!(migrated.params(), Some(params));
        assert!(!needs_rehash(&migrated, &params));
        assert!(verify_password(PASSWORD.as_bytes(), &migrated).unwrap());
        assert!(!verify_password(WRONG.as_bytes(), &migrated).unwrap());

        // A second login still works and does not rehash again.
        let again = service
            .login(MEMBER, Password::new(PASSWORD))
            .await
            .unwrap();
        assert_eq!(again, LoginOutcome::Success { member: member() });
        assert_eq!(stored_hash(&store).await, migrated);

        // A wrong password after the migration fails and changes nothing.
        let wrong = service.login(MEMBER, Password::new(WRONG)).await.unwrap();
        assert_eq!(wrong, LoginOutcome::Failed);
        assert_eq!(stored_hash(&store).await, migrated);
    }

    #[tokio::test]
    async fn bcrypt_account_is_rehashed_to_argon2id_on_first_login() {
        migrates_on_first_success(&bcrypt_hash(PASSWORD)).await;
    }

    #[tokio::test]
    async fn pbkdf2_account_is_rehashed_to_argon2id_on_first_login() {
        migrates_on_first_success(&django_pbkdf2(PASSWORD, "sal3Aleatoria", 1000)).await;
    }

    #[tokio::test]
    async fn salted_sha256_account_is_rehashed_to_argon2id_on_first_login() {
        migrates_on_first_success(&salted_sha256(PASSWORD, "Q9x!r7")).await;
    }

    #[tokio::test]
    async fn only_wrong_passwords_never_migrate() {
        let legacy = bcrypt_hash(PASSWORD);
        let (service, store) = imported(&legacy).await;
        for attempt in ["policia2020", "Policia2020 ", ""] {
            let outcome = service.login(MEMBER, Password::new(attempt)).await.unwrap();
            assert_ne!(outcome, LoginOutcome::Success { member: member() });
            assert_eq!(stored_hash(&store).await.as_str(), legacy);
        }
    }
}
