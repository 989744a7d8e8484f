//! The storage contract (the storage contract) on PostgreSQL.
//!
//! Needs `DATABASE_URL` (CI always sets it and fails on the "skipped" line below). Every
//! store lives in a schema of its own (`afiliado_t_<pid>_<n>_<random>`), dropped when the
//! test finishes, so tests run in parallel against one database.
#![cfg(all(feature = "postgres", feature = "test-util"))]
#![allow(clippy::disallowed_methods)]

use std::collections::HashSet;

use async_trait::async_trait;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use afiliado::conformance::{Backend, run_all};
use afiliado::core::{
    AccountRecord, AccountState, AuditEvent, AuditKind, Contact, IssuedToken, Locale, Notice,
    NoticeKind, Pending, SecurityEnrollment,
};
use afiliado::crypto::{Digest, TokenPurpose};
use afiliado::ports::{
    AccountStore, MemberDirectory, MemberFacts, NewMessage, OutboxStatus, StoreError,
};
use afiliado::postgres::{PoolSettings, PostgresStore};
use afiliado::{Email, MemberId};
use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-11-22 19:00:00.123456 -5);
const TABLES: [&str; 5] = ["accounts", "account_tokens", "outbox", "audit", "members"];

static COUNTER: AtomicU32 = AtomicU32::new(0);

// ---------------------------------------------------------------------------------------------
// Backend: one fresh schema per store
// ---------------------------------------------------------------------------------------------

struct PgBackend {
    url: String,
    admin: PgPool,
    schemas: Mutex<Vec<String>>,
}

impl PgBackend {
    /// `None` (after printing the line CI greps for) when `DATABASE_URL` is not set.
    async fn from_env() -> Option<Self> {
        let Ok(url) = std::env::var("DATABASE_URL") else {
            println!("skipped: DATABASE_URL not set");
            assert!(
                std::env::var_os("AFILIADO_REQUIRE_SERVICES").is_none(),
                "DATABASE_URL is not set but AFILIADO_REQUIRE_SERVICES is (CI must run these)"
            );
            return None;
        };
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .expect("connect to DATABASE_URL");
        Some(Self {
            url,
            admin,
            schemas: Mutex::new(Vec::new()),
        })
    }

    fn new_schema(&self) -> String {
        let name = format!(
            "afiliado_t_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        self.schemas.lock().unwrap().push(name.clone());
        name
    }

    async fn open_in(&self, schema: &str) -> PostgresStore {
        PostgresStore::open_with(
            &self.url,
            PoolSettings::default().max_connections(8).schema(schema),
        )
        .await
        .expect("open store")
    }

    async fn store(&self) -> PostgresStore {
        let schema = self.new_schema();
        let store = self.open_in(&schema).await;
        store.migrate().await.expect("migrate");
        store
    }

    /// Every row of every table, each column cast to text.
    async fn dump(&self, store: &PostgresStore) -> Vec<String> {
        let schema = store.schema().expect("test stores have a schema");
        let mut out = Vec::new();
        for table in TABLES {
            let sql =
                format!("SELECT '{table}: ' || t::text FROM \"{schema}\".{table} t ORDER BY 1");
            let rows: Vec<String> = sqlx::query_scalar(&sql)
                .fetch_all(&self.admin)
                .await
                .expect("dump");
            out.extend(rows);
        }
        out
    }

    /// Every text value of every table verbatim (JSONB and other types as their text form),
    /// and every blob both lossily decoded and as lowercase hex.
    async fn dump_values(&self, store: &PostgresStore) -> Vec<String> {
        let schema = store.schema().expect("test stores have a schema");
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = $1 \
             ORDER BY table_name, ordinal_position",
        )
        .bind(schema)
        .fetch_all(&self.admin)
        .await
        .expect("list columns");
        assert!(
            TABLES
                .iter()
                .all(|t| columns.iter().any(|(table, _, _)| table == t)),
            "every table is dumped: {columns:?}"
        );
        let mut out = Vec::new();
        for (table, column, data_type) in columns {
            let from = format!("FROM \"{schema}\".\"{table}\"");
            if data_type == "bytea" {
                let blobs: Vec<Option<Vec<u8>>> =
                    sqlx::query_scalar(&format!("SELECT \"{column}\" {from}"))
                        .fetch_all(&self.admin)
                        .await
                        .expect("dump blobs");
                for blob in blobs.into_iter().flatten() {
                    out.push(String::from_utf8_lossy(&blob).into_owned());
                    out.push(blob.iter().map(|b| format!("{b:02x}")).collect());
                }
            } else {
                let texts: Vec<Option<String>> =
                    sqlx::query_scalar(&format!("SELECT \"{column}\"::text {from}"))
                        .fetch_all(&self.admin)
                        .await
                        .expect("dump text");
                out.extend(texts.into_iter().flatten());
            }
        }
        out
    }

    async fn cleanup(&self) {
        let schemas = std::mem::take(&mut *self.schemas.lock().unwrap());
        for schema in schemas {
            sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&self.admin)
                .await
                .expect("drop schema");
        }
    }
}

#[async_trait]
impl Backend for PgBackend {
    type Store = PostgresStore;

    async fn fresh(&self) -> PostgresStore {
        self.store().await
    }

    async fn raw_dump(&self, store: &PostgresStore) -> Vec<String> {
        self.dump_values(store).await
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

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

fn pending_for(who: MemberId, b: u8, expires_at: OffsetDateTime) -> AccountRecord {
    let mut r = AccountRecord::new(who);
    r.state = AccountState::PendingActivation(Pending {
        link: IssuedToken {
            digest: digest(b),
            issued_at: T0,
            expires_at,
        },
        code: Some(digest(b.wrapping_add(100))),
        code_attempts_left: 3,
        contact: Contact::email_only(email()),
        terms_accepted_at: Some(T0),
        enrollment: SecurityEnrollment::default(),
    });
    r
}

fn pending(b: u8) -> AccountRecord {
    pending_for(ana(), b, T0 + Duration::hours(1))
}

fn msg(key: &str, who: MemberId) -> NewMessage {
    NewMessage::new(
        key,
        who,
        Notice::new(email(), Locale::default(), NoticeKind::PasswordChanged),
        vec![1, 2, 3, 0xff],
        T0,
    )
}

fn event(who: MemberId, at: OffsetDateTime) -> AuditEvent {
    AuditEvent::new(at, who, AuditKind::Registered)
}

macro_rules! backend {
    () => {
        match PgBackend::from_env().await {
            Some(b) => b,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The crate's shared storage suite (the storage contract).
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn conformance_suite() {
    let b = backend!();
    run_all(&b).await;
    b.cleanup().await;
}

// PostgreSQL-specific checks beyond the suite.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_trip_at_microsecond_precision() {
    let b = backend!();
    let store = b.store().await;
    assert_eq!(store.load(&ana()).await.unwrap(), None);
    assert_eq!(
        store
            .load_by_token(TokenPurpose::Activation, &digest(1))
            .await
            .unwrap(),
        None
    );

    let record = pending(1);
    let v = store
        .commit(
            &record,
            0,
            vec![msg("k1", ana())],
            vec![
                event(ana(), T0),
                event(ana(), T0 + Duration::microseconds(1)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(v, 1);
    let mut expected = record.clone();
    expected.version = 1;
    assert_eq!(store.load(&ana()).await.unwrap(), Some(expected.clone()));
    assert_eq!(
        store
            .load_by_token(TokenPurpose::Activation, &digest(1))
            .await
            .unwrap(),
        Some(expected.clone())
    );
    // Wrong purpose, unknown digest: nothing.
    assert_eq!(
        store
            .load_by_token(TokenPurpose::Reset, &digest(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.audit_log(&ana()).await.unwrap(),
        vec![
            event(ana(), T0),
            event(ana(), T0 + Duration::microseconds(1))
        ]
    );

    let claimed = store.claim_due(T0, Duration::minutes(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let m = &claimed[0];
    assert_eq!(m.created_at, T0);
    assert_eq!(m.next_attempt_at, T0);
    assert_eq!(m.sealed, vec![1, 2, 3, 0xff]);
    assert_eq!(m.attempts, 1);
    assert_eq!(
        m.status,
        OutboxStatus::Claimed {
            lease_until: T0 + Duration::minutes(5)
        }
    );

    // A new state drops the old token digest.
    let mut next = expected.clone();
    next.state = AccountState::Unregistered;
    assert_eq!(store.commit(&next, 1, vec![], vec![]).await.unwrap(), 2);
    assert_eq!(
        store
            .load_by_token(TokenPurpose::Activation, &digest(1))
            .await
            .unwrap(),
        None
    );
    let dump = b.dump(&store).await;
    assert!(dump.iter().any(|r| r.starts_with("accounts: ")), "{dump:?}");
    assert!(!dump.iter().any(|r| r.starts_with("account_tokens: ")));
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_version_conflicts_and_writes_nothing() {
    let b = backend!();
    let store = b.store().await;
    store
        .commit(
            &pending(1),
            0,
            vec![msg("k1", ana())],
            vec![event(ana(), T0)],
        )
        .await
        .unwrap();
    let before = b.dump(&store).await;
    for stale in [0, 2, 7] {
        let err = store
            .commit(
                &pending(2),
                stale,
                vec![msg("k2", ana())],
                vec![event(ana(), T0)],
            )
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::Conflict {
                member: ana(),
                expected: stale,
                found: Some(1),
            }
        );
    }
    let err = store
        .commit(&pending_for(member("EXT1"), 3, T0), 4, vec![], vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { found: None, .. }));
    assert_eq!(b.dump(&store).await, before);
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn exactly_one_of_100_concurrent_commits_wins() {
    let b = backend!();
    let store = b.store().await;
    for expected in [0u64, 1] {
        let mut tasks = Vec::new();
        for i in 0..100u8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .commit(
                        &pending(i),
                        expected,
                        vec![msg(&format!("k{expected}-{i}"), ana())],
                        vec![event(ana(), T0)],
                    )
                    .await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(v) => {
                    assert_eq!(v, expected + 1);
                    wins += 1;
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }
        assert_eq!(wins, 1, "round on version {expected}");
    }
    // Losers wrote nothing: two messages, two audit events.
    assert_eq!(store.audit_log(&ana()).await.unwrap().len(), 2);
    let claimed = store
        .claim_due(T0, Duration::minutes(1), 1000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_share_a_message() {
    let b = backend!();
    let store = b.store().await;
    let msgs = (0..300).map(|i| msg(&format!("m{i}"), ana())).collect();
    store.commit(&pending(1), 0, msgs, vec![]).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store.claim_due(T0, Duration::minutes(5), 7).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                assert!(batch.windows(2).all(|w| w[0].id < w[1].id), "ordered by id");
                got.extend(batch.into_iter().map(|m| m.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), 300);
    assert_eq!(distinct.len(), 300);
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_lifecycle() {
    let b = backend!();
    let store = b.store().await;
    store
        .commit(
            &pending(1),
            0,
            vec![
                msg("a", ana()),
                msg("b", ana()),
                msg("a", ana()),
                msg("c", ana()),
            ],
            vec![],
        )
        .await
        .unwrap();
    // Idempotency: the repeated key is skipped, also in a later commit.
    store
        .commit(
            &pending(1),
            1,
            vec![msg("b", ana()), msg("d", ana())],
            vec![],
        )
        .await
        .unwrap();
    let lease = Duration::minutes(5);
    let early = store
        .claim_due(T0 - Duration::microseconds(1), lease, 10)
        .await
        .unwrap();
    assert!(early.is_empty());
    let claimed = store.claim_due(T0, lease, 10).await.unwrap();
    let keys: Vec<_> = claimed.iter().map(|m| m.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c", "d"]);
    let ids: Vec<u64> = claimed.iter().map(|m| m.id).collect();
    // Leased: nothing due until the lease lapses; then claimable again.
    assert!(
        store
            .claim_due(T0 + Duration::minutes(1), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_due(T0 + lease, lease, 1).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, ids[0]);
    assert_eq!(again[0].attempts, 2);

    let t1 = T0 + Duration::minutes(6);
    store.mark_sent(ids[0], t1).await.unwrap();
    store
        .mark_sent(ids[0], t1 + Duration::hours(1))
        .await
        .unwrap(); // idempotent
    store.retry_later(ids[0], t1).await.unwrap(); // no effect on sent
    store.dead_letter(ids[0], t1, "late").await.unwrap(); // no effect on sent
    store
        .retry_later(ids[1], T0 + Duration::hours(2))
        .await
        .unwrap();
    store.dead_letter(ids[2], t1, "rejected").await.unwrap();
    store.mark_sent(ids[2], t1).await.unwrap(); // stays dead
    store.retry_later(ids[2], t1).await.unwrap(); // stays dead
    for id in [ids[3] + 100, u64::MAX] {
        assert_eq!(
            store.mark_sent(id, t1).await,
            Err(StoreError::UnknownMessage { id })
        );
        assert_eq!(
            store.retry_later(id, t1).await,
            Err(StoreError::UnknownMessage { id })
        );
        assert_eq!(
            store.dead_letter(id, t1, "x").await,
            Err(StoreError::UnknownMessage { id })
        );
    }
    // At T0+2h: b is due again, d's lease has lapsed; a sent, c dead.
    let late = store
        .claim_due(T0 + Duration::hours(2), lease, 10)
        .await
        .unwrap();
    let keys: Vec<_> = late.iter().map(|m| m.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["b", "d"]);
    assert_eq!(late[0].next_attempt_at, T0 + Duration::hours(2));
    let dump = b.dump(&store).await.join("\n");
    assert!(dump.contains("rejected"));
    assert!(store.claim_due(T0, lease, 0).await.unwrap().is_empty());
    assert!(matches!(
        store
            .claim_due(
                OffsetDateTime::new_utc(date!(9999 - 12 - 31), time::Time::MIDNIGHT),
                Duration::days(2),
                1
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_and_audit_retention() {
    let b = backend!();
    let store = b.store().await;
    let exp = T0 + Duration::hours(1);
    for (i, who) in ["EXT1", "EXT2", "EXT3"].into_iter().enumerate() {
        let offset = Duration::minutes(i64::try_from(i).unwrap());
        store
            .commit(
                &pending_for(member(who), u8::try_from(i).unwrap(), exp + offset),
                0,
                vec![],
                vec![event(member(who), T0 + offset)],
            )
            .await
            .unwrap();
    }
    let none = store
        .expired_pending(exp - Duration::microseconds(1), 10)
        .await
        .unwrap();
    assert!(none.is_empty());
    let one = store.expired_pending(exp, 10).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].member, member("EXT1"));
    assert_eq!(one[0].version, 1);
    assert_eq!(
        store
            .expired_pending(exp + Duration::hours(1), 2)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .expired_pending(exp + Duration::hours(1), 0)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        store.purge_audit(T0 + Duration::minutes(1)).await.unwrap(),
        1
    );
    assert_eq!(
        store.purge_audit(T0 + Duration::minutes(1)).await.unwrap(),
        0
    );
    assert!(store.audit_log(&member("EXT1")).await.unwrap().is_empty());
    assert_eq!(store.audit_log(&member("EXT2")).await.unwrap().len(), 1);
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_directory() {
    let b = backend!();
    let store = b.store().await;
    assert_eq!(store.find(&ana()).await.unwrap(), None);
    let mut facts = MemberFacts::new(ana(), "ANA MARÍA PÉREZ", date!(1990 - 05 - 17));
    facts.employers = vec!["ACME".to_owned()];
    facts.contribution_years = vec![2019, 2020];
    store.enroll(facts.clone()).await.unwrap();
    assert_eq!(store.find(&ana()).await.unwrap(), Some(facts.clone()));

    let batch: Vec<MemberFacts> = (0..1200)
        .map(|i| {
            MemberFacts::new(
                member(&format!("EXT{i}")),
                format!("N{i}"),
                date!(1980 - 01 - 01),
            )
        })
        .chain([MemberFacts::new(ana(), "REPLACED", date!(1990 - 05 - 17))])
        .chain([MemberFacts::new(
            member("EXT7"),
            "LAST WINS",
            date!(1980 - 01 - 01),
        )])
        .collect();
    assert_eq!(store.enroll_many(batch).await.unwrap(), 1202);
    assert_eq!(store.find(&ana()).await.unwrap().unwrap().names, "REPLACED");
    assert_eq!(
        store.find(&member("EXT7")).await.unwrap().unwrap().names,
        "LAST WINS"
    );
    assert_eq!(
        store.find(&member("EXT1199")).await.unwrap().unwrap().names,
        "N1199"
    );
    assert_eq!(store.enroll_many(vec![]).await.unwrap(), 0);
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_share_one_database_and_migrate_is_idempotent() {
    let b = backend!();
    let schema = b.new_schema();
    let one = b.open_in(&schema).await;
    let two = b.open_in(&schema).await;
    one.migrate().await.unwrap();
    one.migrate().await.unwrap();
    two.migrate().await.unwrap();

    one.commit(&pending(1), 0, vec![msg("k", ana())], vec![])
        .await
        .unwrap();
    assert_eq!(two.load(&ana()).await.unwrap().unwrap().version, 1);
    assert!(matches!(
        two.commit(&pending(2), 0, vec![], vec![]).await,
        Err(StoreError::Conflict { found: Some(1), .. })
    ));
    assert_eq!(two.commit(&pending(2), 1, vec![], vec![]).await.unwrap(), 2);
    assert_eq!(
        one.load_by_token(TokenPurpose::Activation, &digest(2))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    // A claim by one is seen by the other.
    assert_eq!(
        one.claim_due(T0, Duration::minutes(5), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        two.claim_due(T0, Duration::minutes(5), 10)
            .await
            .unwrap()
            .is_empty()
    );
    one.close().await;
    assert!(matches!(
        one.load(&ana()).await,
        Err(StoreError::Unavailable(_))
    ));
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_in_debug_or_errors() {
    let b = backend!();
    let parsed = PgConnectOptions::from_str(&b.url).unwrap().to_url_lossy();
    // Under trust authentication any password connects; otherwise keep the real one.
    let (url, password) = match parsed.password() {
        Some(p) => (b.url.clone(), p.to_owned()),
        None => {
            let mut u = parsed.clone();
            u.set_password(Some("hunter2xyz")).unwrap();
            (u.to_string(), "hunter2xyz".to_owned())
        }
    };
    let store = PostgresStore::open(&url).await.unwrap();
    let dbg = format!("{store:?}");
    assert!(!dbg.contains(&password), "{dbg}");
    assert!(dbg.contains("PostgresStore"));

    let mut bad = parsed.clone();
    bad.set_username("nobody_here").unwrap();
    bad.set_password(Some(&password)).unwrap();
    let mut unreachable = parsed.clone();
    unreachable.set_port(Some(1)).unwrap();
    for url in [
        bad.to_string(),
        unreachable.to_string(),
        format!("{url}?sslmode=bogus"),
    ] {
        let quick = PoolSettings::default().acquire_timeout(std::time::Duration::from_secs(2));
        let e = PostgresStore::open_with(&url, quick).await.unwrap_err();
        assert!(
            matches!(e, StoreError::Unavailable(_) | StoreError::Invalid(_)),
            "{e:?}"
        );
        let text = format!("{e} {e:?}");
        assert!(!text.contains(&password), "{text}");
        assert!(!text.contains(&url), "{text}");
    }
    assert!(matches!(
        PostgresStore::open_with(&url, PoolSettings::default().max_connections(0)).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        PostgresStore::open_with(&url, PoolSettings::default().schema("")).await,
        Err(StoreError::Invalid(_))
    ));
}
