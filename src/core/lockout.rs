//! Lockout arithmetic: failure window, threshold, automatic unlock, progressive lockout.
//!
//! Pure functions of the stored data, the policy and `now`; nothing here reads a clock.
//!
//! * A failure counts while `now < failure + window`: at `failure + window` exactly it no
//!   longer counts.
//! * The failure that brings the count to `threshold` locks the account.
//! * A lock with `auto_unlock_at = t` is in force while `now < t`; at `t` exactly it lifts.
//! * The n-th lockout since the last successful login lasts [`Policy::lock_duration`]`(n)`.

use std::time::Duration;

use time::OffsetDateTime;

use crate::policy::Policy;

use super::state::{Lock, LockReason};

/// `t + d`, saturating at the largest representable instant instead of overflowing.
pub fn after(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_offset(t.offset()))
}

/// Whether a failure at `at` still counts at `now`.
pub fn failure_counts(at: OffsetDateTime, now: OffsetDateTime, window: Duration) -> bool {
    now < after(at, window)
}

/// Drops failures that no longer count at `now`.
pub fn prune(failures: &mut Vec<OffsetDateTime>, now: OffsetDateTime, window: Duration) {
    failures.retain(|at| failure_counts(*at, now, window));
}

/// Counts a new failure at `now`. Returns `true` when this failure reaches the threshold
/// (the caller locks the account and clears the list).
pub fn record_failure(
    failures: &mut Vec<OffsetDateTime>,
    now: OffsetDateTime,
    policy: &Policy,
) -> bool {
    prune(failures, now, policy.lockout.window);
    failures.push(now);
    u32::try_from(failures.len()).unwrap_or(u32::MAX) >= policy.lockout.threshold
}

/// The lock placed at `now` for the `lockouts`-th lockout (1-based).
pub fn new_lock(reason: LockReason, lockouts: u32, now: OffsetDateTime, policy: &Policy) -> Lock {
    let auto_unlock_at = match reason {
        LockReason::Staff => None,
        LockReason::FailedLogins | LockReason::FailedRecovery => {
            policy.lock_duration(lockouts).map(|d| after(now, d))
        }
    };
    Lock {
        reason,
        since: now,
        auto_unlock_at,
        unlock_link: None,
    }
}

/// Whether the lock has lifted by itself at `now`.
pub fn auto_unlock_due(lock: &Lock, now: OffsetDateTime) -> bool {
    lock.auto_unlock_at.is_some_and(|t| now >= t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-22 19:40 -5);

    fn mins(n: u64) -> Duration {
        Duration::from_secs(n * 60)
    }

    #[test]
    fn failure_stops_counting_exactly_at_the_window_edge() {
        let w = mins(20);
        assert!(failure_counts(
            T0,
            after(T0, mins(20)) - time::Duration::NANOSECOND,
            w
        ));
        assert!(!failure_counts(T0, after(T0, mins(20)), w));
        let mut v = vec![T0, after(T0, mins(5))];
        prune(&mut v, after(T0, mins(20)), w);
        assert_eq!(v, vec![after(T0, mins(5))]);
    }

    #[test]
    fn threshold_failure_locks_not_the_one_before() {
        let p = Policy::iess(); // 3 failures
        let mut v = Vec::new();
        assert!(!record_failure(&mut v, T0, &p));
        assert!(!record_failure(&mut v, after(T0, mins(1)), &p));
        assert!(record_failure(&mut v, after(T0, mins(2)), &p));
    }

    #[test]
    fn failures_outside_the_window_do_not_reach_the_threshold() {
        let p = Policy::isspol(); // 5 failures in 20 min
        let mut v = Vec::new();
        for i in 0..4 {
            assert!(!record_failure(&mut v, after(T0, mins(i)), &p));
        }
        // The first failure (T0) expires at T0+20m: the fifth failure then makes only 4.
        assert!(!record_failure(&mut v, after(T0, mins(20)), &p));
        assert_eq!(v.len(), 4);
        assert!(record_failure(&mut v, after(T0, mins(20)), &p));
    }

    #[test]
    fn automatic_unlock_at_the_exact_instant() {
        let p = Policy::isspol();
        let lock = new_lock(LockReason::FailedLogins, 1, T0, &p);
        assert_eq!(lock.auto_unlock_at, Some(after(T0, mins(20))));
        assert!(!auto_unlock_due(
            &lock,
            after(T0, mins(20)) - time::Duration::SECOND
        ));
        assert!(auto_unlock_due(&lock, after(T0, mins(20))));
    }

    #[test]
    fn progressive_lockout_grows_then_repeats_the_last_step() {
        let p = Policy::recommended();
        let got: Vec<_> = (1..=6)
            .map(|n| new_lock(LockReason::FailedLogins, n, T0, &p).auto_unlock_at)
            .collect();
        let want: Vec<_> = [1, 5, 15, 60, 60, 60]
            .iter()
            .map(|m| Some(after(T0, mins(*m))))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn manual_after_stops_automatic_unlock() {
        let mut p = Policy::recommended();
        p.lockout.manual_after = Some(2);
        assert!(
            new_lock(LockReason::FailedLogins, 2, T0, &p)
                .auto_unlock_at
                .is_some()
        );
        assert!(
            new_lock(LockReason::FailedLogins, 3, T0, &p)
                .auto_unlock_at
                .is_none()
        );
    }

    #[test]
    fn staff_locks_and_iess_locks_never_lift_by_themselves() {
        assert!(
            new_lock(LockReason::Staff, 1, T0, &Policy::isspol())
                .auto_unlock_at
                .is_none()
        );
        assert!(
            new_lock(LockReason::FailedLogins, 1, T0, &Policy::iess())
                .auto_unlock_at
                .is_none()
        );
    }

    #[test]
    fn after_saturates() {
        let far = after(T0, Duration::from_secs(u64::MAX));
        assert!(far > T0);
    }
}
