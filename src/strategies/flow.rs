//! Abstract command sequences: what a member, an attacker, staff and the clock do to one
//! account. A host's property test interprets each [`Step`] against its own service (turning
//! `password_ok` into the right or a wrong password, [`TokenPick`] into the latest, an older
//! or a forged token) and compares with its expectations; the crate's own state-machine test
//! does exactly that against the core.

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;

/// Which token a step presents.
#[derive(Clone, Debug)]
pub enum TokenPick {
    /// The most recently issued token of the purpose the step needs.
    Latest,
    /// Some token issued earlier (of any purpose): it must be refused unless it is the latest.
    Stale(Index),
    /// A token that was never issued.
    Forged,
}

/// One thing that happens to an account.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Step {
    /// The clock moves forward.
    Advance(Duration),
    /// The clock moves to one of the account's deadlines (expiry, automatic unlock) plus
    /// `offset_secs` (−1, 0 or +1): the edges where off-by-one bugs live.
    ToDeadline {
        /// Which deadline, among those the account has.
        which: Index,
        /// Seconds relative to it.
        offset_secs: i8,
    },
    /// Register with proofs that pass or fail.
    Register {
        /// Whether the identity proofs pass.
        proofs_ok: bool,
    },
    /// Open an activation link without submitting.
    InspectActivation {
        /// The token presented.
        token: TokenPick,
    },
    /// Submit the activation form.
    Activate {
        /// The token presented.
        token: TokenPick,
        /// Whether the typed code is the emailed one.
        code_ok: bool,
        /// Whether the new password passes the policy.
        password_ok: bool,
        /// Whether the confirmation matches.
        confirmation_ok: bool,
    },
    /// Log in with the right or a wrong password.
    Login {
        /// Whether the password is the account's current one.
        password_ok: bool,
    },
    /// Ask for an unlock link.
    RequestUnlock,
    /// Follow an unlock link.
    Unlock {
        /// The token presented.
        token: TokenPick,
    },
    /// Start recovery with checks that pass or fail.
    StartRecovery {
        /// Whether the identity proofs (and the claimed email) are right.
        proofs_ok: bool,
    },
    /// Submit the reset form.
    ResetPassword {
        /// The token presented.
        token: TokenPick,
        /// Whether the new password passes the policy.
        password_ok: bool,
        /// Whether the confirmation matches.
        confirmation_ok: bool,
    },
    /// Apply due expiries.
    Expire,
    /// Staff unlocks.
    StaffUnlock,
    /// Staff suspends.
    StaffSuspend,
    /// Staff changes the contact email.
    StaffChangeEmail,
    /// Staff sends a reset link.
    StaffSendReset,
}

/// A token pick, mostly the latest one.
pub fn token_pick() -> impl Strategy<Value = TokenPick> {
    prop_oneof![
        6 => Just(TokenPick::Latest),
        2 => any::<Index>().prop_map(TokenPick::Stale),
        1 => Just(TokenPick::Forged),
    ]
}

/// A clock step: mostly seconds to minutes, sometimes hours or days.
pub fn advance() -> impl Strategy<Value = Duration> {
    prop_oneof![
        4 => (1u64..=120).prop_map(Duration::from_secs),
        4 => (1u64..=30).prop_map(|m| Duration::from_secs(m * 60)),
        1 => (1u64..=48).prop_map(|h| Duration::from_secs(h * 3600)),
    ]
}

/// One step, weighted so that random sequences walk whole lifecycles (register → activate →
/// fail logins → lock → unlock / recover) instead of bouncing off the first state.
pub fn step() -> impl Strategy<Value = Step> {
    let likely = || prop::bool::weighted(0.85);
    prop_oneof![
        3 => advance().prop_map(Step::Advance),
        2 => (any::<Index>(), -1i8..=1).prop_map(|(which, offset_secs)| Step::ToDeadline { which, offset_secs }),
        3 => likely().prop_map(|proofs_ok| Step::Register { proofs_ok }),
        1 => token_pick().prop_map(|token| Step::InspectActivation { token }),
        4 => (token_pick(), likely(), likely(), likely()).prop_map(|(token, code_ok, password_ok, confirmation_ok)| {
            Step::Activate { token, code_ok, password_ok, confirmation_ok }
        }),
        6 => prop::bool::weighted(0.3).prop_map(|password_ok| Step::Login { password_ok }),
        2 => Just(Step::RequestUnlock),
        2 => token_pick().prop_map(|token| Step::Unlock { token }),
        2 => likely().prop_map(|proofs_ok| Step::StartRecovery { proofs_ok }),
        2 => (token_pick(), likely(), likely()).prop_map(|(token, password_ok, confirmation_ok)| {
            Step::ResetPassword { token, password_ok, confirmation_ok }
        }),
        1 => Just(Step::Expire),
        1 => Just(Step::StaffUnlock),
        1 => Just(Step::StaffSuspend),
        1 => Just(Step::StaffChangeEmail),
        1 => Just(Step::StaffSendReset),
    ]
}

/// A sequence of steps.
pub fn steps(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), len)
}
