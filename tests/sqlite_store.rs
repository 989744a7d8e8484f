//! The SQLite backend: the shared conformance suite on a file database and on
//! `sqlite::memory:`, plus SQLite specifics (files, WAL, reopening, migrations, concurrency).
#![cfg(all(feature = "sqlite", feature = "test-util"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use afiliado::MemberId;
use afiliado::conformance::{Backend, run_all};
use afiliado::core::{
    AccountRecord, AccountState, AuditEvent, AuditKind, Contact, IssuedToken, Locale, Notice,
    NoticeKind, Pending, SecurityEnrollment,
};
use afiliado::crypto::Digest;
use afiliado::ports::{
    AccountStore, MemberDirectory, MemberFacts, NewMessage, OutboxStatus, StoreError,
};
use afiliado::sqlite::SqliteStore;
use async_trait::async_trait;
use sqlx::Connection as _;
use tempfile::TempDir;
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A valid cédula of province 17 built from `n` (the check digit computed).
fn member(n: u32) -> MemberId {
    let body = format!("17{:07}", n % 10_000_000);
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0') * if i % 2 == 0 { 2 } else { 1 };
            if d > 9 { d - 9 } else { d }
        })
        .sum();
    let check = (10 - sum % 10) % 10;
    format!("{body}{check}").parse().expect("valid cédula")
}

fn t0() -> OffsetDateTime {
    // Microsecond precision and a non-UTC offset: both must survive the round trip.
    datetime!(2026-11-22 19:36:00.123456 -5)
}

fn digest(b: u8) -> Digest {
    Digest::from_bytes([b; 32])
}

fn pending(m: &MemberId, token: u8, expires_at: OffsetDateTime) -> AccountRecord {
    let mut r = AccountRecord::new(m.clone());
    r.state = AccountState::PendingActivation(Pending {
        link: IssuedToken {
            digest: digest(token),
            issued_at: t0(),
            expires_at,
        },
        code: Some(digest(token.wrapping_add(100))),
        code_attempts_left: 3,
        contact: Contact::email_only("ana@example.ec".parse().expect("email")),
        terms_accepted_at: Some(t0()),
        enrollment: SecurityEnrollment::default(),
    });
    r.last_registration_at = Some(t0());
    r
}

fn notice(expires_at: OffsetDateTime) -> Notice {
    Notice::new(
        "ana@example.ec".parse().expect("email"),
        Locale::EsEc,
        NoticeKind::Activation {
            expires_at,
            with_code: true,
        },
    )
}

fn message(key: &str, m: &MemberId, at: OffsetDateTime) -> NewMessage {
    NewMessage::new(key, m.clone(), notice(at), b"sealed-bytes".to_vec(), at)
}

fn event(m: &MemberId, at: OffsetDateTime) -> AuditEvent {
    AuditEvent::new(at, m.clone(), AuditKind::Registered)
}

/// A file store in a fresh temporary directory (kept alive by the returned guard).
async fn file_store() -> (SqliteStore, TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("afiliado.db").display());
    let store = SqliteStore::open(&url).await.expect("open");
    store.migrate().await.expect("migrate");
    (store, dir, url)
}

async fn memory_store() -> SqliteStore {
    let store = SqliteStore::open("sqlite::memory:").await.expect("open");
    store.migrate().await.expect("migrate");
    store
}

/// Runs `check` on a file store and on an in-memory store.
macro_rules! on_both {
    ($check:ident) => {
        let (store, _dir, _url) = file_store().await;
        $check(store).await;
        $check(memory_store().await).await;
    };
}

// ---------------------------------------------------------------------------------------------
// The shared conformance suite, on a file database and on `sqlite::memory:`
// ---------------------------------------------------------------------------------------------

/// Every check gets a new database file in one temporary directory.
struct FileBackend {
    dir: TempDir,
    next: AtomicU32,
}

#[async_trait]
impl Backend for FileBackend {
    type Store = SqliteStore;

    async fn fresh(&self) -> SqliteStore {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("conformance-{n}.db"));
        let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        store
    }

    async fn raw_dump(&self, store: &SqliteStore) -> Vec<String> {
        store.dump_rows().await.expect("dump")
    }
}

/// Every check gets a new in-memory database.
struct MemoryBackend;

#[async_trait]
impl Backend for MemoryBackend {
    type Store = SqliteStore;

    async fn fresh(&self) -> SqliteStore {
        memory_store().await
    }

    async fn raw_dump(&self, store: &SqliteStore) -> Vec<String> {
        store.dump_rows().await.expect("dump")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn conformance_file() {
    let backend = FileBackend {
        dir: tempfile::tempdir().expect("tempdir"),
        next: AtomicU32::new(0),
    };
    run_all(&backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn conformance_memory() {
    run_all(&MemoryBackend).await;
}

// ---------------------------------------------------------------------------------------------
// More outbox, retention and concurrency detail
// ---------------------------------------------------------------------------------------------

async fn outbox(store: SqliteStore) {
    let m = member(5);
    let r = pending(&m, 5, t0() + Duration::hours(1));
    let later = t0() + Duration::minutes(10);
    store
        .commit(
            &r,
            0,
            vec![
                message("a", &m, t0()),
                message("b", &m, t0()),
                message("a", &m, t0()), // same key: skipped
                message("c", &m, later),
            ],
            vec![],
        )
        .await
        .unwrap();
    // A retried commit with a queued key queues nothing new.
    store
        .commit(&r, 1, vec![message("b", &m, t0())], vec![])
        .await
        .unwrap();

    let lease = Duration::minutes(5);
    let first = store.claim_due(t0(), lease, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    let a = &first[0];
    assert_eq!(a.idempotency_key, "a");
    assert_eq!(a.attempts, 1);
    assert_eq!(a.sealed, b"sealed-bytes");
    assert_eq!(a.created_at, t0());
    assert_eq!(a.next_attempt_at, t0());
    assert_eq!(a.notice, notice(t0()));
    assert_eq!(
        a.status,
        OutboxStatus::Claimed {
            lease_until: t0() + lease
        }
    );
    let rest = store.claim_due(t0(), lease, 10).await.unwrap();
    assert_eq!(
        rest.iter()
            .map(|m| m.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["b"],
        "c is not due yet, a is leased"
    );
    let b = rest[0].id;
    assert!(b > a.id);

    // The lease of a lapses: claimable again, attempts counted.
    let after = t0() + lease;
    let again = store.claim_due(after, lease, 10).await.unwrap();
    assert_eq!(
        again
            .iter()
            .map(|m| (m.idempotency_key.as_str(), m.attempts))
            .collect::<Vec<_>>(),
        [("a", 2), ("b", 2)]
    );

    store.mark_sent(a.id, after).await.unwrap();
    store.mark_sent(a.id, after).await.unwrap(); // idempotent
    store.dead_letter(a.id, after, "late").await.unwrap(); // no effect on sent
    store.retry_later(a.id, after).await.unwrap(); // no effect on sent

    let retry_at = after + Duration::minutes(1);
    store.retry_later(b, retry_at).await.unwrap();
    let c_due = store.claim_due(later, lease, 10).await.unwrap();
    assert_eq!(
        c_due
            .iter()
            .map(|m| m.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["b", "c"]
    );
    let c = c_due[1].id;
    store
        .dead_letter(c, later, "address rejected")
        .await
        .unwrap();
    store.mark_sent(c, later).await.unwrap(); // stays dead
    store.retry_later(c, later).await.unwrap(); // stays dead

    let far = later + Duration::days(1);
    let last = store.claim_due(far, lease, 10).await.unwrap();
    assert_eq!(
        last.iter()
            .map(|m| m.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["b"],
        "a is sent, c is dead"
    );
    assert_eq!(last[0].attempts, 4);

    for unknown in [9_999, u64::MAX] {
        assert_eq!(
            store.mark_sent(unknown, far).await,
            Err(StoreError::UnknownMessage { id: unknown })
        );
        assert_eq!(
            store.retry_later(unknown, far).await,
            Err(StoreError::UnknownMessage { id: unknown })
        );
        assert_eq!(
            store.dead_letter(unknown, far, "x").await,
            Err(StoreError::UnknownMessage { id: unknown })
        );
    }
    assert!(store.claim_due(far, lease, 0).await.unwrap().is_empty());

    let dump = store.dump_rows().await.unwrap().join("\n");
    assert!(dump.contains("status=sent"));
    assert!(dump.contains("status=dead"));
    assert!(dump.contains("dead_reason=address rejected"));
    assert!(
        dump.contains("7365616c65642d6279746573 sealed-bytes"),
        "{dump}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_claim_and_transitions() {
    on_both!(outbox);
}

async fn retention(store: SqliteStore) {
    let (a, b, c) = (member(6), member(7), member(8));
    let t = t0();
    store
        .commit(
            &pending(&a, 6, t + Duration::hours(1)),
            0,
            vec![],
            vec![event(&a, t)],
        )
        .await
        .unwrap();
    store
        .commit(
            &pending(&b, 7, t + Duration::hours(2)),
            0,
            vec![],
            vec![event(&b, t + Duration::hours(1))],
        )
        .await
        .unwrap();
    store
        .commit(&AccountRecord::new(c.clone()), 0, vec![], vec![])
        .await
        .unwrap();
    let members = |rs: Vec<AccountRecord>| rs.into_iter().map(|r| r.member).collect::<Vec<_>>();
    assert!(store.expired_pending(t, 10).await.unwrap().is_empty());
    assert_eq!(
        members(
            store
                .expired_pending(t + Duration::hours(1), 10)
                .await
                .unwrap()
        ),
        vec![a.clone()]
    );
    let both = store
        .expired_pending(t + Duration::hours(3), 10)
        .await
        .unwrap();
    assert_eq!(members(both.clone()), [a.clone(), b.clone()]);
    assert!(both.iter().all(|r| r.version == 1));
    assert_eq!(
        store
            .expired_pending(t + Duration::hours(3), 1)
            .await
            .unwrap()
            .len(),
        1
    );

    assert_eq!(store.purge_audit(t).await.unwrap(), 0);
    assert_eq!(
        store.purge_audit(t + Duration::minutes(1)).await.unwrap(),
        1
    );
    assert!(store.audit_log(&a).await.unwrap().is_empty());
    assert_eq!(store.audit_log(&b).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_pending_and_audit_purge() {
    on_both!(retention);
}

// ---------------------------------------------------------------------------------------------
// SQLite specifics
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_is_durable_across_reopen() {
    let (store, _dir, url) = file_store().await;
    let m = member(70);
    let record = pending(&m, 70, t0() + Duration::hours(1));
    store
        .commit(
            &record,
            0,
            vec![message("k", &m, t0())],
            vec![event(&m, t0())],
        )
        .await
        .unwrap();
    store
        .enroll(MemberFacts::new(m.clone(), "ANA", date!(1990 - 01 - 01)))
        .await
        .unwrap();
    store.close().await;
    assert!(matches!(
        store.load(&m).await,
        Err(StoreError::Unavailable(_))
    ));
    drop(store);

    let reopened = SqliteStore::open(&url).await.unwrap();
    reopened.migrate().await.unwrap();
    let loaded = reopened.load(&m).await.unwrap().unwrap();
    assert_eq!(loaded.version, 1);
    assert_eq!(loaded.state, record.state);
    assert_eq!(reopened.audit_log(&m).await.unwrap().len(), 1);
    assert!(reopened.find(&m).await.unwrap().is_some());
    assert_eq!(
        reopened
            .claim_due(t0(), Duration::minutes(1), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_twice_is_harmless() {
    let (store, _dir, _url) = file_store().await;
    let m = member(71);
    store
        .commit(&AccountRecord::new(m.clone()), 0, vec![], vec![])
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.load(&m).await.unwrap().unwrap().version, 1);

    let memory = memory_store().await;
    memory.migrate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_uses_wal() {
    let (store, dir, _url) = file_store().await;
    let path = dir.path().join("afiliado.db");
    assert!(path.exists(), "the file is created");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stores_are_separate_and_shared_by_clones() {
    let one = memory_store().await;
    let two = memory_store().await;
    let m = member(72);
    one.commit(&AccountRecord::new(m.clone()), 0, vec![], vec![])
        .await
        .unwrap();
    assert!(one.clone().load(&m).await.unwrap().is_some());
    assert!(two.load(&m).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_debug() {
    assert!(matches!(
        SqliteStore::open("postgres://localhost/x").await,
        Err(StoreError::Invalid(_))
    ));
    // Missing folders are created, but not under a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::File::create(&file).unwrap();
    let impossible = file.join("sub/a.db");
    assert!(matches!(
        SqliteStore::open(&format!("sqlite://{}", impossible.display())).await,
        Err(StoreError::Unavailable(_))
    ));
    let store = memory_store().await;
    assert!(format!("{store:?}").starts_with("SqliteStore { location: \":memory:\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_are_reported_without_content() {
    let (store, dir, _url) = file_store().await;
    let m = member(73);
    store
        .commit(&AccountRecord::new(m.clone()), 0, vec![], vec![])
        .await
        .unwrap();
    let path = dir.path().join("afiliado.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET record = '{\"secret-looking\": 1' WHERE member_id = ?")
        .bind(m.as_str())
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    match store.load(&m).await {
        Err(StoreError::Corrupt(msg)) => assert!(!msg.contains("secret-looking"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

async fn concurrent_writers(store: SqliteStore) {
    let store = Arc::new(store);
    // Fifty members committed in parallel: no writer fails on the lock.
    let mut tasks = Vec::new();
    for i in 100..150u32 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let m = member(i);
            let r = AccountRecord::new(m.clone());
            store
                .commit(&r, 0, vec![message(&format!("w-{i}"), &m, t0())], vec![])
                .await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(1));
    }
    // Dispatchers claiming in parallel never share a message under a live lease.
    let mut claims = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        claims.push(tokio::spawn(async move {
            store.claim_due(t0(), Duration::minutes(5), 7).await
        }));
    }
    let mut ids = Vec::new();
    for claim in claims {
        ids.extend(claim.await.unwrap().unwrap().into_iter().map(|m| m.id));
    }
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no message claimed twice");
    assert_eq!(n, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_writers_and_dispatchers() {
    on_both!(concurrent_writers);
}

/// A fresh checkout has no `data/` folder: opening `sqlite://data/afiliado.db` creates it.
#[tokio::test]
async fn opening_a_file_in_missing_folders_creates_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("nested").join("afiliado.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("opens in a folder that did not exist");
    store.migrate().await.unwrap();
    assert!(path.exists());
}
