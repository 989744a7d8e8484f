//! Fault injection against `AccountService` with the `mock` feature's mocks: store failures
//! and version conflicts on commit, and the "exactly one password verification per login"
//! guarantee under every login path, and transient mailer failures in the outbox dispatcher.
#![cfg(all(
    feature = "mock",
    feature = "memory",
    feature = "service",
    feature = "test-util"
))]
#![allow(clippy::disallowed_methods)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use afiliado::MemberId;
use afiliado::core::{AccountState, AuditKind, NoticeKind};
use afiliado::crypto::{DigestKey, HashParams};
use afiliado::memory::{MemoryDirectory, MemoryStore};
use afiliado::mock::{
    MockAccountStore, MockClock, MockHumanCheck, MockMailer, MockMemberDirectory,
    MockPasswordHasher,
};
use afiliado::notices::LinkBase;
use afiliado::ports::{
    AccountStore, AlwaysPass, Clock, Mail, MailError, ManualClock, MemberFacts, OutboxStatus,
    StoreError,
};
use afiliado::seal::SealKey;
use afiliado::service::{
    AccountService, Answers, Argon2Hasher, HashPool, LoginOutcome, OutboxDispatcher,
    PasswordHasher, RegisterOutcome, RegisterRequest, ServiceError,
};
use afiliado::{Password, Policy};
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::macros::{date, datetime};

const MEMBER: &str = "1710034065";
/// A well-formed cédula the directory does not know.
const UNKNOWN: &str = "0926687856";
const AFFILIATE: &str = "A-778812";
const PASSWORD: &str = "Atardecer en el Cotopaxi";
const WRONG: &str = "Amanecer en el Chimborazo";
const SEED: u64 = 0x5EED_2026;

fn member() -> MemberId {
    MEMBER.parse().unwrap()
}

fn policy() -> Policy {
    let mut p = Policy::recommended();
    p.hashing = HashParams::danger_insecure_for_tests();
    p
}

/// The server keys, from a seeded RNG: the same keys every time they are asked for, so a
/// test can open the sealed outbox payloads the service wrote.
fn keys() -> (DigestKey, SealKey) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let digest = DigestKey::generate(&mut rng);
    let seal = SealKey::generate(&mut rng);
    (digest, seal)
}

fn directory() -> Arc<MemoryDirectory> {
    let mut facts = MemberFacts::new(member(), "Ana María Quishpe", date!(1984 - 03 - 17));
    facts.affiliate_number = Some(AFFILIATE.to_owned());
    Arc::new(MemoryDirectory::new().with(facts))
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2026-11-22 19:36 -5)))
}

fn service(store: Arc<dyn AccountStore>, hasher: Arc<dyn PasswordHasher>) -> AccountService {
    service_at(store, hasher, clock())
}

fn service_at(
    store: Arc<dyn AccountStore>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<ManualClock>,
) -> AccountService {
    let (digest, seal) = keys();
    AccountService::builder(policy(), digest, seal)
        .store(store)
        .directory(directory())
        .human_check(Arc::new(AlwaysPass))
        .clock(clock)
        .hasher(hasher)
        .pool(HashPool::new(2, 16))
        .build()
        .unwrap()
}

fn register_request(id: &str) -> RegisterRequest {
    let mut answers = Answers::default();
    answers.affiliate_number = Some(AFFILIATE.to_owned());
    let mut req = RegisterRequest::new(id, "ana.quishpe@example.ec");
    req.mobile = Some("0991234567".to_owned());
    req.terms_accepted = true;
    req.answers = answers;
    req.human_response = Some("widget-ok".to_owned());
    req
}

/// Polls a future that never pends (every `MemoryStore` operation completes at once), so a
/// mock's synchronous `returning` closure can delegate to the real store.
fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the memory store never pends"),
    }
}

/// A write by "another node", made right before the service's own commit.
type Interference = Box<dyn FnOnce(&MemoryStore) + Send>;

/// How a [`delegating`] mock's commits behave.
#[derive(Clone, Default)]
struct CommitFaults {
    /// Runs against the real store just before the next commit, which is then delegated (and
    /// meets a genuine version conflict if the interference wrote the same record).
    interfere_next: Arc<Mutex<Option<Interference>>>,
    /// Commits seen (failed or not).
    commits: Arc<AtomicUsize>,
    /// The next commit answers `Conflict` and writes nothing.
    conflict_next: Arc<AtomicBool>,
    /// The next commit answers `Unavailable` and writes nothing.
    unavailable_next: Arc<AtomicBool>,
}

/// A mock store delegating every call the service makes to `real`, except the commits
/// `faults` tells it to fail.
fn delegating(real: &Arc<MemoryStore>, faults: &CommitFaults) -> MockAccountStore {
    let mut mock = MockAccountStore::new();
    let r = real.clone();
    mock.expect_load()
        .returning(move |m| now_or_never(r.load(m)));
    let r = real.clone();
    mock.expect_load_by_token()
        .returning(move |p, d| now_or_never(r.load_by_token(p, d)));
    let r = real.clone();
    let f = faults.clone();
    mock.expect_commit()
        .returning(move |record, expected, outbox, audit| {
            f.commits.fetch_add(1, Ordering::SeqCst);
            if f.unavailable_next.swap(false, Ordering::SeqCst) {
                return Err(StoreError::Unavailable("injected: primary down".into()));
            }
            if f.conflict_next.swap(false, Ordering::SeqCst) {
                return Err(StoreError::Conflict {
                    member: record.member.clone(),
                    expected,
                    found: Some(expected + 1),
                });
            }
            if let Some(write) = f.interfere_next.lock().unwrap().take() {
                write(&r);
            }
            now_or_never(r.commit(record, expected, outbox, audit))
        });
    mock
}

/// Counts hasher calls, delegating to argon2id at the test parameters.
type CountingHasher = afiliado::service::CountingHasher<Argon2Hasher>;

fn counting_hasher() -> CountingHasher {
    CountingHasher::new(Argon2Hasher::new(HashParams::danger_insecure_for_tests()).unwrap())
}

/// Opens the activation mail the service queued for `member` (the newest one): its link
/// token and code, as the member would read them.
fn activation_secrets(store: &MemoryStore) -> (String, Option<String>) {
    let msg = store
        .outbox()
        .into_iter()
        .rev()
        .find(|m| matches!(m.notice.kind, NoticeKind::Activation { .. }))
        .expect("an activation mail is queued");
    let secrets = keys()
        .1
        .open(&msg.sealed, msg.idempotency_key.as_bytes())
        .unwrap();
    (
        secrets.token.expose_secret().to_owned(),
        secrets.code.map(|c| c.expose_secret().to_owned()),
    )
}

async fn register_and_activate(svc: &AccountService, store: &MemoryStore) {
    assert_eq!(
        svc.register(register_request(MEMBER)).await.unwrap(),
        RegisterOutcome::Submitted
    );
    let (token, code) = activation_secrets(store);
    svc.activate(
        &token,
        code.as_deref(),
        Password::new(PASSWORD),
        Password::new(PASSWORD),
    )
    .await
    .unwrap();
    assert!(matches!(
        store.load(&member()).await.unwrap().unwrap().state,
        AccountState::Active { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// Commit faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_store_failure_on_commit_fails_the_registration_and_writes_nothing() {
    let real = Arc::new(MemoryStore::new());
    let faults = CommitFaults::default();
    faults.unavailable_next.store(true, Ordering::SeqCst);
    let svc = service(
        Arc::new(delegating(&real, &faults)),
        Arc::new(counting_hasher()),
    );

    let err = svc.register(register_request(MEMBER)).await.unwrap_err();
    assert!(
        matches!(err, ServiceError::Store(StoreError::Unavailable(_))),
        "{err:?}"
    );
    assert_eq!(
        faults.commits.load(Ordering::SeqCst),
        1,
        "no retry of a non-conflict"
    );
    assert_eq!(real.load(&member()).await.unwrap(), None);
    assert!(real.outbox().is_empty());
    assert!(real.audit_log(&member()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_store_that_is_down_answers_store_errors_not_panics() {
    // A pure mock, no delegation: every load fails.
    let mut store = MockAccountStore::new();
    store
        .expect_load()
        .returning(|_| Err(StoreError::Unavailable("injected".into())));
    store.expect_commit().never();
    let hasher = Arc::new(counting_hasher());
    let svc = service(Arc::new(store), hasher.clone());

    let err = svc.register(register_request(MEMBER)).await.unwrap_err();
    assert!(matches!(err, ServiceError::Store(_)), "{err:?}");
    let err = svc
        .login(MEMBER, Password::new(PASSWORD))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Store(_)), "{err:?}");
    assert_eq!(
        hasher.take(),
        (0, 0, 0),
        "no hashing when the store is down"
    );
}

#[tokio::test]
async fn a_conflict_on_the_first_commit_is_retried_and_applied_exactly_once() {
    let real = Arc::new(MemoryStore::new());
    let faults = CommitFaults::default();
    faults.conflict_next.store(true, Ordering::SeqCst);
    let svc = service(
        Arc::new(delegating(&real, &faults)),
        Arc::new(counting_hasher()),
    );

    assert_eq!(
        svc.register(register_request(MEMBER)).await.unwrap(),
        RegisterOutcome::Submitted
    );
    assert_eq!(faults.commits.load(Ordering::SeqCst), 2);

    let record = real.load(&member()).await.unwrap().expect("stored");
    assert_eq!(record.version, 1);
    assert!(matches!(record.state, AccountState::PendingActivation(_)));

    let outbox = real.outbox();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert!(matches!(
        outbox[0].notice.kind,
        NoticeKind::Activation {
            with_code: true,
            ..
        }
    ));
    assert_eq!(outbox[0].member, member());

    let audit: Vec<AuditKind> = real
        .audit_log(&member())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(audit, vec![AuditKind::Registered]);

    // The retried commit's mail is the one that works.
    let (token, code) = activation_secrets(&real);
    svc.activate(
        &token,
        code.as_deref(),
        Password::new(PASSWORD),
        Password::new(PASSWORD),
    )
    .await
    .unwrap();
    assert!(matches!(
        real.load(&member()).await.unwrap().unwrap().state,
        AccountState::Active { .. }
    ));
}

#[tokio::test]
async fn directory_and_human_check_failures_write_nothing() {
    let store = Arc::new(MemoryStore::new());
    let (digest, seal) = keys();
    let mut directory = MockMemberDirectory::new();
    directory
        .expect_find()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("registry down".into())));
    let mut human = MockHumanCheck::new();
    let mut answers = [
        Err(StoreError::Unavailable("captcha provider down".into())),
        Ok(false),
    ]
    .into_iter();
    human
        .expect_verify()
        .times(2)
        .returning(move |_| answers.next().unwrap());
    let svc = AccountService::builder(policy(), digest, seal)
        .store(store.clone())
        .directory(Arc::new(directory))
        .human_check(Arc::new(human))
        .clock(clock())
        .hasher(Arc::new(counting_hasher()))
        .build()
        .unwrap();

    let err = svc.register(register_request(MEMBER)).await.unwrap_err();
    assert!(
        matches!(err, ServiceError::Store(StoreError::Unavailable(_))),
        "{err:?}"
    );
    // The unlock request asks the human check (recommended policy): its failure is a store
    // error, its "no" a failed human check.
    let err = svc.request_unlock(MEMBER, Some("r")).await.unwrap_err();
    assert!(matches!(err, ServiceError::Store(_)), "{err:?}");
    let err = svc.request_unlock(MEMBER, Some("r")).await.unwrap_err();
    assert!(matches!(err, ServiceError::HumanCheckFailed), "{err:?}");

    assert_eq!(store.load(&member()).await.unwrap(), None);
    assert!(store.outbox().is_empty());
    assert!(store.audit_log(&member()).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_service_reads_the_clock_once_per_call() {
    let store = Arc::new(MemoryStore::new());
    let reads = Arc::new(AtomicUsize::new(0));
    let mut clock = MockClock::new();
    let r = reads.clone();
    clock.expect_now().returning(move || {
        r.fetch_add(1, Ordering::SeqCst);
        datetime!(2026-11-22 19:36 -5)
    });
    let (digest, seal) = keys();
    let svc = AccountService::builder(policy(), digest, seal)
        .store(store.clone())
        .directory(directory())
        .human_check(Arc::new(AlwaysPass))
        .clock(Arc::new(clock))
        .hasher(Arc::new(counting_hasher()))
        .build()
        .unwrap();

    svc.register(register_request(MEMBER)).await.unwrap();
    assert_eq!(reads.swap(0, Ordering::SeqCst), 1, "register");
    let (token, code) = activation_secrets(&store);
    svc.inspect_activation(&token).await.unwrap();
    assert_eq!(reads.swap(0, Ordering::SeqCst), 1, "inspect_activation");
    svc.activate(
        &token,
        code.as_deref(),
        Password::new(PASSWORD),
        Password::new(PASSWORD),
    )
    .await
    .unwrap();
    assert_eq!(reads.swap(0, Ordering::SeqCst), 1, "activate");
    for (id, pw) in [(MEMBER, PASSWORD), (MEMBER, WRONG), (UNKNOWN, PASSWORD)] {
        svc.login(id, Password::new(pw)).await.unwrap();
        assert_eq!(reads.swap(0, Ordering::SeqCst), 1, "login {id}");
    }
}

// ---------------------------------------------------------------------------------------------
// One verification per login
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_login_path_verifies_exactly_once() {
    let store = Arc::new(MemoryStore::new());
    let hasher = Arc::new(counting_hasher());
    let svc = service(store.clone(), hasher.clone());

    // Malformed and unknown IDs: one dummy verification each.
    for id in ["17100340", "not-an-id", UNKNOWN] {
        let out = svc.login(id, Password::new(PASSWORD)).await.unwrap();
        assert_eq!(out, LoginOutcome::Failed, "{id}");
        assert_eq!(hasher.take(), (0, 0, 1), "{id}");
    }

    // Pending activation (no password yet): one dummy verification.
    svc.register(register_request(MEMBER)).await.unwrap();
    assert_eq!(hasher.take(), (0, 0, 0), "registration hashes nothing here");
    let out = svc.login(MEMBER, Password::new(PASSWORD)).await.unwrap();
    assert_eq!(out, LoginOutcome::Failed);
    assert_eq!(hasher.take(), (0, 0, 1), "pending account");

    let (token, code) = activation_secrets(&store);
    svc.activate(
        &token,
        code.as_deref(),
        Password::new(PASSWORD),
        Password::new(PASSWORD),
    )
    .await
    .unwrap();
    assert_eq!(hasher.take(), (1, 0, 0), "activation hashes once");

    // Right password: one verification, no rehash at the policy's own parameters.
    let out = svc.login(MEMBER, Password::new(PASSWORD)).await.unwrap();
    assert_eq!(out, LoginOutcome::Success { member: member() });
    assert_eq!(hasher.take(), (0, 1, 0), "right password");

    // Wrong password: one verification, never a hash.
    let threshold = svc.policy().lockout.threshold;
    for i in 0..threshold {
        let out = svc.login(MEMBER, Password::new(WRONG)).await.unwrap();
        assert_eq!(out, LoginOutcome::Failed);
        assert_eq!(hasher.take(), (0, 1, 0), "wrong password #{}", i + 1);
    }

    // Now locked: still exactly one verification, even with the right password.
    assert!(matches!(
        store.load(&member()).await.unwrap().unwrap().state,
        AccountState::Locked { .. }
    ));
    for pw in [PASSWORD, WRONG] {
        let out = svc.login(MEMBER, Password::new(pw)).await.unwrap();
        assert_eq!(out, LoginOutcome::Failed, "locks are not revealed");
        assert_eq!(hasher.take(), (0, 1, 0), "locked account");
    }
}

#[tokio::test]
async fn a_conflict_during_login_is_retried_without_verifying_again() {
    let real = Arc::new(MemoryStore::new());
    let faults = CommitFaults::default();

    // A mockall hasher this time: delegating to argon2id, with call counts.
    let argon = Arc::new(Argon2Hasher::new(HashParams::danger_insecure_for_tests()).unwrap());
    let verified = Arc::new(Mutex::new(Vec::<bool>::new()));
    let mut hasher = MockPasswordHasher::new();
    let a = argon.clone();
    hasher
        .expect_hash()
        .times(1) // activation
        .returning(move |p| a.hash(p));
    let (a, v) = (argon.clone(), verified.clone());
    hasher.expect_verify().returning(move |p, h| {
        let ok = a.verify(p, h);
        v.lock().unwrap().push(*ok.as_ref().unwrap_or(&false));
        ok
    });
    hasher.expect_verify_dummy().never();
    hasher
        .expect_params()
        .return_const(HashParams::danger_insecure_for_tests());
    let a = argon.clone();
    hasher
        .expect_needs_rehash()
        .returning(move |h| a.needs_rehash(h));

    let svc = service(Arc::new(delegating(&real, &faults)), Arc::new(hasher));
    register_and_activate(&svc, &real).await;
    let before = faults.commits.load(Ordering::SeqCst);

    // Right password, conflicting commit: retried, logged in, verified once.
    faults.conflict_next.store(true, Ordering::SeqCst);
    let out = svc.login(MEMBER, Password::new(PASSWORD)).await.unwrap();
    assert_eq!(out, LoginOutcome::Success { member: member() });
    assert_eq!(faults.commits.load(Ordering::SeqCst), before + 2);
    assert_eq!(*verified.lock().unwrap(), vec![true]);

    // Wrong password, conflicting commit: retried, one failure counted, verified once.
    faults.conflict_next.store(true, Ordering::SeqCst);
    let out = svc.login(MEMBER, Password::new(WRONG)).await.unwrap();
    assert_eq!(out, LoginOutcome::Failed);
    assert_eq!(faults.commits.load(Ordering::SeqCst), before + 4);
    assert_eq!(*verified.lock().unwrap(), vec![true, false]);
    match real.load(&member()).await.unwrap().unwrap().state {
        AccountState::Active { failures, .. } => assert_eq!(failures.len(), 1),
        other => panic!("expected an active account, got {other:?}"),
    }
    let audit = real.audit_log(&member()).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.kind == AuditKind::LoginSucceeded)
            .count(),
        1
    );

    // A genuine conflict: another node bumps the version in between. The retry reloads,
    // decides on the new version and still verifies only once.
    faults
        .interfere_next
        .lock()
        .unwrap()
        .replace(Box::new(|store: &MemoryStore| {
            let current = now_or_never(store.load(&member())).unwrap().unwrap();
            now_or_never(store.commit(&current, current.version, vec![], vec![])).unwrap();
        }));
    let version = real.load(&member()).await.unwrap().unwrap().version;
    let out = svc.login(MEMBER, Password::new(PASSWORD)).await.unwrap();
    assert_eq!(out, LoginOutcome::Success { member: member() });
    assert_eq!(*verified.lock().unwrap(), vec![true, false, true]);
    assert_eq!(
        real.load(&member()).await.unwrap().unwrap().version,
        version + 2
    );

    // The concurrent write is a password change: the verification was made against the old
    // hash, so the retried login counts as failed (no second verification), and the new hash
    // survives.
    let new_hash = argon.hash(b"Otra clave completamente nueva").unwrap();
    let replacement = new_hash.clone();
    faults
        .interfere_next
        .lock()
        .unwrap()
        .replace(Box::new(move |store: &MemoryStore| {
            let mut current = now_or_never(store.load(&member())).unwrap().unwrap();
            match &mut current.state {
                AccountState::Active { profile, .. } => profile.password = replacement,
                other => panic!("expected an active account, got {other:?}"),
            }
            now_or_never(store.commit(&current, current.version, vec![], vec![])).unwrap();
        }));
    let out = svc.login(MEMBER, Password::new(PASSWORD)).await.unwrap();
    assert_eq!(out, LoginOutcome::Failed);
    assert_eq!(*verified.lock().unwrap(), vec![true, false, true, true]);
    let stored = real.load(&member()).await.unwrap().unwrap();
    assert_eq!(stored.password_hash(), Some(&new_hash));
    match stored.state {
        AccountState::Active { failures, .. } => assert_eq!(failures.len(), 1),
        other => panic!("expected an active account, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Mailer faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_transient_mailer_failure_keeps_the_message_queued_until_a_later_run() {
    let store = Arc::new(MemoryStore::new());
    let clock = clock();
    let svc = service_at(store.clone(), Arc::new(counting_hasher()), clock.clone());
    svc.register(register_request(MEMBER)).await.unwrap();
    let (token, code) = activation_secrets(&store);
    let links = LinkBase::new("https://afiliados.example.ec").unwrap();

    let mut failing = MockMailer::new();
    failing
        .expect_send()
        .times(1)
        .returning(|_| Err(MailError::Transient("421 try again later".into())));
    let dispatcher = OutboxDispatcher::new(
        store.clone(),
        Arc::new(failing),
        keys().1,
        links.clone(),
        clock.clone(),
    );
    let t0 = clock.now();
    let report = dispatcher.run_once(10).await.unwrap();
    assert_eq!(
        (report.sent, report.retried, report.dead_lettered),
        (0, 1, 0)
    );
    let [msg] = store.outbox().try_into().unwrap();
    assert_eq!(msg.status, OutboxStatus::Pending);
    assert_eq!(msg.attempts, 1);
    assert!(msg.next_attempt_at > t0, "{msg:?}");

    // Not due yet: the same dispatcher does nothing (the mock allows no second send).
    let report = dispatcher.run_once(10).await.unwrap();
    assert_eq!(
        (report.sent, report.retried, report.dead_lettered),
        (0, 0, 0)
    );

    // Later, with a working mailer, the same message goes out, once.
    clock.set(msg.next_attempt_at);
    let sent = Arc::new(Mutex::new(Vec::<Mail>::new()));
    let mut working = MockMailer::new();
    let s = sent.clone();
    working.expect_send().times(1).returning(move |m| {
        s.lock().unwrap().push(m.clone());
        Ok(())
    });
    let dispatcher = OutboxDispatcher::new(
        store.clone(),
        Arc::new(working),
        keys().1,
        links,
        clock.clone(),
    );
    let report = dispatcher.run_once(10).await.unwrap();
    assert_eq!(
        (report.sent, report.retried, report.dead_lettered),
        (1, 0, 0)
    );
    let [msg] = store.outbox().try_into().unwrap();
    assert_eq!(msg.status, OutboxStatus::Sent { at: clock.now() });
    assert_eq!(msg.attempts, 2);

    let [mail] = sent.lock().unwrap().clone().try_into().unwrap();
    assert_eq!(mail.message_id, msg.idempotency_key);
    assert_eq!(mail.to.as_str(), "ana.quishpe@example.ec");
    assert!(
        mail.text.contains(&token),
        "the mail carries the activation link"
    );
    assert!(mail.text.contains(code.as_deref().unwrap()), "and the code");
}
