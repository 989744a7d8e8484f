//! Data retention (LOPDP: keep no more personal data than needed, for no longer than needed).
//!
//! [`purge`] drops the contact data of pending registrations whose link has expired (they
//! return to `Unregistered`, with a `RegistrationExpired` audit event, through the normal
//! commit path), deletes the records of IDs without an account that no longer hold anything
//! (every login, registration, recovery or unlock request about an ID leaves a record, so
//! that unknown IDs cost the same work as known ones), and deletes audit events older than
//! [`RetentionPolicy::audit`](crate::policy::RetentionPolicy) and delivered outbox messages
//! older than `RetentionPolicy::sent_mail` (they hold addresses and IDs; pending and
//! dead-lettered ones stay).
//!
//! A record without an account is deleted only when nothing in it could change a later
//! answer: no failure still in its window, no lock, no registration or notice counted today,
//! no resend cooldown running, and no recovery failure or lockout ever counted (those never
//! lapse for an account either, so forgetting them would tell the two apart).
//! Run it periodically from a host job; it is safe to run from several instances at once.

use time::OffsetDateTime;

use crate::core::{AccountRecord, AccountState, AuditEvent, Effect, local_day, settle};
use crate::policy::Policy;
use crate::ports::{AccountStore, StoreError};

/// What a [`purge`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Pending registrations whose contact data was dropped.
    pub registrations_expired: usize,
    /// Audit events deleted.
    pub audit_deleted: u64,
    /// Records of IDs without an account that held nothing any more, deleted.
    pub idle_records_deleted: usize,
    /// Delivered outbox messages older than `policy.retention.sent_mail`, deleted.
    pub sent_mail_deleted: u64,
}

/// Applies the retention rules of `policy` at `now`.
pub async fn purge(
    store: &dyn AccountStore,
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<PurgeReport, StoreError> {
    const BATCH: usize = 500;
    let mut report = PurgeReport::default();
    loop {
        let batch = store.expired_pending(now, BATCH).await?;
        let mut progressed = false;
        for record in &batch {
            let (next, effects) = settle(record, now, policy);
            if next == *record {
                continue;
            }
            let audit: Vec<AuditEvent> = effects
                .into_iter()
                .filter_map(|e| match e {
                    Effect::Audit(a) => Some(a),
                    Effect::Notify(_) => None,
                })
                .collect();
            match store.commit(&next, record.version, Vec::new(), audit).await {
                Ok(_) => {
                    report.registrations_expired += 1;
                    progressed = true;
                }
                // Someone else touched it (and settled it) meanwhile.
                Err(StoreError::Conflict { .. }) => progressed = true,
                Err(e) => return Err(e),
            }
        }
        if batch.len() < BATCH || !progressed {
            break;
        }
    }
    report.idle_records_deleted = purge_idle(store, policy, now).await?;
    let sent_before = time::Duration::try_from(policy.retention.sent_mail)
        .ok()
        .and_then(|d| now.checked_sub(d))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    report.sent_mail_deleted = store.purge_sent(sent_before).await?;
    let before = time::Duration::try_from(policy.retention.audit)
        .ok()
        .and_then(|d| now.checked_sub(d))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    report.audit_deleted = store.purge_audit(before).await?;
    Ok(report)
}

/// Deletes the records of IDs without an account that hold nothing (see the module docs).
async fn purge_idle(
    store: &dyn AccountStore,
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<usize, StoreError> {
    const BATCH: usize = 500;
    let mut deleted = 0usize;
    let mut after = None;
    loop {
        let batch = store.unregistered(after.as_ref(), BATCH).await?;
        for record in &batch {
            let (settled, _) = settle(record, now, policy);
            // A record changed meanwhile fails the version check and stays.
            if holds_nothing(&settled, now, policy)
                && store
                    .delete_unregistered(&record.member, record.version)
                    .await?
            {
                deleted = deleted.saturating_add(1);
            }
        }
        match batch.last() {
            Some(last) if batch.len() == BATCH => after = Some(last.member.clone()),
            _ => break,
        }
    }
    Ok(deleted)
}

/// Whether a record (settled at `now`) holds nothing that could change a later answer.
fn holds_nothing(r: &AccountRecord, now: OffsetDateTime, policy: &Policy) -> bool {
    let day = local_day(now);
    matches!(r.state, AccountState::Unregistered)
        && r.shadow.is_empty()
        && r.check_failures == 0
        && r.lockouts == 0
        && r.notices_sent.on(day) == 0
        && r.registrations.on(day) == 0
        && r.registration_failures.on(day) == 0
        && r.registration_warnings.on(day) == 0
        && r.pending_email.is_none()
        && r.devices.is_empty()
        && r.spare_unlock_link.is_none()
        && r.last_registration_at.is_none_or(|t| {
            now >= crate::core::lockout::after(t, policy.registration.resend_cooldown)
        })
}
