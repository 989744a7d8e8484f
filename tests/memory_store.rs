//! The storage contract (DESIGN §6) on the in-memory adapters, plus the small ports:
//! clock, mailer, human check.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use afiliado::core::{
    AccountRecord, AccountState, AuditEvent, AuditKind, Contact, IssuedToken, Locale, Lock,
    LockReason, Notice, NoticeKind, Pending, Profile, SecurityEnrollment, Standing,
};
use afiliado::crypto::{Digest, HashParams, TokenPurpose, hash_password};
use afiliado::memory::{MemoryDirectory, MemoryMailer, MemoryStore};
use afiliado::ports::{
    AccountStore, AlwaysPass, Clock, HumanCheck, Mail, MailError, Mailer, ManualClock,
    MemberDirectory, MemberFacts, NewMessage, OutboxStatus, StoreError, SystemClock,
};
use afiliado::{Email, MemberId};
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-11-22 19:00:00.123456 -5);

fn member(s: &str) -> MemberId {
    s.parse().unwrap()
}

fn ana() -> MemberId {
    member("1710034065")
}

fn email() -> Email {
    "ana@example.ec".parse().unwrap()
}

fn digest(b: u8) -> Digest {
    Digest::from_bytes([b; 32])
}

fn token(b: u8) -> IssuedToken {
    IssuedToken {
        digest: digest(b),
        issued_at: T0,
        expires_at: T0 + Duration::hours(1),
    }
}

fn pending(b: u8) -> AccountRecord {
    let mut r = AccountRecord::new(ana());
    r.state = AccountState::PendingActivation(Pending {
        link: token(b),
        code: Some(digest(b.wrapping_add(100))),
        code_attempts_left: 3,
        contact: Contact::email_only(email()),
        terms_accepted_at: Some(T0),
        enrollment: SecurityEnrollment::default(),
    });
    r
}

fn profile() -> Profile {
    let mut rng = StdRng::seed_from_u64(1);
    Profile {
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
        last_login_at: Some(T0 + Duration::microseconds(1)),
    }
}

/// Resetting on top of a lock with an unlock link: two live digests.
fn resetting(reset: u8, unlock: u8) -> AccountRecord {
    let mut r = AccountRecord::new(ana());
    r.state = AccountState::Resetting {
        profile: profile(),
        reset: token(reset),
        return_to: Standing::Locked {
            lock: Lock {
                reason: LockReason::FailedLogins,
                since: T0,
                auto_unlock_at: Some(T0 + Duration::minutes(20)),
                unlock_link: Some(token(unlock)),
            },
        },
    };
    r
}

fn notice() -> Notice {
    Notice::new(
        "ana@example.ec".parse().unwrap(),
        Locale::EsEc,
        NoticeKind::PasswordChanged,
    )
}

fn audit(m: &MemberId, at: OffsetDateTime) -> AuditEvent {
    AuditEvent::new(at, m.clone(), AuditKind::LoginSucceeded)
}

fn msg(key: &str) -> NewMessage {
    msg_at(key, T0)
}

fn msg_at(key: &str, at: OffsetDateTime) -> NewMessage {
    NewMessage::new(key, ana(), notice(), vec![0xA5; 48], at)
}

/// A store and the service's clock (the store itself reads none).
fn store_at(t: OffsetDateTime) -> (Arc<ManualClock>, MemoryStore) {
    (Arc::new(ManualClock::new(t)), MemoryStore::new())
}

#[tokio::test]
async fn round_trip_and_missing() {
    let store = MemoryStore::new();
    assert_eq!(store.load(&ana()).await.unwrap(), None);
    let rec = resetting(1, 2);
    assert_eq!(store.commit(&rec, 0, vec![], vec![]).await.unwrap(), 1);
    let back = store.load(&ana()).await.unwrap().unwrap();
    assert_eq!(back.version, 1);
    let mut expected = rec.clone();
    expected.version = 1;
    assert_eq!(back, expected);
    // Next commit on version 1 gives 2.
    assert_eq!(store.commit(&back, 1, vec![], vec![]).await.unwrap(), 2);
    assert_eq!(store.load(&member("0926687856")).await.unwrap(), None);
    assert_eq!(
        store
            .load_by_token(TokenPurpose::Reset, &digest(9))
            .await
            .unwrap(),
        None
    );
    assert!(store.audit_log(&ana()).await.unwrap().is_empty());
}

#[tokio::test]
async fn timestamps_round_trip_at_microsecond_precision() {
    let (_, store) = store_at(T0);
    let rec = resetting(1, 2);
    store
        .commit(&rec, 0, vec![msg("k")], vec![audit(&ana(), T0)])
        .await
        .unwrap();
    let back = store.load(&ana()).await.unwrap().unwrap();
    let p = back.state.profile().unwrap();
    assert_eq!(p.activated_at, T0);
    assert_eq!(p.last_login_at, Some(T0 + Duration::microseconds(1)));
    assert_eq!(back.state.lock().unwrap().since.microsecond(), 123_456);
    assert_eq!(store.audit_log(&ana()).await.unwrap()[0].at, T0);
    let out = store.outbox();
    assert_eq!(out[0].created_at, T0);
    assert_eq!(out[0].next_attempt_at, T0);
}

#[tokio::test]
async fn load_by_token_follows_live_digests() {
    let store = MemoryStore::new();
    let rec = resetting(1, 2);
    store.commit(&rec, 0, vec![], vec![]).await.unwrap();
    for (purpose, d) in rec.token_digests() {
        let found = store.load_by_token(purpose, &d).await.unwrap().unwrap();
        assert_eq!(found.member, ana());
    }
    // Purpose is part of the key.
    assert_eq!(
        store
            .load_by_token(TokenPurpose::Activation, &digest(1))
            .await
            .unwrap(),
        None
    );
    // Replace with a pending registration: the old digests die, the new one lives.
    store.commit(&pending(3), 1, vec![], vec![]).await.unwrap();
    for (purpose, d) in rec.token_digests() {
        assert_eq!(store.load_by_token(purpose, &d).await.unwrap(), None);
    }
    let found = store
        .load_by_token(TokenPurpose::Activation, &digest(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.version, 2);
    // And a later replacement kills that one too.
    store.commit(&pending(4), 2, vec![], vec![]).await.unwrap();
    assert_eq!(
        store
            .load_by_token(TokenPurpose::Activation, &digest(3))
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .load_by_token(TokenPurpose::Activation, &digest(4))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn stale_version_conflicts_and_writes_nothing() {
    let (_, store) = store_at(T0);
    store
        .commit(&pending(1), 0, vec![msg("a")], vec![audit(&ana(), T0)])
        .await
        .unwrap();
    let before = (
        store.load(&ana()).await.unwrap(),
        store.outbox(),
        store.audit_log(&ana()).await.unwrap(),
    );
    for stale in [0, 2, 7] {
        let err = store
            .commit(
                &pending(2),
                stale,
                vec![msg("b")],
                vec![audit(&ana(), T0 + Duration::SECOND)],
            )
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::Conflict {
                member: ana(),
                expected: stale,
                found: Some(1)
            }
        );
        assert!(err.to_string().contains("expected"));
    }
    // A record that does not exist yet only accepts version 0.
    let other = AccountRecord::new(member("0926687856"));
    let err = store.commit(&other, 1, vec![], vec![]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { found: None, .. }));
    let after = (
        store.load(&ana()).await.unwrap(),
        store.outbox(),
        store.audit_log(&ana()).await.unwrap(),
    );
    assert_eq!(before, after);
    assert_eq!(store.load(&other.member).await.unwrap(), None);
    assert_eq!(
        store
            .load_by_token(TokenPurpose::Activation, &digest(2))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_commits_on_one_version_exactly_one_wins() {
    let store: Arc<dyn AccountStore> = Arc::new(MemoryStore::new());
    store.commit(&pending(1), 0, vec![], vec![]).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100u8)
        .map(|i| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .commit(
                        &pending(i.wrapping_add(10)),
                        1,
                        vec![NewMessage::new(
                            format!("m{i}"),
                            ana(),
                            notice(),
                            vec![],
                            T0,
                        )],
                        vec![audit(&ana(), T0)],
                    )
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(v) => {
                assert_eq!(v, 2);
                wins += 1;
            }
            Err(StoreError::Conflict { found, .. }) => assert_eq!(found, Some(2)),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.load(&ana()).await.unwrap().unwrap().version, 2);
    assert_eq!(store.audit_log(&ana()).await.unwrap().len(), 1);
    let due = store
        .claim_due(T0 + Duration::days(36500), Duration::MINUTE, 1000)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
}

#[tokio::test]
async fn outbox_lifecycle() {
    let (clock, store) = store_at(T0);
    store
        .commit(
            &pending(1),
            0,
            vec![msg("a"), msg("b"), msg("c"), msg("d")],
            vec![],
        )
        .await
        .unwrap();
    let lease = Duration::minutes(5);

    // Nothing is due before it was created.
    let early = store
        .claim_due(T0 - Duration::SECOND, lease, 10)
        .await
        .unwrap();
    assert!(early.is_empty());

    // The limit is honoured, oldest first.
    let first = store.claim_due(T0, lease, 2).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|m| m.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(first.iter().all(|m| m.attempts == 1
        && m.status
            == OutboxStatus::Claimed {
                lease_until: T0 + lease
            }));
    assert_eq!(first[0].sealed, vec![0xA5; 48]);
    assert!(first[1].id > first[0].id);

    // Claimed ones are not claimable again while the lease runs.
    let second = store.claim_due(T0, lease, 10).await.unwrap();
    assert_eq!(second.len(), 2);
    assert_eq!(second[0].idempotency_key, "c");
    assert!(
        store
            .claim_due(T0 + Duration::minutes(4), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let (a, b, c, d) = (first[0].id, first[1].id, second[0].id, second[1].id);
    let t1 = T0 + Duration::minutes(1);
    store.mark_sent(a, t1).await.unwrap();
    store.retry_later(b, T0 + Duration::hours(1)).await.unwrap();
    store.dead_letter(c, t1, "address rejected").await.unwrap();

    // At lease expiry only `d` (expired lease) is reclaimed; `b` waits for its retry time.
    let t_lease = T0 + lease;
    let again = store.claim_due(t_lease, lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, d);
    assert_eq!(again[0].attempts, 2);

    let later = store
        .claim_due(T0 + Duration::hours(1), lease, 10)
        .await
        .unwrap();
    // `b` is due again, and so is `d`, whose second lease lapsed meanwhile.
    assert_eq!(
        later.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(),
        [(b, 2), (d, 3)]
    );

    // Terminal states stay terminal.
    store.mark_sent(c, t1).await.unwrap();
    store.retry_later(a, T0).await.unwrap();
    store.dead_letter(a, t1, "late").await.unwrap();
    let out = store.outbox();
    let status = |id: u64| out.iter().find(|m| m.id == id).unwrap().status.clone();
    assert_eq!(status(a), OutboxStatus::Sent { at: t1 });
    assert_eq!(
        status(c),
        OutboxStatus::DeadLetter {
            at: t1,
            reason: "address rejected".into()
        }
    );
    assert!(
        store
            .claim_due(T0 + Duration::days(1), lease, 10)
            .await
            .unwrap()
            .iter()
            .all(|m| m.id == b || m.id == d)
    );

    // Unknown ids are reported.
    assert_eq!(
        store.mark_sent(999, t1).await,
        Err(StoreError::UnknownMessage { id: 999 })
    );
    assert!(store.retry_later(999, t1).await.is_err());
    assert!(store.dead_letter(999, t1, "x").await.is_err());
    // Messages keep the instant the service gave them.
    clock.advance(Duration::hours(2));
    assert!(out.iter().all(|m| m.created_at == T0));
}

#[tokio::test]
async fn idempotency_keys_dedupe() {
    let (clock, store) = store_at(T0);
    store
        .commit(&pending(1), 0, vec![msg("k1"), msg("k1")], vec![])
        .await
        .unwrap();
    clock.advance(Duration::MINUTE);
    store
        .commit(
            &pending(2),
            1,
            vec![msg_at("k1", clock.now()), msg_at("k2", clock.now())],
            vec![],
        )
        .await
        .unwrap();
    let out = store.outbox();
    assert_eq!(
        out.iter()
            .map(|m| m.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["k1", "k2"]
    );
    assert_eq!(out[0].created_at, T0);
    assert_eq!(out[1].created_at, T0 + Duration::MINUTE);
}

#[tokio::test]
async fn audit_log_is_append_only_and_ordered() {
    let store = MemoryStore::new();
    let other = member("0926687856");
    store
        .commit(
            &pending(1),
            0,
            vec![],
            vec![audit(&ana(), T0), audit(&other, T0)],
        )
        .await
        .unwrap();
    store
        .commit(
            &pending(2),
            1,
            vec![],
            vec![audit(&ana(), T0 + Duration::SECOND)],
        )
        .await
        .unwrap();
    let log = store.audit_log(&ana()).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.at).collect::<Vec<_>>(),
        [T0, T0 + Duration::SECOND]
    );
    assert_eq!(store.audit_log(&other).await.unwrap().len(), 1);
}

#[test]
fn debug_hides_payloads() {
    let m = msg("k");
    let dbg = format!("{m:?}");
    assert!(dbg.contains("<48 bytes>"), "{dbg}");
    assert!(!dbg.contains("165"), "{dbg}"); // 0xA5

    let mail = Mail::new(
        "k",
        email(),
        "Activa tu cuenta",
        "https://portal.example/activar?t=SECRETTOKEN",
    );
    let dbg = format!("{mail:?}");
    assert!(!dbg.contains("SECRETTOKEN"), "{dbg}");
    assert!(dbg.contains("<44 bytes>"), "{dbg}");
    assert!(dbg.contains("Activa tu cuenta"));
}

#[test]
fn manual_clock() {
    let c = ManualClock::new(T0);
    assert_eq!(c.now(), T0);
    c.advance(Duration::minutes(20));
    assert_eq!(c.now(), datetime!(2026-11-22 19:20:00.123456 -5));
    c.advance(-Duration::minutes(30));
    assert_eq!(c.now(), T0 - Duration::minutes(10));
    c.set(T0);
    assert_eq!(c.now(), T0);
    // Out of range: unchanged, no panic.
    c.advance(Duration::MAX);
    assert_eq!(c.now(), T0);
    // Shared through Arc, as dyn.
    let shared: Arc<dyn Clock> = Arc::new(Arc::new(c));
    assert_eq!(shared.now(), T0);
    assert!(SystemClock.now() > datetime!(2020-01-01 0:00 UTC));
}

#[tokio::test]
async fn mailer_failure_injection() {
    let mailer = MemoryMailer::new();
    let dynm: &dyn Mailer = &mailer;
    let mail = Mail::new("k", email(), "Hola", "secret link text");
    mailer.fail_next(2);
    for _ in 0..2 {
        assert!(matches!(
            dynm.send(&mail).await,
            Err(MailError::Transient(_))
        ));
    }
    dynm.send(&mail).await.unwrap();
    assert_eq!(mailer.sent(), vec![mail]);
    let dbg = format!("{mailer:?}");
    assert!(!dbg.contains("secret"), "{dbg}");
}

#[tokio::test]
async fn directory_and_human_check() {
    let facts = MemberFacts::new(ana(), "ANA QUISPE", date!(1990 - 05 - 14));
    let dir: Arc<dyn MemberDirectory> = Arc::new(MemoryDirectory::new().with(facts.clone()));
    assert_eq!(dir.find(&ana()).await.unwrap(), Some(facts));
    let foreigner = member("0926687856");
    assert_eq!(dir.find(&foreigner).await.unwrap(), None);
    let mut f = MemberFacts::new(foreigner.clone(), "JOHN DOE", date!(1985 - 01 - 02));
    f.contribution_years = vec![2024, 2025];
    dir.enroll(f.clone()).await.unwrap();
    assert_eq!(dir.find(&foreigner).await.unwrap(), Some(f));

    let hc: Arc<dyn HumanCheck> = Arc::new(AlwaysPass);
    assert!(hc.verify("anything").await.unwrap());
}
