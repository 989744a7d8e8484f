//! No errors under contention: 200 concurrent calls about one account, on the memory store,
//! SQLite and PostgreSQL (`DATABASE_URL`), all answer without `Contended` or any other error,
//! and the account's counters are exact.
//!
//! * Logins (wrong and right passwords, ISSPOL: threshold 5, lock state revealed): every wrong
//!   attempt is counted or answered as locked, the lock happens at exactly the threshold, and
//!   the right password succeeds whenever the account is not locked.
//! * Unlock-link requests on a locked account and recovery requests on an active one.
#![cfg(all(feature = "memory", feature = "sqlite", feature = "postgres"))]
#![allow(clippy::disallowed_methods)]

mod flows;

use std::sync::Arc;

use afiliado::core::{AccountRecord, AccountState, AuditKind, Contact, Profile};
use afiliado::crypto::{DigestKey, HashParams, hash_password};
use afiliado::memory::{MemoryDirectory, MemoryStore};
use afiliado::ports::{AccountStore, AlwaysPass, ManualClock, MemberFacts};
use afiliado::seal::SealKey;
use afiliado::service::{AccountService, HashPool, LoginOutcome, RecoveryOutcome, RecoveryRequest};
use afiliado::{MemberId, Password, Policy};
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::OffsetDateTime;
use time::macros::{date, datetime};

const MEMBER: &str = "1710034065";
const EMAIL: &str = "ana.perez@example.ec";
const PASSWORD: &str = "Quinde7Lago";
const WRONG: &str = "Quinde7Lagx";
const CALLERS: usize = 200;
const NOW: OffsetDateTime = datetime!(2026-11-22 19:36 -5);

fn id() -> MemberId {
    MEMBER.parse().unwrap()
}

fn cheap(mut policy: Policy) -> Policy {
    policy.hashing = HashParams::danger_insecure_for_tests();
    // Mail caps are not under test here.
    policy.notices.lock_warnings_per_day = 1_000_000;
    policy
}

/// A service on `store` with Ana active, and a hashing pool that admits every caller.
async fn service(store: Arc<dyn AccountStore>, policy: Policy) -> AccountService {
    let mut rng = StdRng::seed_from_u64(9);
    let hash = hash_password(
        PASSWORD.as_bytes(),
        &HashParams::danger_insecure_for_tests(),
        &mut rng,
    )
    .unwrap();
    let since = datetime!(2026-11-01 08:00 -5);
    let mut record = AccountRecord::new(id());
    record.state = AccountState::Active {
        profile: Profile {
            password: hash,
            contact: Contact::email_only(EMAIL.parse().unwrap()),
            enrollment: Default::default(),
            activated_at: since,
            password_changed_at: since,
            last_login_at: None,
        },
        failures: Vec::new(),
    };
    store
        .commit(&record, 0, Vec::new(), Vec::new())
        .await
        .unwrap();
    let facts = MemberFacts::new(id(), "ANA LUCÍA PÉREZ", date!(1980 - 05 - 17));
    AccountService::builder(
        cheap(policy),
        DigestKey::generate(&mut rng),
        SealKey::generate(&mut rng),
    )
    .store(store)
    .directory(Arc::new(MemoryDirectory::new().with(facts)))
    .clock(Arc::new(ManualClock::new(NOW)))
    .human_check(Arc::new(AlwaysPass))
    .pool(HashPool::new(2, CALLERS))
    .build()
    .unwrap()
}

async fn audit(store: &dyn AccountStore) -> Vec<AuditKind> {
    store
        .audit_log(&id())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// 200 concurrent logins, one in four with the right password.
async fn login_storm(store: Arc<dyn AccountStore>, backend: &str) {
    let policy = Policy::isspol();
    let threshold = policy.lockout.threshold;
    let svc = service(store.clone(), policy).await;
    let mut tasks = Vec::new();
    for i in 0..CALLERS {
        let svc = svc.clone();
        let right = i % 4 == 0;
        tasks.push(tokio::spawn(async move {
            let pw = if right { PASSWORD } else { WRONG };
            (right, svc.login(MEMBER, Password::new(pw)).await)
        }));
    }
    let (mut ok, mut failed, mut locked) = (0, 0, 0);
    for t in tasks {
        let (right, out) = t.await.unwrap();
        match out {
            Ok(LoginOutcome::Success { .. }) if right => ok += 1,
            Ok(LoginOutcome::Failed) if !right => failed += 1,
            Ok(LoginOutcome::Locked { .. }) => locked += 1,
            other => panic!("{backend}: right={right}: {other:?}"),
        }
    }
    // Every caller is in the audit log, once.
    let events = audit(&*store).await;
    let count = |f: fn(&AuditKind) -> bool| events.iter().filter(|e| f(e)).count();
    assert_eq!(
        count(|e| matches!(e, AuditKind::LoginSucceeded)),
        ok,
        "{backend}"
    );
    assert_eq!(
        count(|e| matches!(e, AuditKind::LoginFailed { .. })),
        failed + count(|e| matches!(e, AuditKind::Locked { .. })),
        "{backend}: every wrong attempt counted (the locking one answers Locked)"
    );
    assert_eq!(
        count(|e| matches!(e, AuditKind::LoginRefusedLocked)),
        locked - count(|e| matches!(e, AuditKind::Locked { .. })),
        "{backend}"
    );
    assert_eq!(ok + failed + locked, CALLERS);
    // Failures are consecutive and the lock comes at exactly the threshold.
    let mut run = 0;
    let mut is_locked = false;
    for e in &events {
        match e {
            AuditKind::LoginSucceeded => {
                assert!(!is_locked, "{backend}: success while locked");
                run = 0;
            }
            AuditKind::LoginFailed { failures } => {
                assert!(!is_locked, "{backend}: failure counted while locked");
                run += 1;
                assert_eq!(*failures, run, "{backend}: no lost or doubled increment");
            }
            AuditKind::Locked { .. } => {
                assert_eq!(run, threshold, "{backend}: lock at exactly the threshold");
                is_locked = true;
            }
            AuditKind::LoginRefusedLocked => {
                assert!(is_locked, "{backend}: refused as locked while not locked");
            }
            _ => {}
        }
    }
    assert!(is_locked, "{backend}: 150 wrong passwords lock the account");
}

/// 200 concurrent unlock-link requests on a locked account, then 200 concurrent recoveries.
async fn unlock_and_recovery_storm(store: Arc<dyn AccountStore>, backend: &str) {
    let policy = Policy::recommended();
    let threshold = policy.lockout.threshold;
    let svc = service(store.clone(), policy).await;
    for _ in 0..threshold {
        svc.login(MEMBER, Password::new(WRONG)).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            svc.request_unlock(MEMBER, Some("ok")).await
        }));
    }
    for t in tasks {
        let out = t.await.unwrap();
        assert!(out.is_ok(), "{backend}: unlock request: {out:?}");
    }
    let unlock_requests = audit(&*store)
        .await
        .iter()
        .filter(|e| matches!(e, AuditKind::UnlockRequested))
        .count();
    assert_eq!(
        unlock_requests, 1,
        "{backend}: one live link; the other requests send nothing"
    );

    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let mut req = RecoveryRequest::new(MEMBER);
            req.human_response = Some("ok".into());
            svc.start_recovery(req).await
        }));
    }
    for t in tasks {
        match t.await.unwrap() {
            Ok(RecoveryOutcome::Submitted) => {}
            other => panic!("{backend}: recovery: {other:?}"),
        }
    }
    let recoveries = audit(&*store)
        .await
        .iter()
        .filter(|e| matches!(e, AuditKind::RecoveryStarted))
        .count();
    assert_eq!(
        recoveries, 1,
        "{backend}: one live link; the other requests send nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_storm_on_memory() {
    login_storm(Arc::new(MemoryStore::new()), "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_storm_on_sqlite() {
    let (_dir, store) = flows::sqlite_store().await;
    login_storm(store, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_storm_on_postgres() {
    if let Some(store) = flows::postgres_store("contention").await {
        login_storm(store, "postgres").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unlock_and_recovery_storms_on_sqlite() {
    let (_dir, store) = flows::sqlite_store().await;
    unlock_and_recovery_storm(store, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unlock_and_recovery_storms_on_postgres() {
    if let Some(store) = flows::postgres_store("contention").await {
        unlock_and_recovery_storm(store, "postgres").await;
    }
}
