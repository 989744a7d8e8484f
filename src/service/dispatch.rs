//! The outbox dispatcher: claims due messages, opens their sealed secrets, renders the mail
//! and hands it to the [`Mailer`]; transient failures are retried with exponential backoff
//! and jitter, permanent ones (and messages that ran out of attempts) are dead-lettered.
//!
//! Claims are leases, so several dispatchers may run against one store: a message is sent by
//! one of them at a time, and a crashed dispatcher's claims become due again when the lease
//! ends (at-least-once delivery; the idempotency key is the mail's `message_id`).
//!
//! A claimed batch is delivered concurrently (at most [`OutboxDispatcher::concurrency`] mails
//! in flight, 8 by default), and each hand-off to the mailer is bounded by
//! [`OutboxDispatcher::delivery_timeout`] (30 s by default): a mail server that does not
//! answer costs one slot for the timeout, the message is retried later like any transient
//! failure, and the rest of the batch keeps moving.
//!
//! Host-configured durations never make the dispatcher panic: they are clamped to
//! `0..=`[`OutboxDispatcher::MAX_DURATION`] and every date computation saturates.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use rand::Rng;
use time::{Duration, OffsetDateTime};

use crate::notices::{LinkBase, render};
use crate::ports::{AccountStore, Clock, MailError, Mailer, OutboxMessage};
use crate::seal::{SealError, SealKeys};

use super::ServiceError;

/// What one [`OutboxDispatcher::run_once`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchReport {
    /// Mails handed to the mailer successfully.
    pub sent: usize,
    /// Messages put back for a later attempt (transient failures and timeouts).
    pub retried: usize,
    /// Messages given up on.
    pub dead_lettered: usize,
}

/// Handle of a dispatcher running in the background ([`OutboxDispatcher::spawn`]).
#[derive(Debug)]
pub struct DispatcherHandle {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DispatcherHandle {
    /// Asks the loop to stop after the batch in progress and waits for it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Drains the outbox through a [`Mailer`].
///
/// ```
/// use std::sync::Arc;
/// use afiliado::memory::{MemoryMailer, MemoryStore};
/// use afiliado::notices::LinkBase;
/// use afiliado::ports::SystemClock;
/// use afiliado::seal::SealKey;
/// use afiliado::service::OutboxDispatcher;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dispatcher = OutboxDispatcher::new(
///     Arc::new(MemoryStore::new()),
///     Arc::new(MemoryMailer::new()),
///     SealKey::generate(&mut rand::rng()),
///     LinkBase::new("https://afiliados.example.ec")?,
///     Arc::new(SystemClock),
/// )
/// .delivery_timeout(std::time::Duration::from_secs(10))
/// .concurrency(4)
/// .lease(time::Duration::minutes(10));
/// # let _ = dispatcher;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct OutboxDispatcher {
    store: Arc<dyn AccountStore>,
    mailer: Arc<dyn Mailer>,
    seal_keys: SealKeys,
    links: LinkBase,
    clock: Arc<dyn Clock>,
    max_attempts: u32,
    lease: Duration,
    base_backoff: Duration,
    max_backoff: Duration,
    delivery_timeout: std::time::Duration,
    concurrency: usize,
}

impl std::fmt::Debug for dyn Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer")
    }
}

/// What happened to one claimed message.
enum Outcome {
    Sent,
    Retried,
    DeadLettered,
}

/// A delivery in flight.
type Delivery<'a> = Pin<Box<dyn Future<Output = Result<Outcome, ServiceError>> + Send + 'a>>;

/// The output of the first delivery in `set` to finish (removed from the set), or `None`
/// when the set is empty. Deliveries are polled in the order they were started.
async fn next_finished<'a>(set: &mut Vec<Delivery<'a>>) -> Option<Result<Outcome, ServiceError>> {
    std::future::poll_fn(|cx| {
        if set.is_empty() {
            return Poll::Ready(None);
        }
        let mut i = 0;
        while let Some(delivery) = set.get_mut(i) {
            if let Poll::Ready(out) = delivery.as_mut().poll(cx) {
                // `i` is in bounds: `get_mut(i)` just found it. `remove` (not `swap_remove`)
                // keeps the claim order, so mails that complete at once go out in order.
                drop(set.remove(i));
                return Poll::Ready(Some(out));
            }
            i = i.saturating_add(1);
        }
        Poll::Pending
    })
    .await
}

impl OutboxDispatcher {
    /// The longest lease or backoff the dispatcher uses (3,660 days, about ten years);
    /// longer values are clamped to it, negative ones to zero.
    pub const MAX_DURATION: Duration = Duration::days(3_660);

    /// A dispatcher with 8 attempts, a 5-minute lease, backoff from 30 s up to 1 h, a 30 s
    /// delivery timeout and up to 8 deliveries in flight.
    pub fn new(
        store: Arc<dyn AccountStore>,
        mailer: Arc<dyn Mailer>,
        seal_keys: impl Into<SealKeys>,
        links: LinkBase,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            mailer,
            seal_keys: seal_keys.into(),
            links,
            clock,
            max_attempts: 8,
            lease: Duration::minutes(5),
            base_backoff: Duration::seconds(30),
            max_backoff: Duration::hours(1),
            delivery_timeout: std::time::Duration::from_secs(30),
            concurrency: 8,
        }
    }

    /// Attempts before a message is dead-lettered (at least 1). A delivery that times out
    /// counts as an attempt.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// How long a claim lasts before another dispatcher may take the message (clamped to
    /// `0..=`[`MAX_DURATION`](Self::MAX_DURATION)).
    ///
    /// Keep it longer than a batch can take, about `limit / concurrency` times the
    /// [delivery timeout](Self::delivery_timeout): a claim that ends while its mail is
    /// still being handed over lets another dispatcher send the mail a second time.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Backoff after the first failure; it doubles per attempt up to `max` (both clamped to
    /// `0..=`[`MAX_DURATION`](Self::MAX_DURATION)), plus up to 25 % jitter.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_backoff = base;
        self.max_backoff = max;
        self
    }

    /// The longest one mail may take to be handed to the [`Mailer`] (30 s by default). A
    /// delivery that takes longer is abandoned and treated as a transient failure: the
    /// message is retried after the backoff (or dead-lettered once it has used its
    /// attempts).
    ///
    /// An abandoned delivery may still have reached the mail server; the mail's
    /// `message_id` lets receivers drop the duplicate. A zero timeout abandons every
    /// delivery that does not complete at once.
    pub fn delivery_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// How many mails of one batch are handed to the [`Mailer`] at the same time (at least
    /// 1; 8 by default).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    fn clamp(d: Duration) -> Duration {
        d.clamp(Duration::ZERO, Self::MAX_DURATION)
    }

    /// The lease passed to the store: clamped, and zero if `now + lease` would leave the
    /// date range.
    fn lease_from(&self, now: OffsetDateTime) -> Duration {
        let lease = Self::clamp(self.lease);
        if now.checked_add(lease).is_some() {
            lease
        } else {
            Duration::ZERO
        }
    }

    /// The delay before attempt `attempts + 1`: exponential, capped, plus up to 25 % jitter.
    fn delay(&self, attempts: u32) -> Duration {
        let max = Self::clamp(self.max_backoff);
        let exp = attempts.saturating_sub(1).min(30);
        let factor = 1i32.checked_shl(exp).unwrap_or(i32::MAX);
        let base = Self::clamp(self.base_backoff)
            .checked_mul(factor)
            .unwrap_or(max)
            .min(max);
        let quarter = base.whole_milliseconds() / 4;
        #[allow(clippy::disallowed_methods)] // adapter: jitter from the thread RNG
        let jitter = if quarter > 0 {
            let q = i64::try_from(quarter).unwrap_or(i64::MAX);
            rand::rng().random_range(0..=q)
        } else {
            0
        };
        base.saturating_add(Duration::milliseconds(jitter))
    }

    /// Runs [`run_once`](Self::run_once) in a background task: again at once while batches
    /// come back full, otherwise after `idle`. Store or mailer errors are retried after
    /// `idle` too (the messages stay queued). Requires a tokio runtime with its time driver.
    pub fn spawn(self: Arc<Self>, batch: usize, idle: std::time::Duration) -> DispatcherHandle {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let busy = match self.run_once(batch).await {
                    Ok(r) => {
                        r.sent
                            .saturating_add(r.retried)
                            .saturating_add(r.dead_lettered)
                            >= batch
                    }
                    Err(_) => false,
                };
                if *stopped.borrow() {
                    return;
                }
                if !busy {
                    tokio::select! {
                        _ = tokio::time::sleep(idle) => {}
                        _ = stopped.changed() => return,
                    }
                }
            }
        });
        DispatcherHandle { stop, task }
    }

    /// Claims up to `limit` due messages and tries each once, up to
    /// [`concurrency`](Self::concurrency) at a time, each bounded by the
    /// [delivery timeout](Self::delivery_timeout).
    ///
    /// Mails are handed over in claim order, except that a slow delivery lets later ones
    /// overtake it.
    ///
    /// On a store error no further message of the batch is started; those already in flight
    /// finish, and the first error is returned. Messages left claimed become due again when
    /// their lease ends.
    ///
    /// Must run inside a tokio runtime with its time driver enabled (`Builder::enable_all`,
    /// or `#[tokio::main]`); outside any tokio runtime it returns
    /// [`ServiceError::Internal`].
    pub async fn run_once(&self, limit: usize) -> Result<DispatchReport, ServiceError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ServiceError::Internal(
                "the outbox dispatcher needs a tokio runtime",
            ));
        }
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_due(now, self.lease_from(now), limit)
            .await?;
        let mut report = DispatchReport::default();
        let mut queued = claimed.into_iter();
        let mut in_flight: Vec<Delivery<'_>> = Vec::new();
        let mut first_error = None;
        loop {
            while first_error.is_none() && in_flight.len() < self.concurrency {
                let Some(msg) = queued.next() else { break };
                in_flight.push(Box::pin(self.deliver(msg, now)));
            }
            let Some(done) = next_finished(&mut in_flight).await else {
                break;
            };
            match done {
                Ok(Outcome::Sent) => report.sent = report.sent.saturating_add(1),
                Ok(Outcome::Retried) => report.retried = report.retried.saturating_add(1),
                Ok(Outcome::DeadLettered) => {
                    report.dead_lettered = report.dead_lettered.saturating_add(1);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Tries one claimed message once and records the outcome in the store.
    async fn deliver(
        &self,
        msg: OutboxMessage,
        now: OffsetDateTime,
    ) -> Result<Outcome, ServiceError> {
        let aad = msg.idempotency_key.as_bytes();
        let secrets = match self.seal_keys.open_optional(&msg.sealed, aad) {
            Ok(secrets) => secrets,
            // Sealed under a key this dispatcher was not given (a rotation that dropped the
            // old key too early): the message waits, pending, for a dispatcher that has it,
            // instead of being lost. It is tried again after the longest backoff.
            Err(SealError::UnknownKey { .. }) => {
                let at = now.checked_add(self.max_backoff).unwrap_or(now);
                self.store.retry_later(msg.id, at).await?;
                return Ok(Outcome::Retried);
            }
            Err(e) => {
                let reason = format!("sealed payload cannot be opened: {e}");
                self.store.dead_letter(msg.id, now, &reason).await?;
                return Ok(Outcome::DeadLettered);
            }
        };
        let mail = match render(
            &msg.notice,
            secrets.as_ref(),
            &self.links,
            &msg.idempotency_key,
        ) {
            Ok(m) => m,
            Err(e) => {
                self.store
                    .dead_letter(
                        msg.id,
                        now,
                        &crate::identity::redact_personal_data(&e.to_string()),
                    )
                    .await?;
                return Ok(Outcome::DeadLettered);
            }
        };
        drop(secrets);
        let sent = tokio::time::timeout(self.delivery_timeout, self.mailer.send(&mail))
            .await
            .unwrap_or_else(|_| Err(MailError::Transient("delivery timed out".to_owned())));
        drop(mail);
        match sent {
            Ok(()) => {
                self.store.mark_sent(msg.id, now).await?;
                Ok(Outcome::Sent)
            }
            Err(MailError::Transient(reason)) if msg.attempts >= self.max_attempts => {
                self.store
                    .dead_letter(msg.id, now, &crate::identity::redact_personal_data(&reason))
                    .await?;
                Ok(Outcome::DeadLettered)
            }
            Err(MailError::Transient(_)) => {
                let at = now.saturating_add(self.delay(msg.attempts));
                self.store.retry_later(msg.id, at).await?;
                Ok(Outcome::Retried)
            }
            Err(e) => {
                self.store
                    .dead_letter(
                        msg.id,
                        now,
                        &crate::identity::redact_personal_data(&e.to_string()),
                    )
                    .await?;
                Ok(Outcome::DeadLettered)
            }
        }
    }
}
