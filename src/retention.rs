//! Data retention (LOPDP: keep no more personal data than needed, for no longer than needed).
//!
//! [`purge`] drops the contact data of pending registrations whose link has expired (they
//! return to `Unregistered`, with a `RegistrationExpired` audit event, through the normal
//! commit path) and deletes audit events older than [`RetentionPolicy::audit`](crate::policy::RetentionPolicy).
//! Run it periodically from a host job; it is safe to run from several instances at once.

use time::OffsetDateTime;

use crate::core::{AuditEvent, Effect, settle};
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
    let before = time::Duration::try_from(policy.retention.audit)
        .ok()
        .and_then(|d| now.checked_sub(d))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    report.audit_deleted = store.purge_audit(before).await?;
    Ok(report)
}
