//! Equal work for every ID: a login, a registration, a recovery or an unlock request about an
//! unknown ID does the same store work (loads, one commit, audit events) and gets the same
//! answer as one about a registry member without an account, a pending registration, an
//! active account, a locked one or a suspended one, with wrong proofs — on the memory store,
//! SQLite and PostgreSQL (`DATABASE_URL`). Only the member's own mail differs (an unlock link
//! for a locked account, a reset link where no proof is asked), and it never reaches the
//! requester. Timing is measured by `cargo bench --bench enumeration`.
#![cfg(all(feature = "memory", feature = "sqlite", feature = "postgres"))]
#![allow(clippy::disallowed_methods)]

mod flows;

use std::sync::Mutex;

use afiliado::core::{AccountRecord, AuditEvent};
use afiliado::crypto::{Digest, TokenPurpose};
use afiliado::ports::{NewMessage, OutboxMessage, SourceThrottle, StoreError};
use async_trait::async_trait;
use flows::*;

// ---------------------------------------------------------------------------------------------
// A store that counts what the service asks of it
// ---------------------------------------------------------------------------------------------

/// Store work of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Work {
    loads: u32,
    token_loads: u32,
    commits: u32,
    /// Audit events per commit.
    audit: Vec<usize>,
    /// Outbox messages per commit.
    outbox: Vec<usize>,
    /// Per-source failure counts read and written (the request comes through `for_source`).
    source_reads: u32,
    source_writes: u32,
}

impl Work {
    /// The work a requester could observe (through timing): everything but the member's mail.
    fn shape(&self) -> (u32, u32, u32, bool, u32, u32) {
        (
            self.loads,
            self.token_loads,
            self.commits,
            self.audit.iter().all(|n| *n >= 1),
            self.source_reads,
            self.source_writes,
        )
    }

    fn mails(&self) -> usize {
        self.outbox.iter().sum()
    }
}

struct Counting {
    inner: Arc<dyn AccountStore>,
    throttle: MemoryStore,
    work: Mutex<Work>,
}

impl Counting {
    fn new(inner: Arc<dyn AccountStore>) -> Self {
        Self {
            inner,
            throttle: MemoryStore::new(),
            work: Mutex::new(Work::default()),
        }
    }

    fn take(&self) -> Work {
        std::mem::take(&mut *self.work.lock().unwrap())
    }
}

#[async_trait]
impl AccountStore for Counting {
    async fn load(&self, member: &MemberId) -> Result<Option<AccountRecord>, StoreError> {
        self.work.lock().unwrap().loads += 1;
        self.inner.load(member).await
    }
    async fn load_by_token(
        &self,
        purpose: TokenPurpose,
        digest: &Digest,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.work.lock().unwrap().token_loads += 1;
        self.inner.load_by_token(purpose, digest).await
    }
    async fn commit(
        &self,
        record: &AccountRecord,
        expected_version: u64,
        outbox: Vec<NewMessage>,
        audit: Vec<AuditEvent>,
    ) -> Result<u64, StoreError> {
        {
            let mut w = self.work.lock().unwrap();
            w.commits += 1;
            w.audit.push(audit.len());
            w.outbox.push(outbox.len());
        }
        self.inner
            .commit(record, expected_version, outbox, audit)
            .await
    }
    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        self.inner.claim_due(now, lease, limit).await
    }
    async fn mark_sent(&self, id: u64, now: OffsetDateTime) -> Result<(), StoreError> {
        self.inner.mark_sent(id, now).await
    }
    async fn retry_later(&self, id: u64, at: OffsetDateTime) -> Result<(), StoreError> {
        self.inner.retry_later(id, at).await
    }
    async fn dead_letter(
        &self,
        id: u64,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.inner.dead_letter(id, now, reason).await
    }
    async fn audit_log(&self, member: &MemberId) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.audit_log(member).await
    }
    async fn expired_pending(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        self.inner.expired_pending(now, limit).await
    }
    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.purge_audit(before).await
    }
}

#[async_trait]
impl SourceThrottle for Counting {
    async fn source_failures(
        &self,
        source: &Digest,
        window: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        self.work.lock().unwrap().source_reads += 1;
        self.throttle.source_failures(source, window).await
    }
    async fn add_source_failure(
        &self,
        source: &Digest,
        window: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        self.work.lock().unwrap().source_writes += 1;
        self.throttle.add_source_failure(source, window).await
    }
    async fn purge_sources(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.throttle.purge_sources(before).await
    }
}

// ---------------------------------------------------------------------------------------------
// Members of every class
// ---------------------------------------------------------------------------------------------

/// A valid cédula from a counter.
fn cedula(n: u64) -> &'static str {
    let text = format!("{:02}{}{:06}", 1 + n % 24, (n / 24) % 6, 700_000 + n);
    let mut nine = [0u8; 9];
    for (d, c) in nine.iter_mut().zip(text.bytes()) {
        *d = c - b'0';
    }
    Box::leak(format!("{text}{}", afiliado::identity::check_digit(&nine)).into_boxed_str())
}

fn member(n: u64) -> Member {
    let id = cedula(n);
    Member {
        id,
        email: Box::leak(format!("socio{n}@example.ec").into_boxed_str()),
        mobile: "0991234567",
        facts: facts(
            id,
            "SOCIO DE PRUEBA",
            date!(1980 - 05 - 17),
            &format!("ISS-{n:06}"),
            &["Policía Nacional del Ecuador"],
            &[2001, 2010, 2025],
        ),
    }
}

/// The same ID typed with somebody else's facts, email and answers: every proof is wrong.
fn impostor(m: &Member) -> Member {
    Member {
        id: m.id,
        email: "impostor@example.ec",
        mobile: "0998887766",
        facts: facts(
            m.id,
            "OTRA PERSONA",
            date!(1991 - 02 - 03),
            "ISS-999999",
            &["Ninguna S.A."],
            &[2015, 2016],
        ),
    }
}

const CLASSES: [&str; 6] = [
    "unknown",
    "registry only",
    "pending",
    "active",
    "locked",
    "suspended",
];
const PW: &str = UNIVERSAL_PW;
const WRONG_PW: &str = "Adivino1234";

/// One member per class, set up on `h` (the unknown one is not in the registry).
async fn classes<S: AccountStore + 'static>(h: &Harness<S>, members: &[Member]) {
    let [_, _, pending, active, locked, suspended] = members else {
        unreachable!()
    };
    assert_eq!(
        h.service.register(h.form(pending)).await.unwrap(),
        RegisterOutcome::Submitted
    );
    h.deliver().await;
    for m in [active, locked, suspended] {
        h.activate_member(m, PW).await;
    }
    for _ in 0..h.policy().lockout.threshold {
        h.login(locked.id, WRONG_PW).await;
    }
    assert!(h.record(locked.id).await.state.lock().is_some());
    h.staff(suspended.id, StaffRequest::Suspend).await.unwrap();
    h.deliver().await;
}

/// Runs one request per class; returns (answer, work) per class.
async fn each_class<F, Fut>(
    counting: &Counting,
    members: &[Member],
    request: F,
) -> Vec<(String, Work)>
where
    F: Fn(&'static str, Member) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let mut out = Vec::new();
    for m in members {
        counting.take();
        let answer = request(m.id, impostor(m)).await;
        out.push((answer, counting.take()));
    }
    out
}

fn assert_same_work(flow: &str, results: &[(String, Work)], mail_to_member: &[&str]) {
    let (_, baseline) = &results[3];
    for (class, (_, work)) in CLASSES.iter().zip(results) {
        assert_eq!(
            work.shape(),
            baseline.shape(),
            "{flow}: store work for {class} differs from an active account's: {work:?} vs {baseline:?}"
        );
        assert_eq!(work.commits, 1, "{flow}: {class} commits once");
        if !mail_to_member.contains(class) {
            assert_eq!(work.mails(), 0, "{flow}: {class} queues no mail");
        }
    }
}

fn assert_same_answer(flow: &str, results: &[(String, Work)], except: &[&str]) {
    let (baseline, _) = &results[3];
    for (class, (answer, _)) in CLASSES.iter().zip(results) {
        if !except.contains(class) {
            assert_eq!(answer, baseline, "{flow}: {class} answers differently");
        }
    }
}

async fn equal_work(store: Arc<dyn AccountStore>, policy: Policy, backend: &str) {
    let counting = Arc::new(Counting::new(store));
    let members: Vec<Member> = (0..6).map(|i| member(i * 7 + 1)).collect();
    // Each flow asks about IDs without an account that nothing has touched yet (the first
    // request about an ID creates its record): an unknown one and a registry member.
    let first_contact: Vec<[Member; 2]> = (0..4)
        .map(|f| [member(100 + f * 7), member(200 + f * 7)])
        .collect();
    let mut registry: Vec<&Member> = members[1..].iter().collect();
    registry.extend(first_contact.iter().map(|[_, r]| r));
    let mut policy = policy;
    policy.sources.threshold = 1_000; // this test counts source work, it does not hit the limit
    let h = &Harness::throttled(counting.clone(), Some(counting.clone()), policy, &registry);
    // Every request comes from one client source, as a host's would.
    let service = &h.service.for_source("203.0.113.9");
    classes(h, &members).await;
    let for_flow = |f: usize| -> Vec<Member> {
        let [unknown, registry] = &first_contact[f];
        [unknown, registry]
            .into_iter()
            .chain(&members[2..])
            .map(|m| Member {
                id: m.id,
                email: m.email,
                mobile: m.mobile,
                facts: m.facts.clone(),
            })
            .collect()
    };
    let reveal = h.policy().lockout.reveal_lock_state;
    let locked_classes: &[&str] = if reveal {
        &["locked", "suspended"]
    } else {
        &[]
    };

    // Two wrong logins each (below every preset's threshold: the lock warning an account
    // gets at the threshold is the member's own mail, checked in `an_unknown_id_locks_like_an_account`).
    for round in 1..=2 {
        let login = each_class(&counting, &for_flow(0), |id, _| async {
            format!("{:?}", service.login(id, h.pw(WRONG_PW)).await)
        })
        .await;
        let flow = format!("{backend} login #{round}");
        assert_same_work(&flow, &login, &[]);
        assert_same_answer(&flow, &login, locked_classes);
    }

    // Past the day's budget of failed forms too: refused, still one commit each.
    let forms = h.policy().registration.max_failed_proofs_per_day + 2;
    for round in 1..=forms {
        let register = each_class(&counting, &for_flow(1), |_, wrong| async move {
            format!("{:?}", service.register(h.form(&wrong)).await)
        })
        .await;
        let flow = format!("{backend} registration #{round}");
        assert_same_work(&flow, &register, &[]);
        assert_same_answer(&flow, &register, &[]);
        assert!(register[3].0.contains("ChecksFailed"), "{register:?}");
    }

    if h.policy().unlock.link_ttl.is_some() {
        for round in 1..=2 {
            let unlock = each_class(&counting, &for_flow(3), |id, _| async move {
                format!("{:?}", service.request_unlock(id, Some(HUMAN)).await)
            })
            .await;
            let flow = format!("{backend} unlock request #{round}");
            let link = if round == 1 { &["locked"][..] } else { &[] };
            assert_same_work(&flow, &unlock, link);
            assert_same_answer(&flow, &unlock, &[]);
            if round == 1 {
                assert_eq!(unlock[4].1.mails(), 1, "the locked member gets the link");
            }
        }
    }

    // Again and again: past the recovery budget (IESS), and while a reset link is live
    // (where no proof is asked, the first request mails the member).
    let knowledge = !h.policy().recovery.proofs.is_empty();
    let attempts = h.policy().recovery.attempt_budget.unwrap_or(1) + 2;
    for round in 1..=attempts {
        let recovery = each_class(&counting, &for_flow(2), |_, wrong| async move {
            format!("{:?}", service.start_recovery(h.recovery(&wrong)).await)
        })
        .await;
        // The member's own mail: the reset link where no proof is asked (first request), and
        // the lock warning when the failure that spends the budget locks the account.
        let budget_spent = h.policy().recovery.attempt_budget == Some(round);
        let reset_mail: &[&str] = if (!knowledge && round == 1) || budget_spent {
            &["active", "locked"]
        } else {
            &[]
        };
        let flow = format!("{backend} recovery #{round}");
        assert_same_work(&flow, &recovery, reset_mail);
        assert_same_answer(&flow, &recovery, &[]);
    }
}

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

async fn on_every_backend(policy: fn() -> Policy) {
    equal_work(Arc::new(MemoryStore::new()), policy(), "memory").await;
    let (_dir, store) = sqlite_store().await;
    equal_work(store, policy(), "sqlite").await;
    if let Some(store) = postgres_store("equal").await {
        equal_work(store, policy(), "postgres").await;
    }
}

#[tokio::test]
async fn isspol_every_id_costs_the_same_store_work() {
    on_every_backend(Policy::isspol).await;
}

#[tokio::test]
async fn iess_every_id_costs_the_same_store_work() {
    on_every_backend(Policy::iess).await;
}

#[tokio::test]
async fn recommended_every_id_costs_the_same_store_work() {
    on_every_backend(Policy::recommended).await;
}

/// Under a preset that tells the member the account is locked (ISSPOL), an unknown ID locks
/// after the same failures and for the same time as an account, so locking reveals nothing.
#[tokio::test]
async fn an_unknown_id_locks_like_an_account() {
    let members: Vec<Member> = (0..6).map(|i| member(i * 7 + 1)).collect();
    for policy in [Policy::isspol(), Policy::iess(), Policy::recommended()] {
        let registry: Vec<&Member> = members[1..].iter().collect();
        let h = Harness::new(policy, &registry);
        classes(&h, &members).await;
        let (unknown, pending, active) = (&members[0], &members[2], &members[3]);
        let rounds = h.policy().lockout.threshold + 2;
        for round in 0..rounds {
            let a = h.login(active.id, WRONG_PW).await;
            let u = h.login(unknown.id, WRONG_PW).await;
            let p = h.login(pending.id, WRONG_PW).await;
            assert_eq!(u, a, "{}: round {round}", h.policy().name);
            assert_eq!(p, a, "{}: round {round} (pending)", h.policy().name);
            h.advance(Duration::seconds(30));
        }
        // And the lock lifts (or not) at the same time.
        h.advance(Duration::hours(2));
        let a = h.login(active.id, WRONG_PW).await;
        let u = h.login(unknown.id, WRONG_PW).await;
        assert_eq!(u, a, "{}: after the lock's duration", h.policy().name);
    }
}

/// A malformed recovery form is refused with a field error and never mails a link, even under
/// a policy that asks no proof (found by a black-box review: the link used to go out).
#[tokio::test]
async fn a_malformed_recovery_form_never_mails_a_link() {
    for policy in [Policy::recommended(), Policy::isspol(), Policy::iess()] {
        let name = policy.name.clone();
        let ana = ana();
        let h = Harness::new(policy, &[&ana]);
        h.activate_member(&ana, UNIVERSAL_PW).await;
        let mut form = h.recovery(&ana);
        form.answers
            .security
            .push(("extra".to_owned(), "respuesta".to_owned()));
        let answer = h.service.start_recovery(form).await;
        assert!(
            matches!(answer, Err(ServiceError::InvalidInput { .. })),
            "{name}: {answer:?}"
        );
        assert_eq!(h.deliver().await.len(), 0, "{name}: no reset link");
        assert!(
            !matches!(
                h.record(ana.id).await.state,
                afiliado::core::AccountState::Resetting { .. }
            ),
            "{name}"
        );
    }
}

/// Records that requests about IDs without an account leave behind are purged by retention
/// once they hold nothing that could change a later answer; records still holding a failure
/// in its window, a lock, today's counts or a recovery failure stay. On every backend.
async fn idle_records_are_purged(store: Arc<dyn AccountStore>, backend: &str) {
    use afiliado::retention::purge;
    let policy = Policy::isspol();
    let members: Vec<Member> = (0..4).map(|i| member(300 + i * 7)).collect();
    let registry: Vec<&Member> = members[2..].iter().collect();
    let h = Harness::on(Arc::new(Counting::new(store.clone())), policy, &registry);
    let (once, locked, registry_form, active) =
        (&members[0], &members[1], &members[2], &members[3]);
    h.activate_member(active, PW).await;
    h.login(once.id, WRONG_PW).await; // one failure, 20-minute window
    for _ in 0..h.policy().lockout.threshold {
        h.login(locked.id, WRONG_PW).await; // a shadow lock (20 minutes), lockouts = 1
    }
    let mut wrong = h.form(&impostor(registry_form));
    wrong.member_id = registry_form.id.to_owned();
    h.service.register(wrong).await.unwrap(); // a registration failure today
    let exists = |id: &'static str| {
        let store = store.clone();
        async move { store.load(&id.parse().unwrap()).await.unwrap().is_some() }
    };

    // Right away nothing can go: every record still holds something.
    let report = purge(store.as_ref(), h.policy(), h.now()).await.unwrap();
    assert_eq!(report.idle_records_deleted, 0, "{backend}");
    // After the window and the lock, but the same day: the lone failure has lapsed.
    h.advance(Duration::minutes(30));
    let report = purge(store.as_ref(), h.policy(), h.now()).await.unwrap();
    assert_eq!(report.idle_records_deleted, 1, "{backend}");
    assert!(!exists(once.id).await, "{backend}");
    assert!(exists(locked.id).await, "{backend}: a lockout never lapses");
    assert!(exists(registry_form.id).await, "{backend}: today's count");
    // The next day the registration count has lapsed too; the lockout count never does,
    // as for an account, and accounts are never touched.
    h.advance(Duration::days(1));
    let report = purge(store.as_ref(), h.policy(), h.now()).await.unwrap();
    assert_eq!(report.idle_records_deleted, 1, "{backend}");
    assert!(!exists(registry_form.id).await, "{backend}");
    assert!(exists(locked.id).await, "{backend}");
    assert!(exists(active.id).await, "{backend}");
    // A purged ID answers as before: a fresh record, the same as any unknown ID.
    assert_eq!(h.login(once.id, WRONG_PW).await, LoginOutcome::Failed);
}

#[tokio::test]
async fn idle_records_of_ids_without_an_account_are_purged_on_every_backend() {
    idle_records_are_purged(Arc::new(MemoryStore::new()), "memory").await;
    let (_dir, store) = sqlite_store().await;
    idle_records_are_purged(store, "sqlite").await;
    if let Some(store) = postgres_store("idle").await {
        idle_records_are_purged(store, "postgres").await;
    }
}
