//! In-memory adapters of the [ports](crate::ports): for tests, examples and single-process
//! demos. Nothing survives the process.
//!
//! * [`MemoryStore`] — an [`AccountStore`] behind one mutex, so every commit is trivially
//!   atomic and serialised.
//! * [`MemoryDirectory`] — a [`MemberDirectory`] over a map.
//! * [`MemoryMailer`] — a [`Mailer`] that records what it was given, and can be told to fail.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::core::{AccountRecord, AccountState, AuditEvent};
use crate::crypto::{Digest, TokenPurpose};
use crate::identity::MemberId;
use crate::ports::{
    AccountStore, Mail, MailError, Mailer, MemberDirectory, MemberFacts, NewMessage, OutboxMessage,
    OutboxStatus, SourceThrottle, StoreError,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// MemoryStore
// ---------------------------------------------------------------------------------------------

#[async_trait]
impl SourceThrottle for MemoryStore {
    async fn source_failures(
        &self,
        source: &Digest,
        window: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        Ok(lock(&self.inner)
            .sources
            .get(&(*source, window))
            .copied()
            .unwrap_or(0))
    }

    async fn add_source_failure(
        &self,
        source: &Digest,
        window: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let mut inner = lock(&self.inner);
        let n = inner.sources.entry((*source, window)).or_insert(0);
        *n = n.saturating_add(1);
        Ok(*n)
    }

    async fn purge_sources(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut inner = lock(&self.inner);
        let n = inner.sources.len();
        inner.sources.retain(|(_, w), _| *w >= before);
        Ok(u64::try_from(n.saturating_sub(inner.sources.len())).unwrap_or(u64::MAX))
    }
}

#[derive(Debug, Default)]
struct StoreInner {
    records: HashMap<MemberId, AccountRecord>,
    tokens: HashMap<(TokenPurpose, Digest), MemberId>,
    outbox: Vec<OutboxMessage>,
    keys: HashSet<String>,
    audit: HashMap<MemberId, Vec<AuditEvent>>,
    next_id: u64,
    sources: HashMap<(Digest, OffsetDateTime), u32>,
}

impl StoreInner {
    fn message(&mut self, id: u64) -> Result<&mut OutboxMessage, StoreError> {
        // Ids are assigned in push order, so the vector is sorted by id.
        match self.outbox.binary_search_by_key(&id, |m| m.id) {
            Ok(i) => self
                .outbox
                .get_mut(i)
                .ok_or(StoreError::UnknownMessage { id }),
            Err(_) => Err(StoreError::UnknownMessage { id }),
        }
    }
}

/// An [`AccountStore`] in memory.
///
/// A new outbox message is due from its [`NewMessage::created_at`]; the store reads no clock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<StoreInner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A snapshot of the whole outbox, in id order (for tests and diagnostics).
    pub fn outbox(&self) -> Vec<OutboxMessage> {
        lock(&self.inner).outbox.clone()
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn load(&self, member: &MemberId) -> Result<Option<AccountRecord>, StoreError> {
        Ok(lock(&self.inner).records.get(member).cloned())
    }

    async fn load_by_token(
        &self,
        purpose: TokenPurpose,
        digest: &Digest,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .tokens
            .get(&(purpose, *digest))
            .and_then(|m| inner.records.get(m))
            .cloned())
    }

    async fn commit(
        &self,
        record: &AccountRecord,
        expected_version: u64,
        outbox: Vec<NewMessage>,
        audit: Vec<AuditEvent>,
    ) -> Result<u64, StoreError> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let found = inner.records.get(&record.member).map(|r| r.version);
        if found.unwrap_or(0) != expected_version {
            return Err(StoreError::Conflict {
                member: record.member.clone(),
                expected: expected_version,
                found,
            });
        }
        let version = expected_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Invalid("version overflow".to_owned()))?;

        // Nothing below can fail: the commit is all or nothing.
        let mut stored = record.clone();
        stored.version = version;
        if let Some(old) = inner.records.get(&record.member) {
            for key in old.token_digests() {
                inner.tokens.remove(&key);
            }
        }
        for key in stored.token_digests() {
            inner.tokens.insert(key, stored.member.clone());
        }
        inner.records.insert(stored.member.clone(), stored);

        for msg in outbox {
            if !inner.keys.insert(msg.idempotency_key.clone()) {
                continue;
            }
            inner.next_id = inner.next_id.saturating_add(1);
            inner.outbox.push(OutboxMessage {
                id: inner.next_id,
                idempotency_key: msg.idempotency_key,
                member: msg.member,
                notice: msg.notice,
                sealed: msg.sealed,
                created_at: msg.created_at,
                attempts: 0,
                next_attempt_at: msg.created_at,
                status: OutboxStatus::Pending,
            });
        }
        for event in audit {
            inner
                .audit
                .entry(event.member.clone())
                .or_default()
                .push(event);
        }
        Ok(version)
    }

    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let lease_until = now
            .checked_add(lease)
            .ok_or_else(|| StoreError::Invalid("lease out of range".to_owned()))?;
        let mut inner = lock(&self.inner);
        let mut claimed = Vec::new();
        for msg in inner.outbox.iter_mut() {
            if claimed.len() >= limit {
                break;
            }
            let due = match &msg.status {
                OutboxStatus::Pending => msg.next_attempt_at <= now,
                OutboxStatus::Claimed { lease_until } => *lease_until <= now,
                _ => false,
            };
            if due {
                msg.status = OutboxStatus::Claimed { lease_until };
                msg.attempts = msg.attempts.saturating_add(1);
                claimed.push(msg.clone());
            }
        }
        Ok(claimed)
    }

    async fn mark_sent(&self, id: u64, now: OffsetDateTime) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let msg = inner.message(id)?;
        if matches!(
            msg.status,
            OutboxStatus::Pending | OutboxStatus::Claimed { .. }
        ) {
            msg.status = OutboxStatus::Sent { at: now };
        }
        Ok(())
    }

    async fn retry_later(&self, id: u64, at: OffsetDateTime) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let msg = inner.message(id)?;
        if matches!(
            msg.status,
            OutboxStatus::Pending | OutboxStatus::Claimed { .. }
        ) {
            msg.status = OutboxStatus::Pending;
            msg.next_attempt_at = at;
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        id: u64,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let msg = inner.message(id)?;
        if matches!(
            msg.status,
            OutboxStatus::Pending | OutboxStatus::Claimed { .. }
        ) {
            msg.status = OutboxStatus::DeadLetter {
                at: now,
                reason: reason.to_owned(),
            };
            let event =
                AuditEvent::dead_letter(now, msg.member.clone(), &msg.idempotency_key, reason);
            inner
                .audit
                .entry(event.member.clone())
                .or_default()
                .push(event);
        }
        Ok(())
    }

    async fn audit_log(&self, member: &MemberId) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(lock(&self.inner)
            .audit
            .get(member)
            .cloned()
            .unwrap_or_default())
    }

    async fn expired_pending(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        Ok(lock(&self.inner)
            .records
            .values()
            .filter(|r| match &r.state {
                AccountState::PendingActivation(p) => p.link.expires_at <= now,
                _ => false,
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn purge_sent(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut inner = lock(&self.inner);
        let len = inner.outbox.len();
        inner
            .outbox
            .retain(|m| !matches!(m.status, OutboxStatus::Sent { at } if at < before));
        Ok(u64::try_from(len.saturating_sub(inner.outbox.len())).unwrap_or(u64::MAX))
    }

    async fn unregistered(
        &self,
        after: Option<&MemberId>,
        limit: usize,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        let inner = lock(&self.inner);
        let mut found: Vec<&AccountRecord> = inner
            .records
            .values()
            .filter(|r| matches!(r.state, AccountState::Unregistered))
            .filter(|r| after.is_none_or(|a| r.member.as_str() > a.as_str()))
            .collect();
        found.sort_by(|a, b| a.member.as_str().cmp(b.member.as_str()));
        Ok(found.into_iter().take(limit).cloned().collect())
    }

    async fn delete_unregistered(
        &self,
        member: &MemberId,
        version: u64,
    ) -> Result<bool, StoreError> {
        let mut inner = lock(&self.inner);
        let idle = inner
            .records
            .get(member)
            .is_some_and(|r| r.version == version && matches!(r.state, AccountState::Unregistered));
        if idle {
            inner.records.remove(member);
        }
        Ok(idle)
    }

    async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut inner = lock(&self.inner);
        let mut removed = 0u64;
        for events in inner.audit.values_mut() {
            let len = events.len();
            events.retain(|e| e.at >= before);
            removed = removed.saturating_add((len - events.len()) as u64);
        }
        Ok(removed)
    }
}

// ---------------------------------------------------------------------------------------------
// MemoryDirectory
// ---------------------------------------------------------------------------------------------

/// A [`MemberDirectory`] over a map.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    members: Mutex<HashMap<MemberId, MemberFacts>>,
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder: the directory with `facts` added (replacing the member's earlier facts).
    #[must_use]
    pub fn with(self, facts: MemberFacts) -> Self {
        lock(&self.members).insert(facts.member.clone(), facts);
        self
    }
}

#[async_trait]
impl MemberDirectory for MemoryDirectory {
    async fn find(&self, member: &MemberId) -> Result<Option<MemberFacts>, StoreError> {
        Ok(lock(&self.members).get(member).cloned())
    }

    async fn enroll(&self, facts: MemberFacts) -> Result<(), StoreError> {
        lock(&self.members).insert(facts.member.clone(), facts);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// MemoryMailer
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct MailerInner {
    sent: Vec<Mail>,
    fail_next: u32,
}

/// A [`Mailer`] that keeps every mail it accepts. [`MemoryMailer::fail_next`] makes the next
/// sends fail with [`MailError::Transient`] (those are not recorded).
///
/// `Debug` shows counts only, never mail texts.
#[derive(Default)]
pub struct MemoryMailer {
    inner: Mutex<MailerInner>,
}

impl MemoryMailer {
    /// A mailer that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mails accepted so far, in order.
    pub fn sent(&self) -> Vec<Mail> {
        lock(&self.inner).sent.clone()
    }

    /// Makes the next `n` sends fail with [`MailError::Transient`] (replacing any earlier
    /// count).
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).fail_next = n;
    }
}

impl fmt::Debug for MemoryMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = lock(&self.inner);
        f.debug_struct("MemoryMailer")
            .field("sent", &inner.sent.len())
            .field("fail_next", &inner.fail_next)
            .finish()
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let mut inner = lock(&self.inner);
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            return Err(MailError::Transient("injected failure".to_owned()));
        }
        inner.sent.push(mail.clone());
        Ok(())
    }
}
