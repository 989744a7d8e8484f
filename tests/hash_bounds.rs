//! Hash costs are bounded, and hashing parameters have one source of truth.
//!
//! * No policy value and no stored hash can make the process abort or a login run away: the
//!   policy loader refuses absurd Argon2 parameters, durations and counts naming the field,
//!   and a login refuses a stored argon2/bcrypt/PBKDF2 hash whose parameters exceed the
//!   configured [`HashCostBounds`] before allocating anything, answering like a wrong
//!   password (one dummy verification) and auditing `StoredHashRefused` in the same commit.
//! * `ServiceBuilder::build` refuses a hasher whose parameters are not the policy's
//!   `hashing` (before, it built and every activation then failed with `HashParamsMismatch`).
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use afiliado::Policy;
use afiliado::crypto::{CryptoError, HashCostBounds, HashParams, PasswordHash};
use afiliado::policy::PolicyError;

/// The salt and output of a planted PHC string (16 and 32 bytes, base64 without padding).
const SALT_OUT: &str = "c29tZXNhbHRzb21lc2FsdA$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE";

fn argon2id(m: u64, t: u64, p: u64) -> String {
    format!("$argon2id$v=19$m={m},t={t},p={p}${SALT_OUT}")
}

/// `pbkdf2_sha256$<iterations>$salt$<RFC 7914's c = 1 output>`: well formed, never computed.
fn pbkdf2(iterations: u64) -> String {
    format!("pbkdf2_sha256${iterations}$salt$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=")
}

/// A well-formed bcrypt string with the given cost (Openwall's `U*U` vector relabelled; its
/// output is never computed).
fn bcrypt(cost: u32) -> String {
    format!("$2a${cost:02}$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW")
}

type Preset = fn() -> Policy;

/// The field a loader error names: the serde path (values refused while deserialising, such
/// as `HashParams` through its `TryFrom`) or the `validate` field.
fn named_field(r: Result<Policy, PolicyError>) -> String {
    match r {
        Err(PolicyError::Parse { path, .. }) => path,
        Err(PolicyError::Invalid { field, .. }) => field.to_owned(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn invalid_field(r: Result<Policy, PolicyError>) -> (&'static str, String) {
    match r {
        Err(PolicyError::Invalid { field, reason }) => (field, reason),
        other => panic!("expected PolicyError::Invalid, got {other:?}"),
    }
}

// ----- the review's exact values through the policy loader ------------------------------------

#[test]
fn the_reviews_policy_values_are_refused_naming_the_field() {
    let base = Policy::iess().to_toml().unwrap();
    for (from, to, field) in [
        ("m_cost_kib = 19456", "m_cost_kib = 4294967295", "hashing"),
        ("t_cost = 2", "t_cost = 4000000000", "hashing"),
        (
            "link_ttl = \"3m\"",
            "link_ttl = \"18446744073709551615s\"",
            "unlock.link_ttl",
        ),
    ] {
        assert!(base.contains(from), "{from}");
        let text = base.replace(from, to);
        let r = Policy::from_toml(&text);
        let msg = format!("{r:?}");
        assert_eq!(named_field(r), field, "{to}: {msg}");
        // The same through JSON.
        let mut json: serde_json::Value =
            serde_json::from_str(&Policy::iess().to_json().unwrap()).unwrap();
        match field {
            "hashing" => {
                let (k, v) = to.split_once(" = ").unwrap();
                json["hashing"][k] = v.parse::<u64>().unwrap().into();
            }
            _ => json["unlock"]["link_ttl"] = "18446744073709551615s".into(),
        }
        assert_eq!(
            named_field(Policy::from_json(&json.to_string())),
            field,
            "JSON {to}"
        );
    }
}

#[test]
fn hash_params_have_ceilings_also_when_deserialised() {
    let ok = HashParams {
        m_cost_kib: HashParams::MAX_M_COST_KIB,
        t_cost: HashParams::MAX_T_COST,
        p_cost: HashParams::MAX_P_COST,
    };
    ok.validate().unwrap();
    for (bad, what) in [
        (
            HashParams {
                m_cost_kib: 1_048_577,
                ..ok
            },
            "m_cost_kib",
        ),
        (
            HashParams {
                m_cost_kib: u32::MAX,
                ..ok
            },
            "m_cost_kib",
        ),
        (HashParams { t_cost: 101, ..ok }, "t_cost"),
        (
            HashParams {
                t_cost: 4_000_000_000,
                ..ok
            },
            "t_cost",
        ),
        (HashParams { p_cost: 65, ..ok }, "p_cost"),
        (
            HashParams {
                p_cost: u32::MAX,
                ..ok
            },
            "p_cost",
        ),
    ] {
        match bad.validate() {
            Err(CryptoError::InvalidParams(msg)) => assert!(msg.contains(what), "{msg}"),
            other => panic!("{bad:?}: {other:?}"),
        }
        // The serde `TryFrom` path validates too.
        let json = format!(
            r#"{{"m_cost_kib":{},"t_cost":{},"p_cost":{}}}"#,
            bad.m_cost_kib, bad.t_cost, bad.p_cost
        );
        assert!(serde_json::from_str::<HashParams>(&json).is_err(), "{json}");
        let toml = format!(
            "m_cost_kib = {}\nt_cost = {}\np_cost = {}\n",
            bad.m_cost_kib, bad.t_cost, bad.p_cost
        );
        assert!(toml::from_str::<HashParams>(&toml).is_err(), "{toml}");
    }
}

#[test]
fn every_duration_has_a_ceiling() {
    let year = Duration::from_secs(365 * 24 * 3600);
    let over = year + Duration::from_secs(1);
    type Edit = fn(&mut Policy, Duration);
    let cases: [(&str, Preset, Edit); 8] = [
        ("activation.ttl", Policy::recommended, |p, d| {
            p.activation.ttl = d
        }),
        ("unlock.link_ttl", Policy::iess, |p, d| {
            p.unlock.link_ttl = Some(d)
        }),
        ("recovery.reset_ttl", Policy::iess, |p, d| {
            p.recovery.reset_ttl = d
        }),
        ("registration.resend_cooldown", Policy::isspol, |p, d| {
            p.registration.resend_cooldown = d
        }),
        ("lockout.window", Policy::isspol, |p, d| {
            p.lockout.window = d
        }),
        ("lockout.first_duration", Policy::isspol, |p, d| {
            p.lockout.first_duration = Some(d)
        }),
        ("lockout.progressive", Policy::recommended, |p, d| {
            p.lockout.progressive[1] = d
        }),
        ("retention.audit", Policy::recommended, |p, d| {
            p.retention.audit = d.saturating_mul(50)
        }),
    ];
    for (field, preset, edit) in cases {
        let mut p = preset();
        edit(&mut p, year);
        p.validate()
            .unwrap_or_else(|e| panic!("{field} = 365 days (x50 for retention): {e}"));
        let mut p = preset();
        edit(&mut p, over);
        let (f, reason) = invalid_field(p.validate().map(|()| p.clone()));
        assert_eq!(f, field, "{reason}");
        let mut p = preset();
        edit(&mut p, Duration::MAX / 64);
        assert_eq!(invalid_field(p.validate().map(|()| p.clone())).0, field);
    }
}

#[test]
fn absurd_counts_are_refused_naming_the_field() {
    type Edit = fn(&mut Policy);
    let cases: [(&str, Preset, Edit, Edit); 8] = [
        (
            "lockout.threshold",
            Policy::isspol,
            |p| p.lockout.threshold = 1000,
            |p| p.lockout.threshold = u32::MAX,
        ),
        (
            "lockout.manual_after",
            Policy::recommended,
            |p| p.lockout.manual_after = Some(1000),
            |p| p.lockout.manual_after = Some(1001),
        ),
        (
            "lockout.progressive",
            Policy::recommended,
            |p| p.lockout.progressive = vec![Duration::from_secs(60); 32],
            |p| p.lockout.progressive = vec![Duration::from_secs(60); 33],
        ),
        (
            "recovery.attempt_budget",
            Policy::iess,
            |p| p.recovery.attempt_budget = Some(1000),
            |p| p.recovery.attempt_budget = Some(u32::MAX),
        ),
        (
            "registration.max_per_day",
            Policy::iess,
            |p| p.registration.max_per_day = 1_000_000,
            |p| p.registration.max_per_day = 1_000_001,
        ),
        (
            "notices.lock_warnings_per_day",
            Policy::iess,
            |p| p.notices.lock_warnings_per_day = 1_000_000,
            |p| p.notices.lock_warnings_per_day = u32::MAX,
        ),
        (
            "activation.code_attempts",
            Policy::recommended,
            |p| p.activation.code_attempts = 10,
            |p| p.activation.code_attempts = 255,
        ),
        (
            "registration.security_questions",
            Policy::iess,
            |p| p.registration.security_questions = 10,
            |p| p.registration.security_questions = 11,
        ),
    ];
    for (field, preset, fine, absurd) in cases {
        let mut p = preset();
        fine(&mut p);
        p.validate().unwrap_or_else(|e| panic!("{field}: {e}"));
        let mut p = preset();
        absurd(&mut p);
        let (f, reason) = invalid_field(p.validate().map(|()| p.clone()));
        assert_eq!(f, field, "{reason}");
    }
}

#[test]
fn stored_hash_bounds_default_to_four_times_the_policy_and_are_validated() {
    let p = Policy::isspol();
    assert_eq!(p.stored_hash_bounds, None);
    let b = p.hash_cost_bounds();
    assert_eq!(b, HashCostBounds::for_params(&HashParams::OWASP));
    assert_eq!(
        (b.argon2_m_cost_kib, b.argon2_t_cost, b.argon2_p_cost),
        (4 * 19_456, 8, 4)
    );
    assert_eq!((b.bcrypt_cost, b.pbkdf2_iterations), (14, 2_000_000));
    // Capped at the HashParams ceilings.
    let huge = HashCostBounds::for_params(&HashParams {
        m_cost_kib: HashParams::MAX_M_COST_KIB,
        t_cost: HashParams::MAX_T_COST,
        p_cost: HashParams::MAX_P_COST,
    });
    assert_eq!(huge.argon2_m_cost_kib, HashParams::MAX_M_COST_KIB);
    assert_eq!(huge.argon2_t_cost, HashParams::MAX_T_COST);
    assert_eq!(huge.argon2_p_cost, HashParams::MAX_P_COST);

    // Explicit bounds round-trip through TOML and JSON.
    let mut explicit = b;
    explicit.bcrypt_cost = 12;
    explicit.pbkdf2_iterations = 1_000_000;
    let mut p = Policy::isspol();
    p.stored_hash_bounds = Some(explicit);
    let text = p.to_toml().unwrap();
    assert!(text.contains("[stored_hash_bounds]"), "{text}");
    assert_eq!(
        Policy::from_toml(&text).unwrap().hash_cost_bounds(),
        explicit
    );
    assert_eq!(
        Policy::from_json(&p.to_json().unwrap())
            .unwrap()
            .hash_cost_bounds(),
        explicit
    );

    // Out of range, or below the policy's own parameters (its fresh hashes would be refused).
    type Edit = fn(&mut HashCostBounds);
    let bad: [Edit; 7] = [
        |b| b.bcrypt_cost = 21,
        |b| b.bcrypt_cost = 3,
        |b| b.pbkdf2_iterations = 10_000_001,
        |b| b.pbkdf2_iterations = 0,
        |b| b.argon2_m_cost_kib = u32::MAX,
        |b| b.argon2_t_cost = 1,
        |b| b.argon2_m_cost_kib = 19_455,
    ];
    for edit in bad {
        let mut bounds = b;
        edit(&mut bounds);
        let mut p = Policy::isspol();
        p.stored_hash_bounds = Some(bounds);
        let (f, reason) = invalid_field(p.validate().map(|()| p.clone()));
        assert_eq!(f, "stored_hash_bounds", "{bounds:?}: {reason}");
    }
}

// ----- stored hashes against the bounds -------------------------------------------------------

#[test]
fn stored_hashes_above_the_bounds_are_refused_with_a_typed_error() {
    let bounds = Policy::isspol().hash_cost_bounds();
    let above = |hash: &str, algorithm, parameter, found, max| {
        let h = PasswordHash::parse(hash).unwrap();
        let err = bounds.check(&h).unwrap_err();
        assert_eq!(
            err,
            CryptoError::CostAboveBound {
                algorithm,
                parameter,
                found,
                max,
            }
        );
        // Bounded verification refuses it without computing anything.
        assert_eq!(
            afiliado::crypto::verify_password_bounded(b"pw", &h, &bounds),
            Err(err.clone())
        );
        // The message names the parameter, never the salt or output.
        let msg = err.to_string();
        assert!(msg.contains(parameter), "{msg}");
        assert!(
            !msg.contains("c29tZXNhbHRz") && !msg.contains("YWFhYWFh"),
            "{msg}"
        );
    };
    above(
        &argon2id(4_294_967_295, 2, 1),
        "argon2id",
        "m_cost_kib",
        4_294_967_295,
        77_824,
    );
    above(
        &argon2id(1_048_576, 2, 1),
        "argon2id",
        "m_cost_kib",
        1_048_576,
        77_824,
    );
    above(
        &argon2id(19_456, 4_000_000_000, 1),
        "argon2id",
        "t_cost",
        4_000_000_000,
        8,
    );
    above(&argon2id(19_456, 2, 5), "argon2id", "p_cost", 5, 4);
    above(
        &format!("$argon2i$v=19$m=1048576,t=2,p=1${SALT_OUT}"),
        "argon2i",
        "m_cost_kib",
        1_048_576,
        77_824,
    );
    above(&bcrypt(20), "bcrypt", "cost", 20, 14);
    above(&bcrypt(15), "bcrypt", "cost", 15, 14);
    above(
        &pbkdf2(10_000_000),
        "pbkdf2_sha256",
        "iterations",
        10_000_000,
        2_000_000,
    );

    // At the bounds: accepted (not computed here).
    for fine in [
        argon2id(77_824, 8, 4),
        argon2id(19_456, 2, 1),
        bcrypt(14),
        pbkdf2(2_000_000),
        "sha256$salt$0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
    ] {
        bounds.check(&PasswordHash::parse(&fine).unwrap()).unwrap();
    }

    // bcrypt cost 31 never even loads: the format ceiling (20) refuses it at parse.
    assert_eq!(
        PasswordHash::parse(&bcrypt(31)).unwrap_err(),
        CryptoError::CostOutOfRange {
            algorithm: "bcrypt",
            found: 31,
            min: 4,
            max: 20,
        }
    );
}

// ----- end to end: login, building the service -----------------------------------------------

#[cfg(all(feature = "memory", feature = "service", feature = "test-util"))]
mod service {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use afiliado::core::{
        AccountRecord, AccountState, AuditKind, Contact, Profile, SecurityEnrollment,
    };
    use afiliado::crypto::{DigestKey, HashParams, PasswordHash};
    use afiliado::memory::{MemoryDirectory, MemoryStore};
    use afiliado::ports::{AccountStore, ManualClock, MemberFacts};
    use afiliado::seal::SealKey;
    use afiliado::service::{
        AccountService, ActivateOutcome, Answers, Argon2Hasher, CountingHasher, LoginOutcome,
        RegisterOutcome, RegisterRequest, ServiceError,
    };
    use afiliado::{MemberId, Password, Policy};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use time::macros::{date, datetime};

    use super::{argon2id, bcrypt, pbkdf2};

    const MEMBER: &str = "1710034065";
    const PASSWORD: &str = "Quinde7LagoAzul";

    fn member() -> MemberId {
        MEMBER.parse().unwrap()
    }

    struct Planted {
        service: AccountService,
        store: Arc<MemoryStore>,
        hasher: Arc<CountingHasher>,
    }

    /// A service under `policy` (its own hashing parameters, counted) over a store holding
    /// one Active account whose stored hash is `hash`.
    async fn planted(policy: Policy, hash: &str) -> Planted {
        let at = datetime!(2026-11-01 08:00 -5);
        let store = Arc::new(MemoryStore::new());
        let mut record = AccountRecord::new(member());
        record.state = AccountState::Active {
            profile: Profile {
                password: PasswordHash::parse(hash).unwrap(),
                contact: Contact::email_only("ana.quispe@example.ec".parse().unwrap()),
                enrollment: SecurityEnrollment::default(),
                activated_at: at,
                password_changed_at: at,
                last_login_at: None,
            },
            failures: Vec::new(),
        };
        store
            .commit(&record, 0, Vec::new(), Vec::new())
            .await
            .unwrap();
        let mut rng = StdRng::seed_from_u64(0xB0_0D5);
        let facts = MemberFacts::new(member(), "ANA QUISPE", date!(1988 - 03 - 14));
        let hasher = Arc::new(CountingHasher::new(
            Argon2Hasher::new(policy.hashing).unwrap(),
        ));
        let service = AccountService::builder(
            policy,
            DigestKey::generate(&mut rng),
            SealKey::generate(&mut rng),
        )
        .store(store.clone())
        .directory(Arc::new(MemoryDirectory::new().with(facts)))
        .clock(Arc::new(ManualClock::new(datetime!(2026-11-22 19:36 -5))))
        .hasher(hasher.clone())
        .build()
        .unwrap();
        hasher.take();
        Planted {
            service,
            store,
            hasher,
        }
    }

    /// Logs in with the right password for an account whose stored hash is over the bounds:
    /// `Failed`, one dummy verification and no real one, a failure counted, and
    /// `StoredHashRefused` audited in the same commit, without any hash material.
    async fn refused(policy: Policy, hash: &str, algorithm: &str, parameter: &str) {
        let p = planted(policy, hash).await;
        let started = Instant::now();
        let out = p
            .service
            .login(MEMBER, Password::new(PASSWORD))
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(out, LoginOutcome::Failed, "{hash}");
        // Sanity bound, not a timing measurement: m = 4 GiB used to abort, 1 GiB to take
        // seconds, ten million PBKDF2 iterations over a minute.
        assert!(took < Duration::from_secs(1), "{hash}: {took:?}");
        assert_eq!(p.hasher.take(), (0, 0, 1), "exactly one dummy verification");

        let log = p.store.audit_log(&member()).await.unwrap();
        let kinds: Vec<&AuditKind> = log.iter().map(|e| &e.kind).collect();
        assert_eq!(
            kinds,
            [
                &AuditKind::LoginFailed { failures: 1 },
                &AuditKind::StoredHashRefused {
                    algorithm: algorithm.to_owned(),
                    parameter: parameter.to_owned(),
                },
            ],
            "{hash}"
        );
        let json = serde_json::to_string(&log).unwrap();
        let secret_tail = &hash[hash.len() - 20..];
        assert!(!json.contains(secret_tail), "{json}");
        assert!(!json.contains(PASSWORD), "{json}");
        // The stored hash is left as it was (no rehash of an unverified password).
        let record = p.store.load(&member()).await.unwrap().unwrap();
        assert_eq!(record.password_hash().unwrap().as_str(), hash);
    }

    #[tokio::test]
    async fn a_stored_argon2_hash_with_m_4_gib_is_refused_not_allocated() {
        refused(
            Policy::isspol(),
            &argon2id(4_294_967_295, 2, 1),
            "argon2id",
            "m_cost_kib",
        )
        .await;
    }

    #[tokio::test]
    async fn a_stored_argon2_hash_with_m_1_gib_is_refused_under_the_default_bounds() {
        refused(
            Policy::isspol(),
            &argon2id(1_048_576, 2, 1),
            "argon2id",
            "m_cost_kib",
        )
        .await;
    }

    #[tokio::test]
    async fn a_stored_argon2_hash_with_huge_t_or_p_is_refused() {
        refused(
            Policy::isspol(),
            &argon2id(19_456, 4_000_000_000, 1),
            "argon2id",
            "t_cost",
        )
        .await;
        refused(
            Policy::isspol(),
            &argon2id(65_536, 2, 16),
            "argon2id",
            "p_cost",
        )
        .await;
    }

    #[tokio::test]
    async fn legacy_hashes_above_the_bounds_are_refused() {
        refused(Policy::isspol(), &bcrypt(20), "bcrypt", "cost").await;
        refused(
            Policy::isspol(),
            &pbkdf2(10_000_000),
            "pbkdf2_sha256",
            "iterations",
        )
        .await;
    }

    #[tokio::test]
    async fn explicit_bounds_are_obeyed() {
        // A host that never imported bcrypt above cost 10 says so; cost 11 is then refused.
        let mut policy = Policy::isspol();
        let mut bounds = policy.hash_cost_bounds();
        bounds.bcrypt_cost = 10;
        policy.stored_hash_bounds = Some(bounds);
        refused(policy, &bcrypt(11), "bcrypt", "cost").await;
    }

    #[tokio::test]
    async fn a_refused_hash_answers_and_costs_like_a_wrong_password() {
        // Same policy, a normal account: a wrong password is one real verification, answered
        // `Failed`, audited `LoginFailed` alone.
        let mut policy = Policy::isspol();
        policy.hashing = HashParams::danger_insecure_for_tests();
        let mut rng = StdRng::seed_from_u64(5);
        let real = afiliado::crypto::hash_password(
            PASSWORD.as_bytes(),
            &HashParams::danger_insecure_for_tests(),
            &mut rng,
        )
        .unwrap();
        let p = planted(policy.clone(), real.as_str()).await;
        let out = p
            .service
            .login(MEMBER, Password::new("Otra7ClaveAzul"))
            .await
            .unwrap();
        assert_eq!(out, LoginOutcome::Failed);
        assert_eq!(p.hasher.take(), (0, 1, 0));
        // The right password still works under the bounds.
        let out = p
            .service
            .login(MEMBER, Password::new(PASSWORD))
            .await
            .unwrap();
        assert_eq!(out, LoginOutcome::Success { member: member() });

        // Under the test parameters the default bounds are 32 KiB: a stored m = 64 KiB hash
        // is refused with the same answer and one verification's worth of work.
        refused(policy, &argon2id(64, 1, 1), "argon2id", "m_cost_kib").await;
    }

    #[tokio::test]
    async fn refused_hashes_count_towards_the_lockout() {
        let policy = Policy::isspol(); // 5 failures lock, lock revealed
        let p = planted(policy, &argon2id(1_048_576, 2, 1)).await;
        for _ in 0..4 {
            let out = p
                .service
                .login(MEMBER, Password::new(PASSWORD))
                .await
                .unwrap();
            assert_eq!(out, LoginOutcome::Failed);
        }
        let out = p
            .service
            .login(MEMBER, Password::new(PASSWORD))
            .await
            .unwrap();
        assert!(matches!(out, LoginOutcome::Locked { .. }), "{out:?}");
        // Even refused while locked, the refusal is audited.
        let out = p
            .service
            .login(MEMBER, Password::new(PASSWORD))
            .await
            .unwrap();
        assert!(matches!(out, LoginOutcome::Locked { .. }), "{out:?}");
        let log = p.store.audit_log(&member()).await.unwrap();
        let refusals = log
            .iter()
            .filter(|e| matches!(e.kind, AuditKind::StoredHashRefused { .. }))
            .count();
        assert_eq!(refusals, 6);
        assert_eq!(p.hasher.take(), (0, 0, 6));
    }

    // ----- building the service ---------------------------------------------------------------

    fn keys() -> (DigestKey, SealKey) {
        let mut rng = StdRng::seed_from_u64(0xB1D);
        (DigestKey::generate(&mut rng), SealKey::generate(&mut rng))
    }

    #[test]
    fn a_policy_with_the_reviews_costs_fails_to_build_instead_of_aborting() {
        for hashing in [
            HashParams {
                m_cost_kib: u32::MAX,
                t_cost: 2,
                p_cost: 1,
            },
            HashParams {
                m_cost_kib: 19_456,
                t_cost: 4_000_000_000,
                p_cost: 1,
            },
        ] {
            let mut policy = Policy::isspol();
            policy.hashing = hashing;
            let (digest, seal) = keys();
            let err = AccountService::builder(policy, digest, seal)
                .store(Arc::new(MemoryStore::new()))
                .directory(Arc::new(MemoryDirectory::new()))
                .build()
                .map(|_| ())
                .unwrap_err();
            match err {
                ServiceError::InvalidInput { field, reason } => {
                    assert_eq!(field, "policy");
                    assert!(reason.contains("hashing"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
            // Nor can a hasher be made with them.
            assert!(Argon2Hasher::new(hashing).is_err());
        }
    }

    #[test]
    fn a_hasher_with_other_parameters_than_the_policy_fails_at_build() {
        let (digest, seal) = keys();
        let policy = Policy::isspol();
        assert_eq!(policy.hashing, HashParams::OWASP);
        let err = AccountService::builder(policy, digest, seal)
            .store(Arc::new(MemoryStore::new()))
            .directory(Arc::new(MemoryDirectory::new()))
            .hasher(Arc::new(
                Argon2Hasher::new(HashParams::danger_insecure_for_tests()).unwrap(),
            ))
            .build()
            .map(|_| ())
            .unwrap_err();
        match &err {
            ServiceError::HasherMismatch { policy, hasher } => {
                assert_eq!(*policy, HashParams::OWASP);
                assert_eq!(*hasher, HashParams::danger_insecure_for_tests());
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("hashing"), "{err}");
        // A counting wrapper reports its inner hasher's parameters.
        let counting = CountingHasher::new(
            Argon2Hasher::new(HashParams::danger_insecure_for_tests()).unwrap(),
        );
        let (digest, seal) = keys();
        assert!(matches!(
            AccountService::builder(Policy::isspol(), digest, seal)
                .store(Arc::new(MemoryStore::new()))
                .directory(Arc::new(MemoryDirectory::new()))
                .hasher(Arc::new(counting))
                .build(),
            Err(ServiceError::HasherMismatch { .. })
        ));
    }

    /// With matching parameters, a custom hasher builds and activation works (before, the
    /// mismatched hasher also built, and this activation failed with `HashParamsMismatch`).
    #[tokio::test]
    async fn a_hasher_with_the_policys_parameters_builds_and_activates() {
        let mut policy = Policy::isspol();
        policy.hashing = HashParams::danger_insecure_for_tests();
        let (digest, seal) = keys();
        let store = Arc::new(MemoryStore::new());
        let mut facts = MemberFacts::new(member(), "ANA QUISPE", date!(1988 - 03 - 14));
        facts.affiliate_number = Some("A-1".into());
        let service = AccountService::builder(policy, digest, seal.clone())
            .store(store.clone())
            .directory(Arc::new(MemoryDirectory::new().with(facts)))
            .hasher(Arc::new(
                Argon2Hasher::new(HashParams::danger_insecure_for_tests()).unwrap(),
            ))
            .build()
            .unwrap();
        let mut req = RegisterRequest::new(MEMBER, "ana.quispe@example.ec");
        req.mobile = Some("0991234567".into());
        req.terms_accepted = true;
        let mut answers = Answers::default();
        answers.affiliate_number = Some("A-1".into());
        req.answers = answers;
        assert_eq!(
            service.register(req).await.unwrap(),
            RegisterOutcome::Submitted
        );
        let mail = store.outbox().pop().unwrap();
        let secrets = seal
            .open(&mail.sealed, mail.idempotency_key.as_bytes())
            .unwrap();
        let out = service
            .activate(
                secrets.token.expose_secret(),
                secrets.code.as_ref().map(|c| c.expose_secret()),
                Password::new(PASSWORD),
                Password::new(PASSWORD),
            )
            .await
            .unwrap();
        assert_eq!(out, ActivateOutcome::Activated);
    }
}
