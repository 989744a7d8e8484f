//! The outbox dispatcher: claims due messages, opens their sealed secrets, renders the mail
//! and hands it to the [`Mailer`]; transient failures are retried with exponential backoff
//! and jitter, permanent ones (and messages that ran out of attempts) are dead-lettered.
//!
//! Claims are leases, so several dispatchers may run against one store: a message is sent by
//! one of them at a time, and a crashed dispatcher's claims become due again when the lease
//! ends (at-least-once delivery; the idempotency key is the mail's `message_id`).

use std::sync::Arc;

use rand::Rng;
use time::Duration;

use crate::notices::{LinkBase, render};
use crate::ports::{AccountStore, Clock, MailError, Mailer};
use crate::seal::SealKey;

use super::ServiceError;

/// What one [`OutboxDispatcher::run_once`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchReport {
    /// Mails handed to the mailer successfully.
    pub sent: usize,
    /// Messages put back for a later attempt.
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
#[derive(Debug)]
pub struct OutboxDispatcher {
    store: Arc<dyn AccountStore>,
    mailer: Arc<dyn Mailer>,
    seal_key: SealKey,
    links: LinkBase,
    clock: Arc<dyn Clock>,
    max_attempts: u32,
    lease: Duration,
    base_backoff: Duration,
    max_backoff: Duration,
}

impl std::fmt::Debug for dyn Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer")
    }
}

impl OutboxDispatcher {
    /// A dispatcher with 8 attempts, a 5-minute lease and backoff from 30 s up to 1 h.
    pub fn new(
        store: Arc<dyn AccountStore>,
        mailer: Arc<dyn Mailer>,
        seal_key: SealKey,
        links: LinkBase,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            mailer,
            seal_key,
            links,
            clock,
            max_attempts: 8,
            lease: Duration::minutes(5),
            base_backoff: Duration::seconds(30),
            max_backoff: Duration::hours(1),
        }
    }

    /// Attempts before a message is dead-lettered (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// How long a claim lasts before another dispatcher may take the message.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Backoff after the first failure; it doubles per attempt up to `max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_backoff = base;
        self.max_backoff = max;
        self
    }

    /// The delay before attempt `attempts + 1`: exponential, capped, plus up to 25 % jitter.
    fn delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let factor = 1i32.checked_shl(exp).unwrap_or(i32::MAX);
        let base = self
            .base_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff);
        let base = base.min(self.max_backoff);
        let quarter = base.whole_milliseconds() / 4;
        #[allow(clippy::disallowed_methods)] // adapter: jitter from the thread RNG
        let jitter = if quarter > 0 {
            let q = i64::try_from(quarter).unwrap_or(i64::MAX);
            rand::rng().random_range(0..=q)
        } else {
            0
        };
        base + Duration::milliseconds(jitter)
    }

    /// Runs [`run_once`](Self::run_once) in a background task: again at once while batches
    /// come back full, otherwise after `idle`. Store or mailer errors are retried after
    /// `idle` too (the messages stay queued). Requires a tokio runtime.
    pub fn spawn(self: Arc<Self>, batch: usize, idle: std::time::Duration) -> DispatcherHandle {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let busy = match self.run_once(batch).await {
                    Ok(r) => r.sent + r.retried + r.dead_lettered >= batch,
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

    /// Claims up to `limit` due messages and tries each once.
    pub async fn run_once(&self, limit: usize) -> Result<DispatchReport, ServiceError> {
        let now = self.clock.now();
        let mut report = DispatchReport::default();
        for msg in self.store.claim_due(now, self.lease, limit).await? {
            let aad = msg.idempotency_key.as_bytes();
            let secrets = match self.seal_key.open_optional(&msg.sealed, aad) {
                Ok(s) => s,
                Err(_) => {
                    self.store
                        .dead_letter(msg.id, now, "sealed payload cannot be opened")
                        .await?;
                    report.dead_lettered += 1;
                    continue;
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
                    self.store.dead_letter(msg.id, now, &e.to_string()).await?;
                    report.dead_lettered += 1;
                    continue;
                }
            };
            match self.mailer.send(&mail).await {
                Ok(()) => {
                    self.store.mark_sent(msg.id, now).await?;
                    report.sent += 1;
                }
                Err(MailError::Transient(reason)) if msg.attempts >= self.max_attempts => {
                    self.store.dead_letter(msg.id, now, &reason).await?;
                    report.dead_lettered += 1;
                }
                Err(MailError::Transient(_)) => {
                    self.store
                        .retry_later(msg.id, now + self.delay(msg.attempts))
                        .await?;
                    report.retried += 1;
                }
                Err(e) => {
                    self.store.dead_letter(msg.id, now, &e.to_string()).await?;
                    report.dead_lettered += 1;
                }
            }
        }
        Ok(report)
    }
}
