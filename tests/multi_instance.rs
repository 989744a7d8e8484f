//! Two service instances with separate pools share one PostgreSQL database and run 2,000
//! mixed concurrent commands against the same 20 accounts. Afterwards every account's
//! counters and state equal a serial replay of its audit log, every lock happened at exactly
//! the threshold failure, and no notice was lost or duplicated in the outbox.
//! (Keycloak and Devise both shipped lost-update bugs in failed-login counters.)
#![cfg(all(feature = "postgres", feature = "memory"))]
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::Arc;

use afiliado::core::{AccountRecord, AccountState, AuditKind, Contact, NoticeKind, Profile};
use afiliado::crypto::{DigestKey, HashParams, hash_password};
use afiliado::memory::MemoryDirectory;
use afiliado::ports::{AccountStore, AlwaysPass, ManualClock, MemberFacts};
use afiliado::postgres::{PoolSettings, PostgresStore};
use afiliado::seal::SealKey;
use afiliado::service::{AccountService, LoginOutcome, RecoveryRequest, ServiceError};
use afiliado::{MemberId, Password, Policy};
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::macros::{date, datetime};

const ACCOUNTS: u64 = 20;
const COMMANDS: usize = 2_000;
const RIGHT: &str = "Atardecer en el Cotopaxi";

fn cedula(n: u64) -> MemberId {
    let text = format!("17{:07}", 1_000_000 + n);
    let mut nine = [0u8; 9];
    for (d, c) in nine.iter_mut().zip(text.bytes()) {
        *d = c - b'0';
    }
    format!("{text}{}", afiliado::identity::check_digit(&nine))
        .parse()
        .unwrap()
}

/// Replays one member's audit log serially and checks each step is consistent; returns
/// (failures in window, locked, lockouts).
fn replay(log: &[afiliado::core::AuditEvent], threshold: u32) -> (u32, bool, u32) {
    let (mut failures, mut locked, mut lockouts) = (0u32, false, 0u32);
    for e in log {
        match &e.kind {
            AuditKind::LoginSucceeded => {
                assert!(!locked, "a locked account authenticated");
                failures = 0;
                lockouts = 0;
            }
            AuditKind::LoginFailed { failures: n } => {
                assert!(!locked, "a failure was counted on a locked account");
                failures += 1;
                assert_eq!(*n, failures, "lost or duplicated failure increment");
            }
            AuditKind::Locked { lockouts: k, .. } => {
                assert_eq!(
                    failures, threshold,
                    "lock not at exactly the threshold failure"
                );
                locked = true;
                failures = 0;
                lockouts += 1;
                assert_eq!(*k, lockouts);
            }
            AuditKind::LoginRefusedLocked | AuditKind::UnlockRequested => assert!(locked),
            AuditKind::Unlocked | AuditKind::AutoUnlocked => {
                locked = false;
                lockouts = 0;
            }
            _ => {}
        }
    }
    (failures, locked, lockouts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_keep_counters_exact() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        println!("skipped: DATABASE_URL not set");
        assert!(
            std::env::var_os("AFILIADO_REQUIRE_SERVICES").is_none(),
            "DATABASE_URL is not set but AFILIADO_REQUIRE_SERVICES is (CI must run this)"
        );
        return;
    };
    let schema = format!(
        "afiliado_mi_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let open = || {
        PostgresStore::open_with(
            &url,
            PoolSettings::default()
                .max_connections(8)
                .schema(schema.clone()),
        )
    };
    let (a, b) = (
        Arc::new(open().await.unwrap()),
        Arc::new(open().await.unwrap()),
    );
    a.migrate().await.unwrap();

    let mut policy = Policy::recommended(); // 10 failures, progressive lock, unlock link
    policy.hashing = HashParams::danger_insecure_for_tests();
    policy.notices.lock_warnings_per_day = 1_000_000;
    let mut rng = StdRng::seed_from_u64(7);
    let digest_key = DigestKey::from_bytes(&[7u8; 32]).unwrap();
    let seal_key = SealKey::generate(&mut rng);
    let now = datetime!(2026-11-22 10:00 -5);
    let clock = Arc::new(ManualClock::new(now));

    // 20 active accounts, committed through instance A.
    let mut directory = MemoryDirectory::new();
    for n in 0..ACCOUNTS {
        let member = cedula(n);
        directory = directory.with(MemberFacts::new(
            member.clone(),
            "AFILIADO DE PRUEBA",
            date!(1980 - 01 - 01),
        ));
        let mut record = AccountRecord::new(member);
        record.state = AccountState::Active {
            profile: Profile {
                password: hash_password(RIGHT.as_bytes(), &policy.hashing, &mut rng).unwrap(),
                contact: Contact::email_only(format!("afiliado{n}@example.ec").parse().unwrap()),
                enrollment: Default::default(),
                activated_at: now,
                password_changed_at: now,
                last_login_at: None,
            },
            failures: Vec::new(),
        };
        a.commit(&record, 0, vec![], vec![]).await.unwrap();
    }
    let directory = Arc::new(directory);
    let service = |store: Arc<PostgresStore>| {
        AccountService::builder(policy.clone(), digest_key.clone(), seal_key.clone())
            .store(store)
            .directory(directory.clone())
            .human_check(Arc::new(AlwaysPass))
            .clock(clock.clone())
            .max_retries(10_000)
            // This test is about counters, not load shedding: every command may queue.
            .pool(afiliado::service::HashPool::new(2, COMMANDS))
            .build()
            .unwrap()
    };
    let instances = [service(a.clone()), service(b.clone())];

    // 2,000 mixed commands, all in flight at once, alternating instances.
    let mut tasks = Vec::with_capacity(COMMANDS);
    for i in 0..COMMANDS {
        let svc = instances[i % 2].clone();
        let member = cedula((i as u64 * 7) % ACCOUNTS);
        tasks.push(tokio::spawn(async move {
            let id = member.as_str().to_owned();
            match i % 20 {
                0 => svc.login(&id, Password::new(RIGHT)).await.map(|_| ()),
                1 => svc.request_unlock(&id, Some("ok")).await,
                2 => {
                    let mut r = RecoveryRequest::new(id.clone());
                    r.human_response = Some("ok".into());
                    svc.start_recovery(r).await.map(|_| ())
                }
                _ => match svc.login(&id, Password::new("equivocada equivocada")).await {
                    Ok(LoginOutcome::Success { .. }) => panic!("wrong password logged in"),
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                },
            }
        }));
    }
    let mut errors: Vec<ServiceError> = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            errors.push(e);
        }
    }
    assert!(errors.is_empty(), "commands failed: {errors:?}");

    // Outbox: every notice exactly once.
    let queued = a
        .claim_due(
            now + time::Duration::days(1),
            time::Duration::hours(1),
            1_000_000,
        )
        .await
        .unwrap();
    let mut notices: HashMap<(String, &'static str), usize> = HashMap::new();
    for m in &queued {
        let kind = match m.notice.kind {
            NoticeKind::Locked { .. } => "locked",
            NoticeKind::UnlockLink { .. } => "unlock_link",
            NoticeKind::ResetLink { .. } => "reset_link",
            NoticeKind::Unlocked => "unlocked",
            _ => "other",
        };
        *notices
            .entry((m.member.as_str().to_owned(), kind))
            .or_default() += 1;
    }

    let mut total_locks = 0;
    for n in 0..ACCOUNTS {
        let member = cedula(n);
        let log = b.audit_log(&member).await.unwrap();
        let (failures, locked, lockouts) = replay(&log, policy.lockout.threshold);
        let record = a.load(&member).await.unwrap().unwrap();
        assert_eq!(record.lockouts, lockouts, "{member:?}: lockouts");
        assert_eq!(
            record.state.lock().is_some(),
            locked,
            "{member:?}: lock state"
        );
        let stored_failures = match &record.state {
            AccountState::Active { failures, .. } => failures.len() as u32,
            AccountState::Resetting {
                return_to: afiliado::core::Standing::Active { failures },
                ..
            } => failures.len() as u32,
            _ => 0,
        };
        assert_eq!(stored_failures, failures, "{member:?}: failures in window");
        let count = |k: &AuditKind| {
            log.iter()
                .filter(|e| std::mem::discriminant(&e.kind) == std::mem::discriminant(k))
                .count()
        };
        let locks = count(&AuditKind::Locked {
            reason: afiliado::core::LockReason::FailedLogins,
            lockouts: 0,
            until: None,
        });
        total_locks += locks;
        let key = |k: &'static str| {
            notices
                .get(&(member.as_str().to_owned(), k))
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(key("locked"), locks, "{member:?}: lock notices");
        assert_eq!(
            key("unlock_link"),
            count(&AuditKind::UnlockRequested),
            "{member:?}: unlock links"
        );
        assert_eq!(
            key("reset_link"),
            count(&AuditKind::RecoveryStarted),
            "{member:?}: reset links"
        );
    }
    assert!(total_locks > 0, "the mix must reach the threshold");
    a.close().await;
    b.close().await;
}
