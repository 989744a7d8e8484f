//! Policies: the presets and valid variations of them.

use std::time::Duration;

use proptest::prelude::*;

use crate::policy::Policy;

/// One of the three presets.
pub fn preset() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::isspol()),
        Just(Policy::iess()),
        Just(Policy::recommended())
    ]
}

/// A valid policy: a preset with its numbers (thresholds, windows, lifetimes, attempts,
/// lockout durations) varied. Every generated policy passes [`Policy::validate`].
pub fn policy() -> impl Strategy<Value = Policy> {
    (
        preset(),
        1u32..=12,
        1u64..=180,
        1u64..=60,
        proptest::option::of(1u64..=60),
        proptest::collection::vec(1u64..=120, 0..4),
        proptest::option::of(1u32..=8),
        1u8..=8,
    )
        .prop_map(
            |(mut p, threshold, window_min, ttl_min, first, progressive, budget, attempts)| {
                let min = |m: u64| Duration::from_secs(m * 60);
                p.lockout.threshold = threshold;
                p.lockout.window = min(window_min);
                p.activation.ttl = min(ttl_min);
                p.recovery.reset_ttl = min(ttl_min);
                if p.activation.code_digits.is_some() {
                    p.activation.code_attempts = attempts;
                }
                p.lockout.first_duration = first.map(min);
                p.lockout.progressive = if first.is_some() {
                    progressive.into_iter().map(min).collect()
                } else {
                    Vec::new()
                };
                if p.lockout.first_duration.is_none() && p.unlock.link_ttl.is_none() {
                    p.unlock.reset_unlocks = true;
                }
                p.recovery.attempt_budget = budget;
                p
            },
        )
}
