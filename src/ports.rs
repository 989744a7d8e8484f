//! Ports: the traits the service layer talks to, and the small types that cross them.
//!
//! * [`Clock`] — the only source of `now` ([`SystemClock`] in production, [`ManualClock`] in
//!   tests). A plain sync trait.
//! * [`AccountStore`] — account records, the outbox and the audit log, committed together
//!   (the storage contract).
//! * [`MemberDirectory`] — the institution's member registry.
//! * [`Mailer`] — delivers one rendered [`Mail`]; called by the outbox dispatcher, never inline
//!   in a request.
//! * [`HumanCheck`] — a CAPTCHA or similar ([`AlwaysPass`] for tests).
//!
//! Every async port is an [`#[async_trait]`](macro@async_trait) trait and object safe: the service holds them as
//! `Arc<dyn AccountStore>`, `Arc<dyn Mailer>` and so on. Adapters live in feature-gated
//! modules (`memory` by default).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::core::{AccountRecord, AuditEvent, Notice};
use crate::crypto::{Digest, TokenPurpose};
use crate::identity::{Email, MemberId};

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------

/// The source of the current instant. The service reads it once per command.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> OffsetDateTime;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}

/// The operating system's clock, in UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one sanctioned wall-clock read of the crate: `clippy.toml` bans
    // `OffsetDateTime::now_utc` everywhere else so that time stays an argument.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to: for tests and simulations.
///
/// Share it as `Arc<ManualClock>` (which is itself a [`Clock`]) to move time under a running
/// service.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A clock stopped at `t`.
    pub fn new(t: OffsetDateTime) -> Self {
        Self { now: Mutex::new(t) }
    }

    /// Moves the clock to `t` (backwards too).
    pub fn set(&self, t: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = t;
    }

    /// Moves the clock by `by` (negative moves it back). An advance that would leave the
    /// representable date range leaves the clock unchanged.
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = now.checked_add(by) {
            *now = t;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// ---------------------------------------------------------------------------------------------
// Store errors
// ---------------------------------------------------------------------------------------------

/// Why a store (or directory) operation failed. Messages never carry secrets or a whole
/// member identifier: at most a masked one ([`MemberId::masked`]), versions and outbox ids.
/// `Debug` masks the member too (see [`MemberId`]).
///
/// ```
/// use afiliado::ports::StoreError;
///
/// let err = StoreError::Conflict { member: "1710034065".parse()?, expected: 3, found: Some(4) };
/// assert_eq!(err.to_string(), "version conflict for member 17******65: expected 3, found 4");
/// assert!(!format!("{err:?}").contains("1710034065"));
/// # Ok::<(), afiliado::identity::MemberIdError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Optimistic-concurrency conflict: the stored version is not the expected one. Nothing
    /// was written; reload, decide again and retry.
    #[error("version conflict for member {}: expected {expected}, found {}", member.masked(), found.map_or_else(|| "none".to_owned(), |v| v.to_string()))]
    Conflict {
        /// Whose record.
        member: MemberId,
        /// The version the caller committed against.
        expected: u64,
        /// The stored version (`None`: no record).
        found: Option<u64>,
    },
    /// No outbox message has this id.
    #[error("no outbox message with id {id}")]
    UnknownMessage {
        /// The id asked for.
        id: u64,
    },
    /// The request itself was unusable (for example a lease that overflows the date range).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// The backend cannot be reached or refused the operation; retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back.
    #[error("store data corrupt: {0}")]
    Corrupt(String),
}

// ---------------------------------------------------------------------------------------------
// Outbox
// ---------------------------------------------------------------------------------------------

/// A notice to queue in the outbox, committed in the same transaction as the record.
///
/// `sealed` is an opaque payload the service has already encrypted (for link-bearing notices:
/// the link and code, which only the dispatcher unseals when it renders the mail). The store
/// keeps it as bytes and never sees a secret in clear. `Debug` prints only its length.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewMessage {
    /// Unique per message: a second message with the same key is skipped on commit, so a
    /// retried commit never queues a mail twice.
    pub idempotency_key: String,
    /// Whose account the notice belongs to.
    pub member: MemberId,
    /// What to send, and to whom.
    pub notice: Notice,
    /// Encrypted payload (link and code), empty for notices without a secret.
    pub sealed: Vec<u8>,
    /// When the message is due: the service's `now` when the decision was made, or later for
    /// a link queued for the end of its cooldown (`Notice::not_before`). Stores never read a
    /// clock of their own.
    pub created_at: OffsetDateTime,
}

impl NewMessage {
    /// A message to queue.
    pub fn new(
        idempotency_key: impl Into<String>,
        member: MemberId,
        notice: Notice,
        sealed: Vec<u8>,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            idempotency_key: idempotency_key.into(),
            member,
            notice,
            sealed,
            created_at,
        }
    }
}

impl fmt::Debug for NewMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMessage")
            .field("idempotency_key", &self.idempotency_key)
            .field("member", &self.member)
            .field("notice", &self.notice)
            .field("sealed", &SealedLen(self.sealed.len()))
            .finish()
    }
}

/// Prints `<N bytes>` for an opaque payload.
struct SealedLen(usize);

impl fmt::Debug for SealedLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// Where an outbox message is in its delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
#[non_exhaustive]
pub enum OutboxStatus {
    /// Waiting for `next_attempt_at`.
    Pending,
    /// Taken by a dispatcher until `lease_until`; after that anyone may claim it again.
    Claimed {
        /// When the claim lapses.
        lease_until: OffsetDateTime,
    },
    /// Delivered to the mailer.
    Sent {
        /// When.
        at: OffsetDateTime,
    },
    /// Given up on.
    DeadLetter {
        /// When.
        at: OffsetDateTime,
        /// Why (no secrets).
        reason: String,
    },
}

/// A message as stored in the outbox. `Debug` prints `sealed` only as its length.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxMessage {
    /// Store-assigned id, increasing in commit order.
    pub id: u64,
    /// See [`NewMessage::idempotency_key`]; also usable as the mail's message id.
    pub idempotency_key: String,
    /// Whose account.
    pub member: MemberId,
    /// What to send.
    pub notice: Notice,
    /// Encrypted payload, see [`NewMessage`].
    pub sealed: Vec<u8>,
    /// When it was committed.
    pub created_at: OffsetDateTime,
    /// How many times it has been claimed.
    pub attempts: u32,
    /// Not claimable before this instant.
    pub next_attempt_at: OffsetDateTime,
    /// Delivery status.
    pub status: OutboxStatus,
}

impl fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("idempotency_key", &self.idempotency_key)
            .field("member", &self.member)
            .field("notice", &self.notice)
            .field("sealed", &SealedLen(self.sealed.len()))
            .field("created_at", &self.created_at)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("status", &self.status)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// AccountStore
// ---------------------------------------------------------------------------------------------

/// Persistence of account records, the outbox and the audit log (the storage contract).
///
/// The contract every backend honours:
///
/// * [`load`](Self::load) and [`load_by_token`](Self::load_by_token) answer `Ok(None)` for
///   anything missing;
/// * [`commit`](Self::commit) is atomic and uses optimistic concurrency: of two commits on
///   one version exactly one wins, the other gets [`StoreError::Conflict`] and writes nothing;
/// * timestamps round-trip at (at least) microsecond precision;
/// * nothing secret is stored in clear: records hold digests and PHC hashes, outbox payloads
///   arrive sealed;
/// * the outbox is at-least-once: claim → mark-sent / retry-later / dead-letter, with an
///   expired claim claimable again, and one message per idempotency key;
/// * the audit log is append-only and returned in commit order.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The record of `member`, if one was ever committed.
    async fn load(&self, member: &MemberId) -> Result<Option<AccountRecord>, StoreError>;

    /// The record currently holding `digest` for `purpose` among its
    /// [`AccountRecord::token_digests`]. A digest the record no longer holds (used,
    /// replaced, expired and settled) finds nothing.
    async fn load_by_token(
        &self,
        purpose: TokenPurpose,
        digest: &Digest,
    ) -> Result<Option<AccountRecord>, StoreError>;

    /// Atomically stores `record`, queues `outbox` and appends `audit`.
    ///
    /// `expected_version` is the version the caller loaded (0 for a record that does not
    /// exist yet). On success the stored record's version is `expected_version + 1` and that
    /// version is returned; `record.version` itself is ignored. If the stored version differs,
    /// the answer is [`StoreError::Conflict`] and nothing is written. An outbox message whose
    /// idempotency key is already queued is skipped (idempotent). New messages are
    /// [`OutboxStatus::Pending`], due from their [`NewMessage::created_at`].
    async fn commit(
        &self,
        record: &AccountRecord,
        expected_version: u64,
        outbox: Vec<NewMessage>,
        audit: Vec<AuditEvent>,
    ) -> Result<u64, StoreError>;

    /// Claims up to `limit` due messages, oldest first: [`OutboxStatus::Pending`] ones with
    /// `next_attempt_at <= now`, and [`OutboxStatus::Claimed`] ones whose lease has expired
    /// (`lease_until <= now`). Each is marked `Claimed { lease_until: now + lease }` and its
    /// `attempts` incremented; the returned copies show the new state.
    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError>;

    /// Marks a message delivered. Idempotent on a sent message; a dead-lettered one stays
    /// dead-lettered.
    async fn mark_sent(&self, id: u64, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Puts a message back to [`OutboxStatus::Pending`], due at `at`. No effect on a message
    /// already sent or dead-lettered.
    async fn retry_later(&self, id: u64, at: OffsetDateTime) -> Result<(), StoreError>;

    /// Gives up on a message and, in the same transaction, appends
    /// [`AuditEvent::dead_letter`](crate::core::AuditEvent::dead_letter) to its member's audit
    /// log. No effect (and no event) on a message already sent or dead-lettered.
    async fn dead_letter(
        &self,
        id: u64,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError>;

    /// The audit events of `member`, in commit order.
    async fn audit_log(&self, member: &MemberId) -> Result<Vec<AuditEvent>, StoreError>;

    /// Up to `limit` records in `PendingActivation` whose activation link has expired at
    /// `now` (`expires_at <= now`), for retention (see [`crate::retention`]).
    async fn expired_pending(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AccountRecord>, StoreError>;

    /// Deletes the audit events with `at < before` and returns how many. This retention
    /// purge is the only way audit events ever leave the log.
    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Up to `limit` records in `Unregistered`, in member-ID order, starting after `after`
    /// (from the first when `None`), for retention's purge of records that hold nothing (see
    /// [`crate::retention`]). The default finds none: a store that does not implement it
    /// keeps such records.
    async fn unregistered(
        &self,
        after: Option<&MemberId>,
        limit: usize,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        let _ = (after, limit);
        Ok(Vec::new())
    }

    /// Deletes the outbox messages delivered before `before` (they hold the member's address
    /// and ID) and returns how many. Pending, claimed and dead-lettered messages stay. The
    /// default deletes nothing.
    async fn purge_sent(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let _ = before;
        Ok(0)
    }

    /// Deletes `member`'s record if it is still `Unregistered` at `version`, atomically;
    /// returns whether it did. Its audit events stay (they leave with the audit retention).
    /// A later commit for the member starts again from version 0. The default deletes
    /// nothing.
    async fn delete_unregistered(
        &self,
        member: &MemberId,
        version: u64,
    ) -> Result<bool, StoreError> {
        let _ = (member, version);
        Ok(false)
    }
}

// ---------------------------------------------------------------------------------------------
// MemberDirectory
// ---------------------------------------------------------------------------------------------

/// What the institution's registry knows about a member: the facts registration and recovery
/// proofs are checked against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemberFacts {
    /// The member.
    pub member: MemberId,
    /// Full names as registered.
    pub names: String,
    /// Date of birth.
    pub birth_date: Date,
    /// Affiliate number, where the institution issues one.
    pub affiliate_number: Option<String>,
    /// Employers on record.
    pub employers: Vec<String>,
    /// Years with contributions.
    pub contribution_years: Vec<u16>,
}

impl MemberFacts {
    /// Facts with no affiliate number, employers or contribution years.
    pub fn new(member: MemberId, names: impl Into<String>, birth_date: Date) -> Self {
        Self {
            member,
            names: names.into(),
            birth_date,
            affiliate_number: None,
            employers: Vec::new(),
            contribution_years: Vec::new(),
        }
    }
}

/// Failures per client source (address or network, as the host sees it), counted in fixed
/// windows and shared by every instance on the same store, so that one source spraying
/// guesses across many IDs is stopped (password spraying, registration and recovery
/// guessing). Sources are stored only as keyed pseudonyms.
///
/// Rules every implementation keeps (checked by the conformance suite): counts start at 0,
/// are kept per `(source, window)`, never lose an increment under concurrency, and
/// `purge_sources` deletes exactly the windows that started before its argument.
#[async_trait]
pub trait SourceThrottle: Send + Sync {
    /// Failures counted for `source` in the window that starts at `window`.
    async fn source_failures(
        &self,
        source: &Digest,
        window: OffsetDateTime,
    ) -> Result<u32, StoreError>;

    /// Counts one more failure for `source` in the window that starts at `window`; returns
    /// the new count.
    async fn add_source_failure(
        &self,
        source: &Digest,
        window: OffsetDateTime,
    ) -> Result<u32, StoreError>;

    /// Deletes the counts of windows that started before `before`; returns how many.
    async fn purge_sources(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// The institution's member registry.
#[async_trait]
pub trait MemberDirectory: Send + Sync {
    /// The facts about `member`, if the registry knows them.
    async fn find(&self, member: &MemberId) -> Result<Option<MemberFacts>, StoreError>;

    /// Adds or replaces a member (staff enrolment of foreigners, who are not in the national
    /// registry).
    async fn enroll(&self, facts: MemberFacts) -> Result<(), StoreError>;

    /// Adds or replaces many members at once (roster imports). SQL backends write each
    /// batch in one transaction; the default enrolls them one by one.
    async fn enroll_many(&self, batch: Vec<MemberFacts>) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for facts in batch {
            self.enroll(facts).await?;
            n = n.saturating_add(1);
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// Mailer
// ---------------------------------------------------------------------------------------------

/// A rendered mail. `text` carries links and codes: `Debug` prints only its length (and the
/// recipient masked, like every [`Email`]).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mail {
    /// Stable id (the outbox idempotency key), so a resend can be deduplicated downstream.
    pub message_id: String,
    /// Recipient.
    pub to: Email,
    /// Subject line.
    pub subject: String,
    /// Plain-text body (secret: may hold a link or code).
    pub text: String,
    /// HTML alternative of the same content, when the renderer makes one (secret too).
    pub html: Option<String>,
}

impl Mail {
    /// A mail.
    pub fn new(
        message_id: impl Into<String>,
        to: Email,
        subject: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            message_id: message_id.into(),
            to,
            subject: subject.into(),
            text: text.into(),
            html: None,
        }
    }

    /// Adds the HTML alternative.
    pub fn with_html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("message_id", &self.message_id)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &SealedLen(self.text.len()))
            .field("html", &self.html.as_ref().map(|h| SealedLen(h.len())))
            .finish()
    }
}

/// Why a mail was not delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// Try again later (connection refused, 4xx reply …).
    #[error("transient mail failure: {0}")]
    Transient(String),
    /// Will never succeed (address rejected, 5xx reply …): dead-letter it.
    #[error("permanent mail failure: {0}")]
    Permanent(String),
}

/// Delivers mail. Called by the outbox dispatcher only.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one mail.
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

// ---------------------------------------------------------------------------------------------
// HumanCheck
// ---------------------------------------------------------------------------------------------

/// A human-presence check (CAPTCHA) guarding registration, recovery and unlock requests.
#[async_trait]
pub trait HumanCheck: Send + Sync {
    /// Whether `response` (the widget's answer) proves a human.
    async fn verify(&self, response: &str) -> Result<bool, StoreError>;
}

/// A [`HumanCheck`] that accepts everything: for tests and for hosts without a CAPTCHA
/// (which should then rely on throttles alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlwaysPass;

#[async_trait]
impl HumanCheck for AlwaysPass {
    async fn verify(&self, _response: &str) -> Result<bool, StoreError> {
        Ok(true)
    }
}
