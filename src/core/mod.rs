//! The pure core: account states, commands, the transition function and lockout arithmetic.
//!
//! Nothing in this module reads a clock, draws randomness or performs I/O (`clippy.toml`
//! bans the clock and RNG entry points crate-wide; only adapters opt out). Time is the `now`
//! argument; tokens arrive as keyed digests; slow work (argon2) arrives as verified facts.
//!
//! ```text
//!                    register                       activate (link + code + password)
//!   Unregistered ──────────────▶ PendingActivation ─────────────────────────────────▶ Active
//!        ▲  ▲                         │  │ re-register replaces link+code                 │ ▲ │
//!        │  └──── expiry / code ──────┘  ◀┘                                              │ │ │
//!        │        attempts exhausted                         login ok / fail < threshold ┘ │ │
//!        │                                                                                 │ │
//!        │                         auto-unlock at t · unlock link · reset · staff unlock   │ │
//!        │                Locked ─────────────────────────────────────────────────────────┘ │
//!        │  (FailedLogins | FailedRecovery | Staff) ◀── threshold failure · budget · suspend ┘
//!        │                  │ ▲
//!        │  start_recovery  ▼ │ reset link expires: back to the standing it came from
//!        │               Resetting ──── reset_password ────▶ Active (or Locked if the policy
//!        │                                                           keeps locks over resets)
//! ```
//!
//! Calling contract (what the service does for every command):
//!
//! 1. read the clock once → `now`;
//! 2. load the [`AccountRecord`] (or [`AccountRecord::new`] for an unknown member);
//! 3. do the slow or random work: verify the password, hash a new one, check proofs against
//!    the registry, generate tokens and digest them;
//! 4. [`decide`] → [`Decision`] or [`Denied`] (nothing to commit);
//! 5. commit `decision.next` with its `version` as the expected version, together with the
//!    notices and audit events of `decision.effects`, in one transaction;
//! 6. on a version conflict, reload and go to 4 with the same facts.
//!
//! Activation and reset are decided twice: first with `hash: None`, which answers
//! [`Denied::HashRequired`] when every other check passes (so argon2 never runs for a
//! request that would be refused), then with the hash.

mod command;
mod effect;
pub mod lockout;
mod machine;
mod state;

pub use command::{
    Command, Denied, NewPassword, Outcome, ProofResult, Register, StaffAction, StartRecovery,
};
pub use effect::{AuditEvent, AuditKind, Effect, Notice, NoticeKind};
pub use machine::{Decision, decide, local_day, settle};
pub use state::{
    AccountRecord, AccountState, Contact, DailyCount, EnrolledAnswer, IssuedToken, Locale, Lock,
    LockReason, Pending, PendingEmailChange, Profile, SecurityEnrollment, ShadowLockout, Standing,
    StateKind, TrustedDevice,
};
