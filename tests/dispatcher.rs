//! The outbox dispatcher as a background task, and two dispatchers sharing one outbox.
#![cfg(all(feature = "memory", feature = "service"))]
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::Duration;

use afiliado::MemberId;
use afiliado::core::{Locale, Notice, NoticeKind};
use afiliado::memory::{MemoryMailer, MemoryStore};
use afiliado::notices::LinkBase;
use afiliado::ports::{
    AccountStore, Mail, MailError, Mailer, ManualClock, NewMessage, OutboxStatus,
};
use afiliado::seal::SealKey;
use afiliado::service::OutboxDispatcher;
use rand::SeedableRng;
use time::macros::datetime;

const T0: time::OffsetDateTime = datetime!(2026-11-22 19:00 -5);

async fn queue(store: &MemoryStore, n: usize) {
    queue_to(store, &vec!["ana@example.ec"; n]).await;
}

/// Queues one message per recipient, in order (`m0`, `m1`, ...).
async fn queue_to(store: &MemoryStore, recipients: &[&str]) {
    let member: MemberId = "1710034065".parse().unwrap();
    let msgs = recipients
        .iter()
        .enumerate()
        .map(|(i, to)| {
            let notice = Notice::new(
                to.parse().unwrap(),
                Locale::EsEc,
                NoticeKind::PasswordChanged,
            );
            NewMessage::new(format!("m{i}"), member.clone(), notice, Vec::new(), T0)
        })
        .collect();
    let mut record = afiliado::core::AccountRecord::new(member);
    record.version = 0;
    store.commit(&record, 0, msgs, vec![]).await.unwrap();
}

fn dispatcher(store: Arc<MemoryStore>, mailer: Arc<MemoryMailer>) -> Arc<OutboxDispatcher> {
    let key = SealKey::generate(&mut rand::rngs::StdRng::seed_from_u64(1));
    Arc::new(OutboxDispatcher::new(
        store,
        mailer,
        key,
        LinkBase::new("https://afiliados.example.ec").unwrap(),
        Arc::new(ManualClock::new(T0)),
    ))
}

async fn wait_for(mailer: &MemoryMailer, n: usize) {
    for _ in 0..500 {
        if mailer.sent().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("only {} of {n} mails were delivered", mailer.sent().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_dispatcher_delivers_and_shuts_down() {
    let store = Arc::new(MemoryStore::new());
    let mailer = Arc::new(MemoryMailer::default());
    queue(&store, 25).await;
    let handle = dispatcher(store.clone(), mailer.clone()).spawn(10, Duration::from_millis(5));
    wait_for(&mailer, 25).await;
    handle.shutdown().await;
    assert_eq!(mailer.sent().len(), 25);
    assert!(
        store
            .outbox()
            .iter()
            .all(|m| matches!(m.status, OutboxStatus::Sent { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_outbox_send_each_message_once() {
    let store = Arc::new(MemoryStore::new());
    let mailer = Arc::new(MemoryMailer::default());
    queue(&store, 200).await;
    let a = dispatcher(store.clone(), mailer.clone()).spawn(7, Duration::from_millis(2));
    let b = dispatcher(store.clone(), mailer.clone()).spawn(7, Duration::from_millis(2));
    wait_for(&mailer, 200).await;
    a.shutdown().await;
    b.shutdown().await;
    let mut ids: Vec<_> = mailer.sent().into_iter().map(|m| m.message_id).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(
        (before, ids.len()),
        (200, 200),
        "every message sent exactly once"
    );
}

/// A host may configure absurd durations and attempt counts: the dispatcher neither panics
/// nor stops delivering.
#[tokio::test]
async fn absurd_durations_and_attempt_counts_neither_panic_nor_stall() {
    use time::Duration as D;
    for (lease, base, max) in [
        (D::minutes(5), D::MAX, D::MAX),
        (D::minutes(5), D::MIN, D::MIN),
        (D::MAX, D::MAX, D::MAX),
        (D::MIN, D::seconds(30), D::MAX),
        (D::MAX, D::MIN, D::MAX),
    ] {
        let store = Arc::new(MemoryStore::new());
        let mailer = Arc::new(MemoryMailer::default());
        queue(&store, 2).await;
        let d = dispatcher(store.clone(), mailer.clone());
        let d = Arc::try_unwrap(d)
            .unwrap()
            .lease(lease)
            .backoff(base, max)
            .max_attempts(u32::MAX)
            .delivery_timeout(Duration::MAX)
            .concurrency(usize::MAX);
        mailer.fail_next(1);
        let report = d
            .run_once(usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("lease {lease}, backoff {base}..{max}: {e}"));
        assert_eq!(
            (report.sent, report.retried, report.dead_lettered),
            (1, 1, 0),
            "lease {lease}, backoff {base}..{max}"
        );
        let retried = store
            .outbox()
            .into_iter()
            .find(|m| matches!(m.status, OutboxStatus::Pending))
            .expect("the failed message is pending again");
        assert!(retried.next_attempt_at >= T0);
    }
}

/// A mailer that never answers for one recipient and answers at once for the others; it
/// counts how many sends are in flight at the same time.
#[derive(Default)]
struct HangingMailer {
    inner: MemoryMailer,
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Mailer for HangingMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.max_in_flight.fetch_max(now, SeqCst);
        let _guard = InFlight(&self.in_flight);
        if mail.to.as_str().starts_with("hung") {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.inner.send(mail).await
    }
}

fn hanging_dispatcher(
    store: Arc<MemoryStore>,
    mailer: Arc<HangingMailer>,
    clock: Arc<ManualClock>,
) -> OutboxDispatcher {
    let key = SealKey::generate(&mut rand::rngs::StdRng::seed_from_u64(1));
    OutboxDispatcher::new(
        store,
        mailer,
        key,
        LinkBase::new("https://afiliados.example.ec").unwrap(),
        clock,
    )
}

const TIMEOUT: Duration = Duration::from_millis(500);

/// One mail server that never answers costs one delivery slot for the timeout: the other
/// messages of the batch are delivered at once, the hung one is put back for a later attempt
/// (not lost, not dead-lettered), and `run_once` returns after about the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_delivery_does_not_hold_up_the_batch() {
    let store = Arc::new(MemoryStore::new());
    let mailer = Arc::new(HangingMailer::default());
    queue_to(
        &store,
        &[
            "hung@example.ec",
            "ana@example.ec",
            "luis@example.ec",
            "rosa@example.ec",
        ],
    )
    .await;
    let d = hanging_dispatcher(
        store.clone(),
        mailer.clone(),
        Arc::new(ManualClock::new(T0)),
    )
    .delivery_timeout(TIMEOUT);
    let started = std::time::Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(5), d.run_once(10))
        .await
        .expect("run_once returned")
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= TIMEOUT && took < 2 * TIMEOUT,
        "run_once took {took:?}"
    );
    assert_eq!(
        (report.sent, report.retried, report.dead_lettered),
        (3, 1, 0)
    );
    let sent: Vec<_> = mailer
        .inner
        .sent()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(sent, ["m1", "m2", "m3"], "delivered in claim order");
    let outbox = store.outbox();
    let hung = outbox.iter().find(|m| m.idempotency_key == "m0").unwrap();
    assert!(
        matches!(hung.status, OutboxStatus::Pending),
        "{:?}",
        hung.status
    );
    assert_eq!(hung.attempts, 1);
    assert!(hung.next_attempt_at > T0, "retried after a backoff");
    assert!(
        outbox
            .iter()
            .filter(|m| m.idempotency_key != "m0")
            .all(|m| matches!(m.status, OutboxStatus::Sent { .. }))
    );
}

/// Deliveries of a batch run concurrently but never more than the configured limit; with
/// every slot hung the rest wait for the timeout, and a message that keeps timing out is
/// dead-lettered after its attempts instead of being retried forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded_and_a_message_that_keeps_hanging_is_dead_lettered() {
    let store = Arc::new(MemoryStore::new());
    let mailer = Arc::new(HangingMailer::default());
    let mut recipients = vec!["hung1@example.ec", "hung2@example.ec"];
    recipients.extend(["ana@example.ec"; 8]);
    queue_to(&store, &recipients).await;
    let clock = Arc::new(ManualClock::new(T0));
    let d = hanging_dispatcher(store.clone(), mailer.clone(), clock.clone())
        .delivery_timeout(TIMEOUT)
        .concurrency(3)
        .max_attempts(2)
        .backoff(time::Duration::seconds(10), time::Duration::seconds(10));
    let started = std::time::Instant::now();
    let report = d.run_once(100).await.unwrap();
    let took = started.elapsed();
    assert_eq!(
        (report.sent, report.retried, report.dead_lettered),
        (8, 2, 0)
    );
    assert!(
        took >= TIMEOUT && took < 2 * TIMEOUT,
        "run_once took {took:?}"
    );
    let max = mailer
        .max_in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(max, 3, "at most `concurrency` deliveries in flight");
    assert_eq!(
        mailer.in_flight.load(std::sync::atomic::Ordering::SeqCst),
        0
    );

    // Not due yet: nothing claimed.
    let report = d.run_once(100).await.unwrap();
    assert_eq!(
        (report.sent, report.retried, report.dead_lettered),
        (0, 0, 0)
    );
    // Second and last attempt: both time out again and are dead-lettered.
    clock.advance(time::Duration::seconds(13));
    let report = d.run_once(100).await.unwrap();
    assert_eq!(
        (report.sent, report.retried, report.dead_lettered),
        (0, 0, 2)
    );
    for m in store.outbox().iter().take(2) {
        match &m.status {
            OutboxStatus::DeadLetter { reason, .. } => assert!(reason.contains("timed out")),
            other => panic!("{other:?}"),
        }
    }
}
