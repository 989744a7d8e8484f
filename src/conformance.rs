//! The storage conformance suite (the storage contract): one shared set of checks that every
//! [`AccountStore`] + [`MemberDirectory`] backend runs, instead of a copy per backend.
//!
//! A backend implements [`Backend`] — a fresh, empty store per check, and a raw dump of
//! everything it persisted — and calls [`run_all`] from one of its tests. Every check is
//! also public on its own (`check_*`), so a backend can run a single one while debugging.
//!
//! **This is test support: the checks panic, with a message naming the check and the rule
//! that failed, instead of returning errors.** That is the only place in the crate where
//! panicking is the intended behaviour; the module exists only with the `test-util` feature.
//!
//! Requirements on the caller:
//!
//! * run inside a tokio runtime: [`check_concurrent_commits`] spawns tasks, and is only a
//!   real race on a multi-thread runtime (`#[tokio::test(flavor = "multi_thread")]`);
//! * every check writes members `1710034065`, `0926687856`, `EXT12345` and others, so each
//!   needs an empty store ([`Backend::fresh`]);
//! * all instants the suite stores have at most microsecond precision and compare by instant
//!   (a backend may hand them back in UTC).
//!
//! Running single checks on the in-memory adapters:
//!
//! ```
//! # #[cfg(feature = "memory")]
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use afiliado::conformance;
//! use afiliado::memory::{MemoryDirectory, MemoryStore};
//!
//! conformance::check_round_trip(&MemoryStore::new()).await;
//! conformance::check_outbox_lifecycle(&MemoryStore::new()).await;
//! conformance::check_directory(&MemoryDirectory::new()).await;
//! # });
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::core::{
    AccountRecord, AccountState, AuditEvent, AuditKind, Command, Contact, DailyCount,
    EnrolledAnswer, IssuedToken, Locale, Lock, LockReason, Notice, NoticeKind, Pending,
    PendingEmailChange, Profile, ProofResult, Register, SecurityEnrollment, Standing, decide,
};
use crate::crypto::{
    Digest, DigestKey, HashParams, NumericCode, PasswordHash, Token, TokenPurpose, hash_password,
};
use crate::identity::{Email, MemberId, check_digit};
use crate::policy::{Policy, Proof};
use crate::ports::{
    AccountStore, MemberDirectory, MemberFacts, NewMessage, OutboxMessage, OutboxStatus,
    SourceThrottle, StoreError,
};
use crate::seal::{LinkSecrets, SealKey};

/// What a backend gives the suite.
///
/// * [`fresh`](Self::fresh): a new, empty store for one check (a new SQLite file or
///   in-memory database, a new PostgreSQL schema …). Checks never share a store.
/// * [`raw_dump`](Self::raw_dump): everything the store persisted, as the database holds it,
///   for the planted-secret scan of [`check_no_secret_in_clear`]: every text column of every
///   row of every table, verbatim; every blob column twice, as
///   [`String::from_utf8_lossy`] of its bytes and as lowercase hex. Order does not matter.
///
/// A SQL backend looks like this (sketch):
///
/// ```text
/// struct Sqlite;
///
/// #[async_trait]
/// impl Backend for Sqlite {
///     type Store = SqliteStore; // implements AccountStore and MemberDirectory
///
///     async fn fresh(&self) -> SqliteStore {
///         SqliteStore::open_in_memory().await.expect("open")
///     }
///
///     async fn raw_dump(&self, store: &SqliteStore) -> Vec<String> {
///         // For each table: SELECT * and push every TEXT value, and every BLOB value
///         // both lossily decoded and in lowercase hex.
///     }
/// }
///
/// #[tokio::test(flavor = "multi_thread")]
/// async fn conformance() {
///     afiliado::conformance::run_all(&Sqlite).await;
/// }
/// ```
#[async_trait]
pub trait Backend: Send + Sync {
    /// The store under test: account records, outbox, audit log and member directory.
    type Store: AccountStore + MemberDirectory + SourceThrottle + 'static;

    /// A fresh, empty store.
    async fn fresh(&self) -> Self::Store;

    /// Every text value (and every blob, lossily decoded and in lowercase hex) the store
    /// persisted, for the planted-secret scan.
    async fn raw_dump(&self, store: &Self::Store) -> Vec<String>;
}

/// Runs every check of the suite, each on its own [`Backend::fresh`] store.
///
/// # Panics
///
/// On the first violated rule, with a message naming the check. Must run inside a tokio
/// runtime (multi-thread for a real race in [`check_concurrent_commits`]).
pub async fn run_all<B: Backend>(backend: &B) {
    check_round_trip(&backend.fresh().await).await;
    check_load_by_token(&backend.fresh().await).await;
    check_stale_version(&backend.fresh().await).await;
    check_atomic_commit(&backend.fresh().await).await;
    check_concurrent_commits(Arc::new(backend.fresh().await)).await;
    check_outbox_lifecycle(&backend.fresh().await).await;
    check_outbox_idempotency(&backend.fresh().await).await;
    check_timestamp_precision(&backend.fresh().await).await;
    check_audit_log(&backend.fresh().await).await;
    check_expired_pending(&backend.fresh().await).await;
    check_retention_purge(&backend.fresh().await).await;
    check_unregistered(&backend.fresh().await).await;
    check_sent_purge(&backend.fresh().await).await;
    check_directory(&backend.fresh().await).await;
    check_enroll_many(&backend.fresh().await).await;
    check_source_throttle(Arc::new(backend.fresh().await)).await;
    let store = backend.fresh().await;
    check_no_secret_in_clear(backend, &store).await;
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// Odd microseconds, non-UTC offset.
const T0: OffsetDateTime = datetime!(2026-11-22 19:00:00.123456 -5);
/// Far enough for every lease and retry of the suite to have run out.
const FAR: OffsetDateTime = datetime!(2036-11-22 19:00:00.123456 -5);
const LEASE: Duration = Duration::minutes(5);

/// Unwraps a store answer, panicking with the check's context.
#[track_caller]
fn ok<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("conformance: {what}: unexpected error: {e}"),
    }
}

#[track_caller]
fn member(s: &str) -> MemberId {
    match s.parse() {
        Ok(m) => m,
        Err(e) => panic!("conformance fixture: bad member id {s:?}: {e}"),
    }
}

fn ana() -> MemberId {
    member("1710034065")
}

fn beto() -> MemberId {
    member("0926687856")
}

fn foreigner() -> MemberId {
    member("EXT12345")
}

/// The `n`-th of a family of valid cédulas from Pichincha (`17…`).
fn cedula(n: u32) -> MemberId {
    let mut nine = [1u8, 7, 0, 0, 0, 0, 0, 0, 0];
    let mut rest = n % 10_000_000;
    for d in nine.iter_mut().skip(2).rev() {
        *d = (rest % 10) as u8;
        rest /= 10;
    }
    let mut s: String = nine.iter().map(|d| char::from(b'0' + d)).collect();
    s.push(char::from(b'0' + check_digit(&nine)));
    member(&s)
}

#[track_caller]
fn email(s: &str) -> Email {
    match s.parse() {
        Ok(e) => e,
        Err(e) => panic!("conformance fixture: bad email {s:?}: {e}"),
    }
}

fn digest(b: u8) -> Digest {
    Digest::from_bytes([b; 32])
}

fn issued(d: Digest, at: OffsetDateTime, ttl: Duration) -> IssuedToken {
    IssuedToken {
        digest: d,
        issued_at: at,
        expires_at: at + ttl,
    }
}

fn pending_with(m: MemberId, link: Digest, expires_at: OffsetDateTime) -> AccountRecord {
    let mut r = AccountRecord::new(m);
    r.state = AccountState::PendingActivation(Pending {
        link: IssuedToken {
            digest: link,
            issued_at: expires_at - Duration::minutes(25),
            expires_at,
        },
        code: Some(Digest::from_bytes([0xC0; 32])),
        code_attempts_left: 3,
        contact: Contact::email_only(email("ana@example.ec")),
        terms_accepted_at: Some(T0),
        enrollment: SecurityEnrollment::default(),
    });
    r
}

/// Ana's pending registration, link digest `[b; 32]`, live for an hour from `T0`.
fn pending(b: u8) -> AccountRecord {
    pending_with(ana(), digest(b), T0 + Duration::hours(1))
}

/// A cheap but real PHC string.
fn phc(password: &[u8], seed: u64) -> PasswordHash {
    let mut rng = StdRng::seed_from_u64(seed);
    ok(
        hash_password(password, &HashParams::danger_insecure_for_tests(), &mut rng),
        "fixture: hash_password",
    )
}

fn profile(password: PasswordHash) -> Profile {
    Profile {
        password,
        contact: Contact {
            email: email("maría.ñáñez@example.ec"),
            mobile: Some(ok("0991234567".parse(), "fixture: mobile")),
            landline: Some(ok("02 234-5678".parse(), "fixture: landline")),
        },
        enrollment: SecurityEnrollment {
            image: Some(phc(b"image-17", 2)),
            answers: vec![EnrolledAnswer {
                question: "primera-mascota".to_owned(),
                answer: phc(b"firulais", 3),
            }],
        },
        activated_at: T0,
        password_changed_at: T0 + Duration::microseconds(1),
        last_login_at: Some(T0 + Duration::microseconds(3)),
    }
}

/// Ana resetting on top of a lock that has an unlock link, with a staff email change pending:
/// three live digests (reset `[reset; 32]`, unlock `[unlock; 32]`, email change
/// `[reset + 100; 32]`), every field away from its default.
fn resetting(reset: u8, unlock: u8) -> AccountRecord {
    let mut r = AccountRecord::new(ana());
    r.state = AccountState::Resetting {
        profile: profile(phc(b"Clave2026x", 1)),
        reset: issued(digest(reset), T0, Duration::hours(1)),
        return_to: Standing::Locked {
            lock: Lock {
                reason: LockReason::FailedLogins,
                since: T0,
                auto_unlock_at: Some(T0 + Duration::minutes(20)),
                unlock_link: Some(issued(digest(unlock), T0, Duration::minutes(30))),
            },
        },
        new_email: Some(email("ana.nueva@example.ec")),
    };
    r.locale = Locale::En;
    r.lockouts = 3;
    r.check_failures = 2;
    r.notices_sent = DailyCount {
        day: Some(date!(2026 - 11 - 22)),
        count: 4,
    };
    r.registrations = DailyCount {
        day: Some(date!(2026 - 11 - 21)),
        count: 1,
    };
    r.last_registration_at = Some(T0 - Duration::days(30));
    r.registration_failures = DailyCount {
        day: Some(date!(2026 - 11 - 20)),
        count: 2,
    };
    r.registration_warnings = DailyCount {
        day: Some(date!(2026 - 11 - 19)),
        count: 1,
    };
    r.unlock_link_at = Some(T0 + Duration::microseconds(11));
    r.reset_link_at = Some(T0 + Duration::minutes(10));
    r.spare_unlock_link = Some(issued(
        digest(unlock.wrapping_add(50)),
        T0,
        Duration::minutes(15),
    ));
    // A staff email change waiting for confirmation: a third live digest.
    r.pending_email = Some(PendingEmailChange {
        email: email("ana.confirmar@example.ec"),
        link: issued(digest(reset.wrapping_add(100)), T0, Duration::hours(24)),
    });
    r
}

fn active(m: MemberId) -> AccountRecord {
    let mut r = AccountRecord::new(m);
    r.state = AccountState::Active {
        profile: profile(phc(b"Clave2026x", 4)),
        failures: vec![T0, T0 + Duration::microseconds(7)],
    };
    r
}

fn notice(kind: NoticeKind) -> Notice {
    Notice::new(email("ana@example.ec"), Locale::EsEc, kind)
}

/// Binary-safe payload: every byte value, NUL included.
fn payload() -> Vec<u8> {
    (0..=255u8).collect()
}

fn msg_for(m: &MemberId, key: &str, at: OffsetDateTime) -> NewMessage {
    NewMessage::new(
        key,
        m.clone(),
        notice(NoticeKind::PasswordChanged),
        payload(),
        at,
    )
}

fn msg(key: &str) -> NewMessage {
    msg_for(&ana(), key, T0)
}

fn event(m: &MemberId, at: OffsetDateTime, kind: AuditKind) -> AuditEvent {
    AuditEvent::new(at, m.clone(), kind)
}

fn with_version(r: &AccountRecord, v: u64) -> AccountRecord {
    let mut r = r.clone();
    r.version = v;
    r
}

fn keys(msgs: &[OutboxMessage]) -> Vec<&str> {
    msgs.iter().map(|m| m.idempotency_key.as_str()).collect()
}

async fn commit<S: AccountStore>(
    store: &S,
    record: &AccountRecord,
    expected: u64,
    outbox: Vec<NewMessage>,
    audit: Vec<AuditEvent>,
    what: &str,
) -> u64 {
    let v = ok(store.commit(record, expected, outbox, audit).await, what);
    assert_eq!(
        v,
        expected + 1,
        "conformance: {what}: commit on version {expected} must return {}",
        expected + 1
    );
    v
}

async fn load<S: AccountStore>(store: &S, m: &MemberId, what: &str) -> Option<AccountRecord> {
    ok(store.load(m).await, what)
}

async fn by_token<S: AccountStore>(
    store: &S,
    purpose: TokenPurpose,
    d: Digest,
    what: &str,
) -> Option<AccountRecord> {
    ok(store.load_by_token(purpose, &d).await, what)
}

async fn claim<S: AccountStore>(
    store: &S,
    now: OffsetDateTime,
    limit: usize,
    what: &str,
) -> Vec<OutboxMessage> {
    ok(store.claim_due(now, LEASE, limit).await, what)
}

async fn log<S: AccountStore>(store: &S, m: &MemberId, what: &str) -> Vec<AuditEvent> {
    ok(store.audit_log(m).await, what)
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// A record round-trips field for field; the store owns `version` (the committed record's
/// own `version` is ignored, the stored one is `expected + 1`); anything missing is
/// `Ok(None)` / empty.
pub async fn check_round_trip<S: AccountStore>(store: &S) {
    const W: &str = "check_round_trip";
    assert_eq!(
        load(store, &ana(), W).await,
        None,
        "{W}: load of a missing member"
    );
    assert_eq!(
        by_token(store, TokenPurpose::Reset, digest(9), W).await,
        None,
        "{W}: load_by_token of an unknown digest"
    );
    assert!(
        log(store, &ana(), W).await.is_empty(),
        "{W}: audit log of a missing member"
    );

    let mut rec = resetting(1, 2);
    rec.version = 42; // ignored by the store
    commit(store, &rec, 0, vec![], vec![], W).await;
    let back = load(store, &ana(), W).await;
    assert_eq!(back, Some(with_version(&rec, 1)), "{W}: record read back");

    let v2 = commit(store, &with_version(&rec, 1), 1, vec![], vec![], W).await;
    assert_eq!(
        load(store, &ana(), W).await.map(|r| r.version),
        Some(v2),
        "{W}: stored version after the second commit"
    );

    // A foreigner, an active record, stored next to Ana without disturbing her.
    let f = active(foreigner());
    commit(store, &f, 0, vec![], vec![], W).await;
    assert_eq!(
        load(store, &foreigner(), W).await,
        Some(with_version(&f, 1)),
        "{W}: foreigner"
    );
    assert_eq!(
        load(store, &beto(), W).await,
        None,
        "{W}: another missing member"
    );
    assert_eq!(
        load(store, &ana(), W).await,
        Some(with_version(&rec, 2)),
        "{W}: Ana untouched by another member's commit"
    );

    // A record can go back to Unregistered (retention) and still round-trips.
    let blank = with_version(&AccountRecord::new(ana()), 2);
    commit(store, &blank, 2, vec![], vec![], W).await;
    assert_eq!(
        load(store, &ana(), W).await,
        Some(with_version(&blank, 3)),
        "{W}: unregistered"
    );
}

/// `load_by_token` finds the record by each live digest (activation, unlock, reset, email
/// change), keyed
/// by purpose too, and no longer by a digest a later commit replaced.
pub async fn check_load_by_token<S: AccountStore>(store: &S) {
    const W: &str = "check_load_by_token";
    let rec = resetting(1, 2);
    commit(store, &rec, 0, vec![], vec![], W).await;
    let live = rec.token_digests();
    assert_eq!(
        live.len(),
        3,
        "{W}: fixture holds a reset, an unlock and an email-change digest"
    );
    for (purpose, d) in &live {
        let found = by_token(store, *purpose, *d, W).await;
        assert_eq!(
            found.map(|r| (r.member, r.version)),
            Some((ana(), 1)),
            "{W}: live {purpose} digest must find the record"
        );
    }
    assert_eq!(
        by_token(store, TokenPurpose::Activation, digest(1), W).await,
        None,
        "{W}: the purpose is part of the key (reset digest looked up as activation)"
    );
    assert_eq!(
        by_token(store, TokenPurpose::Unlock, digest(1), W).await,
        None,
        "{W}: the purpose is part of the key (reset digest looked up as unlock)"
    );

    // Replaced by a pending registration: the old digests die, the new one lives.
    commit(store, &pending(3), 1, vec![], vec![], W).await;
    for (purpose, d) in &live {
        assert_eq!(
            by_token(store, *purpose, *d, W).await,
            None,
            "{W}: a replaced {purpose} digest must find nothing"
        );
    }
    assert_eq!(
        by_token(store, TokenPurpose::Activation, digest(3), W)
            .await
            .map(|r| r.version),
        Some(2),
        "{W}: the new activation digest finds the current version"
    );

    // A later replacement kills that one too; another member's digests are independent.
    commit(store, &pending(4), 2, vec![], vec![], W).await;
    let other = pending_with(beto(), digest(5), T0 + Duration::hours(1));
    commit(store, &other, 0, vec![], vec![], W).await;
    assert_eq!(
        by_token(store, TokenPurpose::Activation, digest(3), W).await,
        None,
        "{W}: digest replaced by a second re-registration"
    );
    assert_eq!(
        by_token(store, TokenPurpose::Activation, digest(4), W)
            .await
            .map(|r| r.member),
        Some(ana()),
        "{W}: Ana's current digest"
    );
    assert_eq!(
        by_token(store, TokenPurpose::Activation, digest(5), W)
            .await
            .map(|r| r.member),
        Some(beto()),
        "{W}: Beto's digest"
    );

    // A state without links holds no digest at all.
    commit(
        store,
        &with_version(&active(ana()), 3),
        3,
        vec![],
        vec![],
        W,
    )
    .await;
    assert_eq!(
        by_token(store, TokenPurpose::Activation, digest(4), W).await,
        None,
        "{W}: digest of a settled registration"
    );
}

/// A stale expected version is a [`StoreError::Conflict`] carrying the expected and found
/// versions, and writes nothing: record, token index, outbox and audit log are unchanged. A
/// record that does not exist yet accepts only expected version 0.
pub async fn check_stale_version<S: AccountStore>(store: &S) {
    const W: &str = "check_stale_version";
    commit(
        store,
        &pending(1),
        0,
        vec![msg("a")],
        vec![event(&ana(), T0, AuditKind::Registered)],
        W,
    )
    .await;
    let before = (load(store, &ana(), W).await, log(store, &ana(), W).await);

    for stale in [0, 2, 7] {
        let err = store
            .commit(
                &pending(2),
                stale,
                vec![msg("b")],
                vec![event(
                    &ana(),
                    T0 + Duration::SECOND,
                    AuditKind::LoginSucceeded,
                )],
            )
            .await;
        assert_eq!(
            err,
            Err(StoreError::Conflict {
                member: ana(),
                expected: stale,
                found: Some(1),
            }),
            "{W}: commit on stale version {stale}"
        );
    }
    let missing = AccountRecord::new(beto());
    for expected in [1, 2] {
        assert_eq!(
            store
                .commit(&missing, expected, vec![msg_for(&beto(), "c", T0)], vec![])
                .await,
            Err(StoreError::Conflict {
                member: beto(),
                expected,
                found: None,
            }),
            "{W}: a first commit must use expected version 0, not {expected}"
        );
    }

    let after = (load(store, &ana(), W).await, log(store, &ana(), W).await);
    assert_eq!(
        before, after,
        "{W}: record and audit log unchanged by the conflicts"
    );
    assert_eq!(
        load(store, &beto(), W).await,
        None,
        "{W}: no record created by a conflict"
    );
    assert_eq!(
        by_token(store, TokenPurpose::Activation, digest(2), W).await,
        None,
        "{W}: the conflicting record's digest must not be indexed"
    );
    assert!(
        by_token(store, TokenPurpose::Activation, digest(1), W)
            .await
            .is_some(),
        "{W}: the stored digest is still indexed"
    );
    let out = claim(store, FAR, 100, W).await;
    assert_eq!(
        keys(&out),
        ["a"],
        "{W}: no message queued by a conflicting commit"
    );
}

/// A commit is all or nothing: after a success record, messages and events are all there;
/// after a conflict none of the batch is, and its idempotency keys are not used up.
pub async fn check_atomic_commit<S: AccountStore>(store: &S) {
    const W: &str = "check_atomic_commit";
    let audit1 = vec![
        event(&ana(), T0, AuditKind::Registered),
        event(&ana(), T0, AuditKind::NoticeSuppressed),
    ];
    commit(
        store,
        &pending(1),
        0,
        vec![msg("m1"), msg("m2")],
        audit1.clone(),
        W,
    )
    .await;
    assert_eq!(
        load(store, &ana(), W).await,
        Some(with_version(&pending(1), 1)),
        "{W}: record"
    );
    assert_eq!(
        log(store, &ana(), W).await,
        audit1,
        "{W}: audit events of the commit"
    );

    let batch = || {
        (
            vec![msg("m3"), msg("m4")],
            vec![event(&ana(), T0 + Duration::SECOND, AuditKind::Activated)],
        )
    };
    let (out, audit) = batch();
    let err = store.commit(&active(ana()), 0, out, audit).await;
    assert!(
        matches!(err, Err(StoreError::Conflict { .. })),
        "{W}: stale commit must conflict, got {err:?}"
    );
    assert_eq!(
        log(store, &ana(), W).await,
        audit1,
        "{W}: no audit event of a failed commit"
    );
    let queued = claim(store, FAR, 100, W).await;
    assert_eq!(
        keys(&queued),
        ["m1", "m2"],
        "{W}: no message of a failed commit"
    );

    // The retry with the right version writes the whole batch, keys included.
    let (out, audit) = batch();
    commit(store, &active(ana()), 1, out, audit.clone(), W).await;
    assert_eq!(
        load(store, &ana(), W).await,
        Some(with_version(&active(ana()), 2)),
        "{W}: record of the retried commit"
    );
    let mut all = audit1;
    all.extend(audit);
    assert_eq!(
        log(store, &ana(), W).await,
        all,
        "{W}: audit events after the retry"
    );
    // m1 and m2 are still leased from the claim above; only the new ones are due.
    let queued = claim(store, FAR, 100, W).await;
    assert_eq!(
        keys(&queued),
        ["m3", "m4"],
        "{W}: messages of the retried commit"
    );
}

/// Per-source failure counts start at zero, are kept per `(source, window)`, never lose an
/// increment among 50 concurrent ones, and `purge_sources` deletes exactly the windows that
/// started before its argument.
pub async fn check_source_throttle<S: SourceThrottle + 'static>(store: Arc<S>) {
    const W: &str = "check_source_throttle";
    let (a, b) = (digest(0xA1), digest(0xB2));
    let (w1, w2) = (T0, T0 + Duration::minutes(15));
    assert_eq!(
        ok(store.source_failures(&a, w1).await, W),
        0,
        "{W}: starts at 0"
    );
    assert_eq!(ok(store.add_source_failure(&a, w1).await, W), 1);
    assert_eq!(ok(store.add_source_failure(&a, w1).await, W), 2);
    assert_eq!(
        ok(store.add_source_failure(&b, w1).await, W),
        1,
        "{W}: per source"
    );
    assert_eq!(
        ok(store.add_source_failure(&a, w2).await, W),
        1,
        "{W}: per window"
    );
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.add_source_failure(&a, w2).await })
        })
        .collect();
    for t in tasks {
        ok(ok(t.await, W), W);
    }
    assert_eq!(
        ok(store.source_failures(&a, w2).await, W),
        51,
        "{W}: no lost increment"
    );
    assert_eq!(
        ok(store.purge_sources(w2).await, W),
        2,
        "{W}: purged windows"
    );
    assert_eq!(ok(store.source_failures(&a, w1).await, W), 0);
    assert_eq!(ok(store.source_failures(&a, w2).await, W), 51, "{W}: kept");
}

/// Of 100 concurrent commits on one version exactly one wins and 99 get
/// [`StoreError::Conflict`]; only the winner's message, audit event and token digest are
/// stored. Raced twice: on a record's creation (expected 0) and on an update (expected 1).
///
/// Spawns 100 tokio tasks per race: call it on a multi-thread runtime.
pub async fn check_concurrent_commits<S: AccountStore + 'static>(store: Arc<S>) {
    const W: &str = "check_concurrent_commits";
    const N: u8 = 100;
    for expected in [0u64, 1] {
        let barrier = Arc::new(tokio::sync::Barrier::new(usize::from(N)));
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                let record = pending(i.wrapping_add(if expected == 0 { 0 } else { 128 }));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let out = vec![msg(&format!("race{expected}-{i}"))];
                    let audit = vec![event(
                        &ana(),
                        T0,
                        AuditKind::ChecksFailed {
                            failures: u32::from(i),
                        },
                    )];
                    (
                        i,
                        record.clone(),
                        store.commit(&record, expected, out, audit).await,
                    )
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut conflicts = 0;
        for task in tasks {
            let (i, record, result) = match task.await {
                Ok(r) => r,
                Err(e) => panic!("conformance: {W}: a commit task failed: {e}"),
            };
            match result {
                Ok(v) => {
                    assert_eq!(v, expected + 1, "{W}: the winner's version");
                    winners.push((i, record));
                }
                Err(StoreError::Conflict { found, .. }) => {
                    assert_eq!(
                        found,
                        Some(expected + 1),
                        "{W}: a loser must see the winner's version"
                    );
                    conflicts += 1;
                }
                Err(e) => panic!(
                    "conformance: {W}: a concurrent commit on version {expected} must win or \
                     get Conflict, got: {e}"
                ),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "{W}: exactly one winner on version {expected}"
        );
        assert_eq!(conflicts, 99, "{W}: 99 conflicts on version {expected}");
        let Some((i, record)) = winners.pop() else {
            panic!("conformance: {W}: no winner on version {expected}")
        };
        assert_eq!(
            load(store.as_ref(), &ana(), W).await,
            Some(with_version(&record, expected + 1)),
            "{W}: the stored record is the winner's"
        );
        let live = record.token_digests();
        for (purpose, d) in &live {
            assert!(
                by_token(store.as_ref(), *purpose, *d, W).await.is_some(),
                "{W}: the winner's digest is indexed"
            );
        }
        for other in [i.wrapping_add(1) % N, i.wrapping_add(N - 1) % N] {
            let loser = pending(other.wrapping_add(if expected == 0 { 0 } else { 128 }));
            for (purpose, d) in loser.token_digests() {
                assert_eq!(
                    by_token(store.as_ref(), purpose, d, W).await,
                    None,
                    "{W}: a loser's digest must not be indexed"
                );
            }
        }
        let events = log(store.as_ref(), &ana(), W).await;
        let winner_event = AuditKind::ChecksFailed {
            failures: u32::from(i),
        };
        assert_eq!(
            (events.len() as u64, events.last().map(|e| &e.kind)),
            (expected + 1, Some(&winner_event)),
            "{W}: only the winner's audit event is appended"
        );
        let queued = claim(store.as_ref(), FAR, 1000, W).await;
        assert_eq!(
            keys(&queued),
            [format!("race{expected}-{i}").as_str()],
            "{W}: only the winner's message is queued"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Outbox
// ---------------------------------------------------------------------------------------------

/// Claim (due from `created_at`, oldest first, `limit`), lease (not re-claimed before it
/// ends, re-claimable from its end), `attempts`, `mark_sent`, `retry_later` (due again at
/// `at`, not before), `dead_letter`, terminal states staying terminal, unknown ids.
pub async fn check_outbox_lifecycle<S: AccountStore>(store: &S) {
    const W: &str = "check_outbox_lifecycle";
    let us = Duration::microseconds(1);
    commit(
        store,
        &pending(1),
        0,
        vec![msg("a"), msg("b"), msg("c"), msg("d")],
        vec![],
        W,
    )
    .await;

    assert!(
        claim(store, T0 - us, 10, W).await.is_empty(),
        "{W}: nothing due before created_at"
    );
    assert!(
        claim(store, T0, 0, W).await.is_empty(),
        "{W}: limit 0 claims nothing"
    );

    let first = claim(store, T0, 2, W).await;
    assert_eq!(
        keys(&first),
        ["a", "b"],
        "{W}: the limit is honoured, oldest first"
    );
    for m in &first {
        assert_eq!(m.attempts, 1, "{W}: attempts after the first claim");
        assert_eq!(
            m.status,
            OutboxStatus::Claimed {
                lease_until: T0 + LEASE
            },
            "{W}: status after a claim"
        );
        assert_eq!(
            m.sealed,
            payload(),
            "{W}: sealed payload round-trips byte for byte"
        );
        assert_eq!(m.member, ana(), "{W}: member");
        assert_eq!(m.notice, notice(NoticeKind::PasswordChanged), "{W}: notice");
        assert_eq!(m.created_at, T0, "{W}: created_at is the NewMessage's");
        assert_eq!(m.next_attempt_at, T0, "{W}: due from created_at");
    }
    let (a, b) = (first[0].id, first[1].id);
    assert!(b > a, "{W}: ids increase in commit order");

    let second = claim(store, T0, 10, W).await;
    assert_eq!(
        keys(&second),
        ["c", "d"],
        "{W}: claimed messages are not claimed again"
    );
    let (c, d) = (second[0].id, second[1].id);
    assert!(
        claim(store, T0 + LEASE - us, 10, W).await.is_empty(),
        "{W}: nothing re-claimable before the lease ends"
    );

    let t1 = T0 + Duration::minutes(1);
    let retry_at = T0 + Duration::hours(1);
    ok(
        store.mark_sent(a, t1).await,
        "check_outbox_lifecycle: mark_sent",
    );
    ok(
        store.retry_later(b, retry_at).await,
        "check_outbox_lifecycle: retry_later",
    );
    ok(
        store.dead_letter(c, t1, "dirección rechazada").await,
        "check_outbox_lifecycle: dead_letter",
    );

    // At the lease's end only `d` comes back; `b` waits for its retry time.
    let again = claim(store, T0 + LEASE, 10, W).await;
    assert_eq!(
        again.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(),
        [(d, 2)],
        "{W}: an expired lease is claimable again at lease_until, attempts incremented"
    );
    let before_retry = claim(store, retry_at - us, 10, W).await;
    assert_eq!(
        before_retry
            .iter()
            .map(|m| (m.id, m.attempts))
            .collect::<Vec<_>>(),
        [(d, 3)],
        "{W}: a retried message is not due before its `at`"
    );
    let at_retry = claim(store, retry_at, 10, W).await;
    assert_eq!(
        at_retry
            .iter()
            .map(|m| (m.id, m.attempts, m.next_attempt_at))
            .collect::<Vec<_>>(),
        [(b, 2, retry_at)],
        "{W}: a retried message is due at its `at`"
    );

    // A later commit's messages come after the earlier ones.
    commit(store, &pending(2), 1, vec![msg("e")], vec![], W).await;

    // Terminal states stay terminal.
    let t2 = T0 + Duration::minutes(2);
    ok(
        store.mark_sent(c, t2).await,
        "check_outbox_lifecycle: mark_sent on dead letter",
    );
    ok(
        store.retry_later(c, T0).await,
        "check_outbox_lifecycle: retry_later on dead letter",
    );
    ok(
        store.retry_later(a, T0).await,
        "check_outbox_lifecycle: retry_later on sent",
    );
    ok(
        store.dead_letter(a, t2, "late").await,
        "check_outbox_lifecycle: dead_letter on sent",
    );
    ok(
        store.mark_sent(a, t2).await,
        "check_outbox_lifecycle: mark_sent is idempotent",
    );
    // Exactly one dead-letter audit event: for `c`, none for the no-op on sent `a`.
    let log = ok(
        store.audit_log(&ana()).await,
        "check_outbox_lifecycle: audit_log",
    );
    let dead: Vec<_> = log
        .iter()
        .filter(|e| matches!(e.kind, AuditKind::NoticeDeadLettered { .. }))
        .collect();
    assert_eq!(
        dead.iter().map(|e| (&e.kind, e.at)).collect::<Vec<_>>(),
        [(
            &AuditKind::NoticeDeadLettered {
                message: "c".to_owned(),
                reason: "dirección rechazada".to_owned(),
            },
            t1
        )],
        "{W}: dead_letter appends one audit event, in the same transaction"
    );
    let late = claim(store, T0 + Duration::days(1), 10, W).await;
    assert_eq!(
        keys(&late),
        ["b", "d", "e"],
        "{W}: only unfinished messages are claimable, oldest first, a later commit's last"
    );
    let e = late[2].id;
    assert!(
        late[0].id == b && late[1].id == d && e > d,
        "{W}: ids increase across commits"
    );
    for id in [b, d, e] {
        ok(
            store.mark_sent(id, t2).await,
            "check_outbox_lifecycle: mark_sent",
        );
        ok(
            store.mark_sent(id, t2).await,
            "check_outbox_lifecycle: mark_sent twice",
        );
    }
    assert!(
        claim(store, FAR, 10, W).await.is_empty(),
        "{W}: everything finished"
    );

    let unknown = e + 1000;
    let missing = Err(StoreError::UnknownMessage { id: unknown });
    assert_eq!(
        store.mark_sent(unknown, t1).await,
        missing,
        "{W}: mark_sent of an unknown id"
    );
    assert_eq!(
        store.retry_later(unknown, t1).await,
        missing,
        "{W}: retry_later of an unknown id"
    );
    assert_eq!(
        store.dead_letter(unknown, t1, "x").await,
        missing,
        "{W}: dead_letter of an unknown id"
    );
}

/// One message per idempotency key, across batches, commits and members: the first one
/// queued is kept (its payload and `created_at`), later ones are skipped, and a re-commit
/// of a claimed key does not make it due again.
pub async fn check_outbox_idempotency<S: AccountStore>(store: &S) {
    const W: &str = "check_outbox_idempotency";
    let t1 = T0 + Duration::MINUTE;
    let mut dup = msg("k1");
    dup.sealed = vec![1, 2, 3];
    dup.created_at = T0 - Duration::hours(1);
    commit(store, &pending(1), 0, vec![msg("k1"), dup], vec![], W).await;
    commit(
        store,
        &pending(2),
        1,
        vec![msg_for(&ana(), "k1", t1), msg_for(&ana(), "k2", t1)],
        vec![],
        W,
    )
    .await;
    let other = pending_with(beto(), digest(9), T0 + Duration::hours(1));
    commit(
        store,
        &other,
        0,
        vec![msg_for(&beto(), "k2", t1), msg_for(&beto(), "k3", t1)],
        vec![],
        W,
    )
    .await;

    assert!(
        claim(store, T0 - Duration::SECOND, 10, W).await.is_empty(),
        "{W}: a skipped duplicate must not change the kept message's due time"
    );
    let out = claim(store, t1, 10, W).await;
    assert_eq!(
        keys(&out),
        ["k1", "k2", "k3"],
        "{W}: one message per key, in commit order"
    );
    let summary: Vec<_> = out
        .iter()
        .map(|m| (m.member.clone(), m.created_at, m.sealed.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (ana(), T0, payload()),
            (ana(), t1, payload()),
            (beto(), t1, payload())
        ],
        "{W}: the first message of each key is kept, with its created_at and payload"
    );

    // Queuing a claimed key again does not make it due again.
    commit(
        store,
        &pending(3),
        2,
        vec![msg_for(&ana(), "k1", t1)],
        vec![],
        W,
    )
    .await;
    assert!(
        claim(store, t1, 10, W).await.is_empty(),
        "{W}: a re-queued key must not reset its message"
    );
}

// ---------------------------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------------------------

/// Instants with odd microseconds, in several offsets, round-trip exactly in records,
/// outbox messages (`created_at`, `next_attempt_at`, lease, notice fields) and audit events.
pub async fn check_timestamp_precision<S: AccountStore>(store: &S) {
    const W: &str = "check_timestamp_precision";
    let ta = datetime!(2026-11-22 19:00:00.123457 -5);
    let tb = datetime!(2027-01-31 23:59:59.999999 UTC);
    let tc = datetime!(2001-02-03 04:05:06.000001 +1);
    let us = |t: OffsetDateTime| t.to_offset(UtcOffset::UTC).microsecond();

    let mut rec = resetting(1, 2);
    if let AccountState::Resetting {
        profile,
        reset,
        return_to,
        ..
    } = &mut rec.state
    {
        profile.activated_at = tc;
        profile.password_changed_at = ta;
        profile.last_login_at = Some(tb);
        *reset = issued(digest(1), ta, Duration::microseconds(3_600_000_001));
        if let Standing::Locked { lock } = return_to {
            lock.since = tb;
            lock.auto_unlock_at = Some(tb + Duration::microseconds(1));
        }
    }
    rec.last_registration_at = Some(tc);
    let lease = Duration::microseconds(300_000_001);
    let kind = NoticeKind::ResetLink {
        expires_at: tc + Duration::microseconds(2),
    };
    let message = NewMessage::new("ts", ana(), notice(kind), payload(), tb);
    let audit = vec![
        event(&ana(), ta, AuditKind::RecoveryStarted),
        event(&ana(), tb, AuditKind::LoginSucceeded),
        event(
            &ana(),
            tc,
            AuditKind::Locked {
                reason: LockReason::FailedLogins,
                lockouts: 1,
                until: Some(ta + Duration::microseconds(5)),
            },
        ),
    ];
    commit(store, &rec, 0, vec![message.clone()], audit.clone(), W).await;

    let back = load(store, &ana(), W).await;
    assert_eq!(back, Some(with_version(&rec, 1)), "{W}: record instants");
    let since = back
        .as_ref()
        .and_then(|r| r.state.lock())
        .map(|l| us(l.since));
    assert_eq!(since, Some(999_999), "{W}: microseconds of a lock instant");
    assert_eq!(log(store, &ana(), W).await, audit, "{W}: audit instants");

    let us1 = Duration::microseconds(1);
    assert!(
        ok(store.claim_due(tb - us1, lease, 10).await, W).is_empty(),
        "{W}: not due one microsecond before created_at"
    );
    let claimed = ok(store.claim_due(tb, lease, 10).await, W);
    let [m] = claimed.as_slice() else {
        panic!("conformance: {W}: expected one message due at created_at, got {claimed:?}")
    };
    assert_eq!(m.created_at, tb, "{W}: created_at");
    assert_eq!(us(m.created_at), 999_999, "{W}: created_at microseconds");
    assert_eq!(m.next_attempt_at, tb, "{W}: next_attempt_at");
    assert_eq!(m.notice, message.notice, "{W}: instants inside the notice");
    assert_eq!(
        m.status,
        OutboxStatus::Claimed {
            lease_until: tb + lease
        },
        "{W}: lease_until"
    );
    assert!(
        ok(store.claim_due(tb + lease - us1, lease, 10).await, W).is_empty(),
        "{W}: lease still running one microsecond before its end"
    );
    let id = m.id;
    let retry = ta + Duration::microseconds(2);
    ok(store.retry_later(id, retry).await, W);
    assert!(
        ok(store.claim_due(retry - us1, lease, 10).await, W).is_empty(),
        "{W}: not due one microsecond before the retry instant"
    );
    let again = ok(store.claim_due(retry, lease, 10).await, W);
    assert_eq!(
        again
            .iter()
            .map(|m| (m.id, m.next_attempt_at))
            .collect::<Vec<_>>(),
        [(id, retry)],
        "{W}: retry instant"
    );
    assert_eq!(
        again
            .iter()
            .map(|m| us(m.next_attempt_at))
            .collect::<Vec<_>>(),
        [123_459],
        "{W}: retry instant microseconds"
    );
}

// ---------------------------------------------------------------------------------------------
// Audit log and retention
// ---------------------------------------------------------------------------------------------

/// The audit log is append-only, per member and in commit order (not sorted by instant);
/// `purge_audit(before)` deletes exactly the events with `at < before` and says how many.
pub async fn check_audit_log<S: AccountStore>(store: &S) {
    const W: &str = "check_audit_log";
    let s = Duration::SECOND;
    let e1 = event(&ana(), T0 + s, AuditKind::Registered);
    let e2 = event(&beto(), T0, AuditKind::RegistrationThrottled);
    let e3 = event(&ana(), T0, AuditKind::RegistrationOnActive);
    let e4 = event(&ana(), T0, AuditKind::LoginSucceeded);
    commit(
        store,
        &pending(1),
        0,
        vec![],
        vec![e1.clone(), e2.clone(), e3.clone()],
        W,
    )
    .await;
    commit(store, &pending(2), 1, vec![], vec![e4.clone()], W).await;
    let e5 = event(&ana(), T0 + 2 * s, AuditKind::Activated);
    commit(store, &pending(3), 2, vec![], vec![e5.clone()], W).await;

    assert_eq!(
        log(store, &ana(), W).await,
        [e1.clone(), e3.clone(), e4.clone(), e5.clone()],
        "{W}: a member's events in commit order"
    );
    assert_eq!(
        log(store, &beto(), W).await,
        [e2],
        "{W}: events are filed by member"
    );
    assert!(
        log(store, &foreigner(), W).await.is_empty(),
        "{W}: no events of another member"
    );

    let purged = ok(
        store.purge_audit(T0 + s).await,
        "check_audit_log: purge_audit",
    );
    assert_eq!(
        purged, 3,
        "{W}: purge_audit counts the events with at < before"
    );
    assert_eq!(
        log(store, &ana(), W).await,
        [e1.clone(), e5.clone()],
        "{W}: an event at `before` exactly is kept"
    );
    assert!(
        log(store, &beto(), W).await.is_empty(),
        "{W}: purge applies to every member"
    );
    assert_eq!(
        ok(
            store.purge_audit(T0 + s).await,
            "check_audit_log: purge_audit"
        ),
        0,
        "{W}: a second purge deletes nothing"
    );

    // Still append-only after a purge.
    let e6 = event(&ana(), T0, AuditKind::PasswordReset);
    commit(store, &pending(4), 3, vec![], vec![e6.clone()], W).await;
    assert_eq!(
        log(store, &ana(), W).await,
        [e1, e5, e6],
        "{W}: appended after a purge"
    );
    assert_eq!(
        ok(store.purge_audit(FAR).await, "check_audit_log: purge_audit"),
        3,
        "{W}: purge of everything"
    );
    assert!(
        log(store, &ana(), W).await.is_empty(),
        "{W}: empty after a purge of everything"
    );
}

/// `expired_pending(now)` returns the `PendingActivation` records whose link has expired
/// (`expires_at <= now`), current version, up to `limit`; nothing else.
pub async fn check_expired_pending<S: AccountStore>(store: &S) {
    const W: &str = "check_expired_pending";
    let us = Duration::microseconds(1);
    let past = pending_with(cedula(1), digest(1), T0 - us);
    let at_now = pending_with(cedula(2), digest(2), T0);
    let live = pending_with(cedula(3), digest(3), T0 + us);
    let mut expired_reset = resetting(4, 5);
    expired_reset.member = cedula(4);
    if let AccountState::Resetting { reset, .. } = &mut expired_reset.state {
        *reset = issued(digest(4), T0 - Duration::hours(2), Duration::hours(1));
    }
    commit(store, &past, 0, vec![], vec![], W).await;
    commit(store, &past, 1, vec![], vec![], W).await;
    commit(store, &at_now, 0, vec![], vec![], W).await;
    commit(store, &live, 0, vec![], vec![], W).await;
    commit(store, &expired_reset, 0, vec![], vec![], W).await;
    commit(store, &active(cedula(5)), 0, vec![], vec![], W).await;
    commit(store, &AccountRecord::new(cedula(6)), 0, vec![], vec![], W).await;

    let found = ok(
        store.expired_pending(T0, 100).await,
        "check_expired_pending",
    );
    let found: BTreeMap<_, _> = found
        .into_iter()
        .map(|r| (r.member.to_string(), r))
        .collect();
    let expected: BTreeMap<_, _> = [with_version(&past, 2), with_version(&at_now, 1)]
        .into_iter()
        .map(|r| (r.member.to_string(), r))
        .collect();
    assert_eq!(
        found, expected,
        "{W}: pending records whose link expired at or before now, at their current version"
    );
    let one = ok(store.expired_pending(T0, 1).await, "check_expired_pending");
    assert!(
        one.len() == 1
            && one
                .iter()
                .all(|r| r.member == cedula(1) || r.member == cedula(2)),
        "{W}: the limit is honoured, got {:?}",
        one.iter().map(|r| r.member.to_string()).collect::<Vec<_>>()
    );
    assert!(
        ok(store.expired_pending(T0, 0).await, "check_expired_pending").is_empty(),
        "{W}: limit 0"
    );
    assert!(
        ok(
            store.expired_pending(T0 - Duration::SECOND, 100).await,
            "check_expired_pending"
        )
        .is_empty(),
        "{W}: nothing expired a second earlier"
    );
}

/// [`retention::purge`](crate::retention::purge) on the store: expired pending
/// registrations return to `Unregistered` with their contact data dropped (through the
/// commit path, audited), live ones stay, and old audit events go.
pub async fn check_retention_purge<S: AccountStore>(store: &S) {
    const W: &str = "check_retention_purge";
    let policy = Policy::isspol(); // 25-minute links
    let t0 = datetime!(2026-11-22 10:00:00.000001 -5);
    let mut rng = StdRng::seed_from_u64(9);
    let key = DigestKey::generate(&mut rng);
    for (m, at) in [(ana(), t0), (beto(), t0 + Duration::minutes(10))] {
        let cmd = Command::Register(Register {
            contact: Contact {
                email: email("ana@example.ec"),
                mobile: Some(ok("0991234567".parse(), "fixture: mobile")),
                landline: None,
            },
            terms_accepted: true,
            proofs: vec![ProofResult::passed(Proof::AffiliateNumber)],
            human_verified: false,
            link: key.digest_token(TokenPurpose::Activation, &Token::generate(&mut rng)),
            code: Some(key.digest_token(TokenPurpose::ActivationCode, &Token::generate(&mut rng))),
            enrollment: SecurityEnrollment::default(),
            locale: Locale::EsEc,
        });
        let d = ok(
            decide(&AccountRecord::new(m), &cmd, at, &policy),
            "check_retention_purge: fixture registration",
        );
        commit(store, &d.next, 0, vec![], d.audit().cloned().collect(), W).await;
    }

    let report = ok(
        crate::retention::purge(store, &policy, t0 + Duration::minutes(25)).await,
        "check_retention_purge: purge",
    );
    assert_eq!(
        report.registrations_expired, 1,
        "{W}: one registration expired"
    );
    assert_eq!(report.audit_deleted, 0, "{W}: no audit event old enough");
    let first = load(store, &ana(), W).await;
    assert_eq!(
        first.as_ref().map(|r| (&r.state, r.version)),
        Some((&AccountState::Unregistered, 2)),
        "{W}: the expired registration is Unregistered, committed as version 2"
    );
    let first_json = first.map(|r| serde_json::to_string(&r).unwrap_or_default());
    assert!(
        first_json.is_some_and(|j| !j.contains("ana@example.ec") && !j.contains("0991234567")),
        "{W}: contact data dropped"
    );
    assert_eq!(
        log(store, &ana(), W).await.last().map(|e| e.kind.clone()),
        Some(AuditKind::RegistrationExpired),
        "{W}: the expiry is audited"
    );
    assert!(
        matches!(
            load(store, &beto(), W).await.map(|r| r.state),
            Some(AccountState::PendingActivation(_))
        ),
        "{W}: a live registration stays pending"
    );
    let again = ok(
        crate::retention::purge(store, &policy, t0 + Duration::minutes(26)).await,
        "check_retention_purge: purge",
    );
    assert_eq!(
        again.registrations_expired, 0,
        "{W}: a second purge changes nothing"
    );

    let later = t0 + Duration::days(5 * 365 + 1);
    let report = ok(
        crate::retention::purge(store, &policy, later).await,
        "check_retention_purge: purge",
    );
    assert_eq!(
        report.registrations_expired, 1,
        "{W}: the second registration expired too"
    );
    assert_eq!(
        report.audit_deleted, 4,
        "{W}: every audit event of that day is deleted"
    );
    assert!(
        log(store, &ana(), W).await.is_empty(),
        "{W}: Ana's audit log purged"
    );
    assert!(
        log(store, &beto(), W).await.is_empty(),
        "{W}: Beto's audit log purged"
    );
}

// ---------------------------------------------------------------------------------------------
// Member directory
// ---------------------------------------------------------------------------------------------

fn facts(m: MemberId, names: &str) -> MemberFacts {
    MemberFacts::new(m, names, date!(1990 - 05 - 14))
}

/// `purge_sent` deletes exactly the messages delivered before its argument; pending, claimed
/// and dead-lettered ones stay, whatever their age.
pub async fn check_sent_purge<S: AccountStore>(store: &S) {
    const W: &str = "check_sent_purge";
    let s = Duration::seconds(1);
    commit(
        store,
        &pending(1),
        0,
        vec![
            msg("old"),
            msg("new"),
            msg("dead"),
            msg("claimed"),
            msg("waiting"),
        ],
        vec![],
        W,
    )
    .await;
    let claimed = claim(store, T0, 4, W).await;
    let id = |key: &str| {
        claimed
            .iter()
            .find(|m| m.idempotency_key == key)
            .map(|m| m.id)
            .unwrap_or_else(|| panic!("{W}: {key} claimed"))
    };
    ok(store.mark_sent(id("old"), T0).await, W);
    ok(store.mark_sent(id("new"), T0 + s).await, W);
    ok(store.dead_letter(id("dead"), T0, "gave up").await, W);
    assert_eq!(ok(store.purge_sent(T0).await, W), 0, "{W}: strictly before");
    assert_eq!(ok(store.purge_sent(T0 + s).await, W), 1, "{W}: the old one");
    assert_eq!(
        ok(store.purge_sent(FAR).await, W),
        1,
        "{W}: then the newer one"
    );
    assert_eq!(
        ok(store.purge_sent(FAR).await, W),
        0,
        "{W}: dead, claimed and pending messages stay"
    );
    // The claimed one comes back after its lease, with the waiting one.
    let again = claim(store, FAR, 10, W).await;
    let mut keys: Vec<&str> = again.iter().map(|m| m.idempotency_key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["claimed", "waiting"],
        "{W}: undelivered messages are kept"
    );
}

/// `unregistered` lists `Unregistered` records only, in member-ID order, page by page after
/// the given ID; `delete_unregistered` deletes a record only at the given version and only
/// while it is `Unregistered`, after which a commit at version 0 starts it again.
pub async fn check_unregistered<S: AccountStore>(store: &S) {
    const W: &str = "check_unregistered";
    for n in [3, 1, 2] {
        commit(store, &AccountRecord::new(cedula(n)), 0, vec![], vec![], W).await;
    }
    commit(store, &active(cedula(4)), 0, vec![], vec![], W).await;
    commit(
        store,
        &pending_with(cedula(5), digest(5), FAR),
        0,
        vec![],
        vec![],
        W,
    )
    .await;
    let ids = |records: Vec<AccountRecord>| -> Vec<MemberId> {
        records.into_iter().map(|r| r.member).collect()
    };
    let all = ok(store.unregistered(None, 100).await, W);
    assert!(
        all.iter().all(|r| r.version == 1),
        "{W}: records come at their version"
    );
    assert_eq!(
        ids(all),
        vec![cedula(1), cedula(2), cedula(3)],
        "{W}: unregistered records only, in member-ID order"
    );
    let page = ok(store.unregistered(Some(&cedula(1)), 1).await, W);
    assert_eq!(ids(page), vec![cedula(2)], "{W}: the page after an ID");
    assert!(
        ok(store.unregistered(None, 0).await, W).is_empty(),
        "{W}: limit 0"
    );

    assert!(
        !ok(store.delete_unregistered(&cedula(1), 2).await, W),
        "{W}: another version is not deleted"
    );
    assert!(
        !ok(store.delete_unregistered(&cedula(4), 1).await, W),
        "{W}: an active account is never deleted"
    );
    assert!(
        !ok(store.delete_unregistered(&cedula(5), 1).await, W),
        "{W}: a pending registration is never deleted"
    );
    assert!(
        ok(store.delete_unregistered(&cedula(1), 1).await, W),
        "{W}: deleted"
    );
    assert!(
        ok(store.load(&cedula(1)).await, W).is_none(),
        "{W}: gone after deletion"
    );
    assert!(
        !ok(store.delete_unregistered(&cedula(1), 1).await, W),
        "{W}: deleting twice deletes nothing"
    );
    commit(store, &AccountRecord::new(cedula(1)), 0, vec![], vec![], W).await;
    assert_eq!(
        ok(store.load(&cedula(1)).await, W).map(|r| r.version),
        Some(1),
        "{W}: a new record starts again at version 1"
    );
    assert!(ok(store.load(&cedula(4)).await, W).is_some());
}

/// `find` of a missing member is `Ok(None)`; `enroll` then `find` round-trips every field
/// (accented and quoted text included); enrolling again replaces the facts.
pub async fn check_directory<D: MemberDirectory>(dir: &D) {
    const W: &str = "check_directory";
    let find = |m: MemberId| async move { ok(dir.find(&m).await, "check_directory: find") };
    assert_eq!(find(ana()).await, None, "{W}: find of a missing member");

    let mut maria = facts(ana(), "MARÍA JOSÉ ÑÁÑEZ");
    maria.birth_date = date!(1961 - 02 - 28);
    maria.affiliate_number = Some("A-0012345".to_owned());
    maria.employers = vec![
        "Cooperativa Ñuca Llacta".to_owned(),
        "O'BRIEN & HIJOS \"CÍA\"".to_owned(),
    ];
    maria.contribution_years = vec![1985, 1990, 2024];
    ok(dir.enroll(maria.clone()).await, "check_directory: enroll");
    assert_eq!(
        find(ana()).await,
        Some(maria.clone()),
        "{W}: enrolled facts round-trip"
    );

    let john = facts(foreigner(), "JOHN O'NEILL");
    ok(dir.enroll(john.clone()).await, "check_directory: enroll");
    assert_eq!(
        find(foreigner()).await,
        Some(john),
        "{W}: a foreigner's facts"
    );
    assert_eq!(
        find(beto()).await,
        None,
        "{W}: still missing after other enrolments"
    );

    let replaced = facts(ana(), "MARÍA JOSÉ ÑÁÑEZ VACA");
    ok(
        dir.enroll(replaced.clone()).await,
        "check_directory: enroll",
    );
    assert_eq!(
        find(ana()).await,
        Some(replaced),
        "{W}: enrolling again replaces the facts (no merge of employers or years)"
    );
}

/// `enroll_many` of 1,000 members counts them and every one is found afterwards; it
/// replaces members enrolled earlier; an empty batch enrolls nothing.
pub async fn check_enroll_many<D: MemberDirectory>(dir: &D) {
    const W: &str = "check_enroll_many";
    ok(
        dir.enroll(facts(cedula(0), "ANTES")).await,
        "check_enroll_many: enroll",
    );
    assert_eq!(
        ok(
            dir.enroll_many(Vec::new()).await,
            "check_enroll_many: empty batch"
        ),
        0,
        "{W}: an empty batch"
    );
    let batch: Vec<MemberFacts> = (0..1000u32)
        .map(|i| {
            let mut f = facts(cedula(i), &format!("AFILIADO Nº {i} PÉREZ"));
            f.contribution_years = vec![2000 + (i % 25) as u16];
            f
        })
        .collect();
    assert_eq!(
        ok(
            dir.enroll_many(batch.clone()).await,
            "check_enroll_many: enroll_many"
        ),
        1000,
        "{W}: enroll_many returns how many it enrolled"
    );
    for i in [0usize, 1, 499, 998, 999] {
        assert_eq!(
            ok(dir.find(&batch[i].member).await, "check_enroll_many: find"),
            Some(batch[i].clone()),
            "{W}: member {i} of the batch (member 0 replaced)"
        );
    }
    assert_eq!(
        ok(dir.find(&cedula(1000)).await, "check_enroll_many: find"),
        None,
        "{W}: a member outside the batch"
    );
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Whether `needle` (digits) occurs in `hay` as a whole run of digits.
fn has_digit_run(hay: &str, needle: &str) -> bool {
    let bytes = hay.as_bytes();
    hay.match_indices(needle).any(|(i, _)| {
        let before = i.checked_sub(1).and_then(|j| bytes.get(j));
        let after = bytes.get(i + needle.len());
        !before.is_some_and(u8::is_ascii_digit) && !after.is_some_and(u8::is_ascii_digit)
    })
}

/// Nothing secret is stored in clear: records and outbox messages built from a planted
/// password (only its PHC hash stored), a planted token and code (only their keyed digests
/// stored) and a sealed payload carrying both ([`SealKey`]) leave no trace of the password,
/// the token (text, hex or base64 of its bytes), the code, or the keys in
/// [`Backend::raw_dump`].
///
/// The dump must also show that it covers what was stored: the member id, the PHC string,
/// the idempotency key and the sealed payload (hex, per the blob convention, or base64).
pub async fn check_no_secret_in_clear<B: Backend>(backend: &B, store: &B::Store) {
    const W: &str = "check_no_secret_in_clear";
    let mut rng = StdRng::seed_from_u64(0x5EC2E7);
    let password = "Planted-Clave-2026-ñandú";
    let answer = "planted answer cotopaxi";
    let mut digest_key_bytes = [0u8; 32];
    let mut seal_key_bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rng, &mut digest_key_bytes);
    rand::RngCore::fill_bytes(&mut rng, &mut seal_key_bytes);
    let digest_key = ok(
        DigestKey::from_bytes(&digest_key_bytes),
        "fixture: digest key",
    );
    let seal_key = ok(SealKey::from_bytes(&seal_key_bytes), "fixture: seal key");
    let reset = Token::generate(&mut rng);
    let unlock = Token::generate(&mut rng);
    let activation = Token::generate(&mut rng);
    let code = ok(NumericCode::generate(10, &mut rng), "fixture: code");

    // Ana, resetting on top of a lock: PHC hashes and token digests only.
    let mut rec = resetting(1, 2);
    let params = HashParams::danger_insecure_for_tests();
    let phc = ok(
        hash_password(password.as_bytes(), &params, &mut rng),
        "fixture: hash",
    );
    if let AccountState::Resetting {
        profile,
        reset: r,
        return_to,
        ..
    } = &mut rec.state
    {
        profile.password = phc.clone();
        profile.enrollment.answers = vec![EnrolledAnswer {
            question: "volcán".to_owned(),
            answer: ok(
                hash_password(answer.as_bytes(), &params, &mut rng),
                "fixture: hash",
            ),
        }];
        r.digest = digest_key.digest_token(TokenPurpose::Reset, &reset);
        if let Standing::Locked { lock } = return_to {
            lock.unlock_link = Some(issued(
                digest_key.digest_token(TokenPurpose::Unlock, &unlock),
                T0,
                Duration::hours(1),
            ));
        }
    }
    let key = "planted-reset-1";
    let secrets = LinkSecrets::new(reset.clone(), Some(code.clone()));
    let sealed = seal_key.seal(&secrets, key.as_bytes(), &mut rng);
    let kind = NoticeKind::ResetLink {
        expires_at: T0 + Duration::hours(1),
    };
    let out = vec![NewMessage::new(
        key,
        ana(),
        notice(kind),
        sealed.clone(),
        T0,
    )];
    let audit = vec![event(&ana(), T0, AuditKind::RecoveryStarted)];
    commit(store, &rec, 0, out, audit, W).await;

    // Beto, pending with a link and a code bound to him.
    let mut pend = pending_with(beto(), Digest::from_bytes([0; 32]), T0 + Duration::hours(1));
    if let AccountState::PendingActivation(p) = &mut pend.state {
        p.link.digest = digest_key.digest_token(TokenPurpose::Activation, &activation);
        p.code = Some(digest_key.digest_code(TokenPurpose::ActivationCode, "0926687856", &code));
    }
    let secrets = LinkSecrets::new(activation.clone(), Some(code.clone()));
    let key2 = "planted-activation-1";
    let kind = NoticeKind::Activation {
        expires_at: T0 + Duration::hours(1),
        with_code: true,
    };
    let sealed2 = seal_key.seal(&secrets, key2.as_bytes(), &mut rng);
    let out = vec![NewMessage::new(key2, beto(), notice(kind), sealed2, T0)];
    commit(store, &pend, 0, out, vec![], W).await;

    // Exercise the outbox columns too.
    let claimed = claim(store, T0, 10, W).await;
    for m in &claimed {
        ok(
            store.retry_later(m.id, T0 + Duration::MINUTE).await,
            "check_no_secret_in_clear",
        );
    }

    let dump = backend.raw_dump(store).await;
    let anywhere = |s: &str| dump.iter().any(|d| d.contains(s));
    assert!(
        anywhere("1710034065"),
        "{W}: raw_dump must cover the account records (member id)"
    );
    assert!(
        anywhere(phc.as_str()),
        "{W}: raw_dump must cover the stored PHC string"
    );
    assert!(
        anywhere(key),
        "{W}: raw_dump must cover the outbox (idempotency key)"
    );
    assert!(
        anywhere(&hex(&sealed)) || anywhere(&STANDARD.encode(&sealed)),
        "{W}: raw_dump must cover the sealed payload (blob columns in lowercase hex)"
    );

    let mut planted: Vec<(String, String)> = vec![
        ("the password".into(), password.into()),
        ("the password, hex".into(), hex(password.as_bytes())),
        (
            "the password, base64".into(),
            STANDARD_NO_PAD.encode(password),
        ),
        ("a security answer".into(), answer.into()),
        ("the digest key, hex".into(), hex(&digest_key_bytes)),
        (
            "the digest key, base64".into(),
            STANDARD_NO_PAD.encode(digest_key_bytes),
        ),
        ("the seal key, hex".into(), hex(&seal_key_bytes)),
        (
            "the seal key, base64".into(),
            STANDARD_NO_PAD.encode(seal_key_bytes),
        ),
    ];
    for (name, token) in [
        ("reset", &reset),
        ("unlock", &unlock),
        ("activation", &activation),
    ] {
        let text = token.expose_secret();
        let raw = ok(URL_SAFE_NO_PAD.decode(text), "fixture: token bytes");
        planted.push((format!("the {name} token"), text.to_owned()));
        planted.push((format!("the {name} token, hex"), hex(&raw)));
        planted.push((format!("the {name} token, HEX"), hex(&raw).to_uppercase()));
        planted.push((
            format!("the {name} token, base64"),
            STANDARD_NO_PAD.encode(&raw),
        ));
    }
    for (i, entry) in dump.iter().enumerate() {
        for (what, needle) in &planted {
            assert!(
                !entry.contains(needle.as_str()),
                "conformance: {W}: {what} is stored in clear (raw_dump entry {i})"
            );
        }
        assert!(
            !has_digit_run(entry, code.expose_secret()),
            "conformance: {W}: the code is stored in clear (raw_dump entry {i})"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn fixtures_are_valid() {
        let ids: BTreeSet<String> = (0..1001).map(|i| cedula(i).to_string()).collect();
        assert_eq!(ids.len(), 1001);
        assert_eq!(cedula(0).to_string(), "1700000001");
        assert!(has_digit_run("x\"0123456789\"", "0123456789"));
        assert!(has_digit_run("0123456789", "0123456789"));
        assert!(!has_digit_run("10123456789", "0123456789"));
        assert!(!has_digit_run("01234567890", "0123456789"));
        assert_eq!(hex(&[0, 0xAB]), "00ab");
    }
}
