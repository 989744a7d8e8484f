//! The SQLite store survives a transient write fault: while the write-ahead log cannot be
//! written every write fails with a [`StoreError`] (no panic), and once the fault is cleared
//! the very next write, and every write after it on every pooled connection, succeeds.
//!
//! The fault is injected with `chattr +i` on the `-wal` file (the immutable attribute stops
//! even root, who ignores permission bits). The test fails loudly when `chattr` is missing or
//! not permitted, and a guard clears the attribute again whatever happens.
#![cfg(feature = "sqlite")]

use std::path::{Path, PathBuf};
use std::process::Command;

use afiliado::MemberId;
use afiliado::core::{AccountRecord, AuditEvent, AuditKind, Locale, Notice, NoticeKind};
use afiliado::ports::{AccountStore, MemberDirectory, MemberFacts, NewMessage, StoreError};
use afiliado::sqlite::SqliteStore;
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};
use tokio::task::JoinSet;

/// More than the file pool's connections, so every pooled connection gets to fail.
const WRITES_DURING_FAULT: u32 = 12;

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
    datetime!(2026-11-22 19:36:00.123456 -5)
}

fn message(key: &str, m: &MemberId) -> NewMessage {
    let notice = Notice::new(
        "ana@example.ec".parse().expect("email"),
        Locale::EsEc,
        NoticeKind::Activation {
            expires_at: t0() + Duration::hours(1),
            with_code: true,
        },
    );
    NewMessage::new(key, m.clone(), notice, b"sealed-bytes".to_vec(), t0())
}

fn event(m: &MemberId) -> AuditEvent {
    AuditEvent::new(t0(), m.clone(), AuditKind::Registered)
}

fn facts(m: &MemberId) -> MemberFacts {
    MemberFacts::new(m.clone(), "ANA", date!(1990 - 01 - 01))
}

/// Runs `chattr <flag> <path>`, panicking with the reason when it cannot.
fn chattr(flag: &str, path: &Path) {
    let out = Command::new("chattr")
        .arg(flag)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("this test needs `chattr` (e2fsprogs) to inject a fault: {e}"));
    assert!(
        out.status.success(),
        "`chattr {flag} {}` failed ({}): {}; this test needs root (CAP_LINUX_IMMUTABLE) and a \
         file system with the immutable attribute",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// The immutable attribute on one file, cleared again on drop (even when the test panics, so
/// the temporary directory can be removed).
struct Immutable {
    path: PathBuf,
    set: bool,
}

impl Immutable {
    fn set(path: &Path) -> Self {
        assert!(path.exists(), "{} does not exist", path.display());
        chattr("+i", path);
        let guard = Self {
            path: path.to_owned(),
            set: true,
        };
        // Prove the fault is real: even root cannot open the file for writing now.
        let writable = std::fs::OpenOptions::new().append(true).open(path).is_ok();
        assert!(!writable, "the immutable attribute did not take effect");
        guard
    }

    fn clear(mut self) {
        chattr("-i", &self.path);
        self.set = false;
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        if self.set {
            let _ = Command::new("chattr").arg("-i").arg(&self.path).status();
        }
    }
}

fn assert_failed<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Unavailable(_) | StoreError::Corrupt(_)) => {}
        other => panic!("{what} during the fault: expected a storage error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_recover_after_the_wal_was_unwritable() {
    recovers_from_a_wal_fault("").await;
}

/// The same with the WAL index in process memory (`vfs=unix-excl`, no `-shm` file).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_recover_after_the_wal_was_unwritable_with_the_exclusive_vfs() {
    recovers_from_a_wal_fault("?vfs=unix-excl").await;
}

/// Opens a store on a fresh file (with `params` appended to its URL), makes its WAL
/// unwritable, checks every write path fails, clears the fault and checks every write path
/// works again, at once and on every pooled connection.
async fn recovers_from_a_wal_fault(params: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("afiliado.db");
    let store = SqliteStore::open(&format!("sqlite://{}{params}", db.display()))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");

    // Before the fault: an account with four queued messages, three of them claimed, and one
    // enrolled member; the WAL exists.
    let first = member(1);
    let keys = ["k1", "k2", "k3", "k4"];
    let v1 = store
        .commit(
            &AccountRecord::new(first.clone()),
            0,
            keys.iter().map(|k| message(k, &first)).collect(),
            vec![event(&first)],
        )
        .await
        .expect("commit before the fault");
    assert_eq!(v1, 1);
    let lease = Duration::minutes(5);
    let claimed = store.claim_due(t0(), lease, 3).await.expect("claim");
    let [a, b, c] = [claimed[0].id, claimed[1].id, claimed[2].id];
    store.enroll(facts(&first)).await.expect("enroll");
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let shm = PathBuf::from(format!("{}-shm", db.display()));
    assert_eq!(
        shm.exists(),
        params.is_empty(),
        "a `-shm` file exists unless the WAL index is kept in memory"
    );

    // The fault: the WAL cannot be written.
    let fault = Immutable::set(&wal);

    // Concurrent commits, more than the pool has connections: each one fails, none panics.
    let mut writers = JoinSet::new();
    for n in 0..WRITES_DURING_FAULT {
        let store = store.clone();
        writers.spawn(async move {
            let m = member(100 + n);
            store
                .commit(
                    &AccountRecord::new(m.clone()),
                    0,
                    vec![message(&format!("f{n}"), &m)],
                    vec![event(&m)],
                )
                .await
        });
    }
    while let Some(joined) = writers.join_next().await {
        assert_failed("a concurrent commit", joined.expect("no panic"));
    }
    // Every other write path fails too.
    assert_failed(
        "commit",
        store
            .commit(
                &AccountRecord::new(first.clone()),
                1,
                vec![],
                vec![event(&first)],
            )
            .await,
    );
    assert_failed(
        "claim_due",
        store.claim_due(t0(), lease, 10).await.map(|v| v.len()),
    );
    assert_failed("mark_sent", store.mark_sent(a, t0()).await);
    assert_failed("retry_later", store.retry_later(b, t0()).await);
    assert_failed("dead_letter", store.dead_letter(c, t0(), "bounced").await);
    assert_failed("enroll", store.enroll(facts(&member(2))).await);
    assert_failed(
        "enroll_many",
        store.enroll_many(vec![facts(&member(3))]).await,
    );

    // The fault clears: the very next write succeeds, with its outbox and audit.
    fault.clear();
    let second = member(4);
    let v = store
        .commit(
            &AccountRecord::new(second.clone()),
            0,
            vec![message("after", &second)],
            vec![event(&second)],
        )
        .await
        .expect("the first commit after the fault");
    assert_eq!(v, 1);
    let loaded = store.load(&second).await.expect("load").expect("committed");
    assert_eq!(loaded.version, 1);
    assert_eq!(store.audit_log(&second).await.expect("audit").len(), 1);
    // Nothing of the failed writes is visible.
    assert_eq!(
        store.load(&first).await.expect("load").map(|r| r.version),
        Some(1)
    );
    assert_eq!(store.audit_log(&first).await.expect("audit").len(), 1);
    for n in 0..WRITES_DURING_FAULT {
        assert!(store.load(&member(100 + n)).await.expect("load").is_none());
    }

    // Every outbox transition works again.
    let due = store.claim_due(t0(), lease, 10).await.expect("claim");
    let due_keys: Vec<&str> = due.iter().map(|m| m.idempotency_key.as_str()).collect();
    assert_eq!(due_keys, ["k4", "after"], "the new message is queued");
    store.mark_sent(a, t0()).await.expect("mark_sent");
    store.retry_later(b, t0()).await.expect("retry_later");
    store
        .dead_letter(c, t0(), "bounced")
        .await
        .expect("dead_letter");
    let later = t0() + lease;
    let again = store.claim_due(later, lease, 10).await.expect("claim");
    let again_keys: Vec<&str> = again.iter().map(|m| m.idempotency_key.as_str()).collect();
    assert_eq!(
        again_keys,
        ["k2", "k4", "after"],
        "k1 was sent, k3 dead-lettered"
    );
    let dead = store.audit_log(&first).await.expect("audit");
    assert_eq!(dead.len(), 2, "the dead letter is audited");

    // Directory writes work again.
    store.enroll(facts(&member(2))).await.expect("enroll");
    let n = store
        .enroll_many(vec![facts(&member(3)), facts(&member(5))])
        .await
        .expect("enroll_many");
    assert_eq!(n, 2);
    for m in [2, 3, 5] {
        assert!(store.find(&member(m)).await.expect("find").is_some());
    }

    // And so does every pooled connection: as many concurrent commits as failed before.
    let mut writers = JoinSet::new();
    for n in 0..WRITES_DURING_FAULT {
        let store = store.clone();
        writers.spawn(async move {
            let m = member(100 + n);
            store
                .commit(
                    &AccountRecord::new(m.clone()),
                    0,
                    vec![message(&format!("f{n}"), &m)],
                    vec![event(&m)],
                )
                .await
        });
    }
    while let Some(joined) = writers.join_next().await {
        assert_eq!(joined.expect("no panic"), Ok(1), "a commit after the fault");
    }
    assert_eq!(
        store
            .commit(&AccountRecord::new(first.clone()), 1, vec![], vec![])
            .await,
        Ok(2)
    );
    store.close().await;
}
