//! Effects: what the service must do after committing a decision. Data, never actions.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::crypto::TokenPurpose;
use crate::identity::{Email, MemberId, redact_personal_data};

use super::state::{Locale, LockReason};

/// A notice to send to the member. Link-bearing notices name the token purpose; the service,
/// which generated the token, attaches the link when it renders the mail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Notice {
    /// Recipient.
    pub to: Email,
    /// Language.
    pub locale: Locale,
    /// What it says.
    pub kind: NoticeKind,
    /// Not to be sent before this instant (a link queued for the end of its cooldown);
    /// `None`: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<OffsetDateTime>,
}

impl Notice {
    /// A notice (for adapters and tests; the core builds its own).
    pub fn new(to: Email, locale: Locale, kind: NoticeKind) -> Self {
        Self {
            to,
            locale,
            kind,
            not_before: None,
        }
    }
}

/// The notices the security rules require.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum NoticeKind {
    /// Activation link (and code).
    Activation {
        /// Expiry of link and code.
        expires_at: OffsetDateTime,
        /// Whether the mail carries a code too.
        with_code: bool,
    },
    /// Unlock link.
    UnlockLink {
        /// Expiry.
        expires_at: OffsetDateTime,
    },
    /// Reset link.
    ResetLink {
        /// Expiry.
        expires_at: OffsetDateTime,
    },
    /// The account was locked.
    Locked {
        /// Why.
        reason: LockReason,
        /// When it unlocks by itself.
        until: Option<OffsetDateTime>,
    },
    /// The account was unlocked (link or staff).
    Unlocked,
    /// The password was changed.
    PasswordChanged,
    /// Sent to the *old* address when the contact email changes.
    EmailChangedFrom {
        /// The new address, masked.
        new_masked: String,
    },
    /// Sent to the *new* address when the contact email changes.
    EmailChangedTo,
    /// Sent to the *new* address of a staff email change: the link that confirms it.
    EmailChangeConfirm {
        /// Expiry of the link (the change is dropped after it).
        expires_at: OffsetDateTime,
    },
    /// Sent to the *current* address when staff asks to change it: nothing has changed yet.
    EmailChangeRequested {
        /// The proposed address, masked.
        new_masked: String,
    },
    /// Someone tried to register an already-active account.
    RegistrationAttemptOnActive,
}

impl NoticeKind {
    /// The token purpose whose link the mail carries, if any.
    pub fn link_purpose(&self) -> Option<TokenPurpose> {
        match self {
            Self::Activation { .. } => Some(TokenPurpose::Activation),
            Self::UnlockLink { .. } => Some(TokenPurpose::Unlock),
            Self::ResetLink { .. } => Some(TokenPurpose::Reset),
            Self::EmailChangeConfirm { .. } => Some(TokenPurpose::EmailChange),
            _ => None,
        }
    }
}

/// One entry of the append-only audit log. Contains no secret and no personal data beyond
/// the member identifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When it happened (for lazily applied expiries: the scheduled instant).
    pub at: OffsetDateTime,
    /// Whose account.
    pub member: MemberId,
    /// What happened.
    pub kind: AuditKind,
}

impl AuditEvent {
    /// An audit event (for adapters and tests; the core builds its own).
    pub fn new(at: OffsetDateTime, member: MemberId, kind: AuditKind) -> Self {
        Self { at, member, kind }
    }

    /// The event a store appends when it dead-letters an outbox message.
    ///
    /// `reason` is free text from a mailer (often a mail server's reply, which may repeat
    /// the recipient): e-mail addresses and long digit runs (cédulas, phone numbers) in it
    /// are masked before it reaches the audit log.
    ///
    /// ```
    /// use afiliado::core::{AuditEvent, AuditKind};
    /// use time::macros::datetime;
    ///
    /// let event = AuditEvent::dead_letter(
    ///     datetime!(2026-11-22 19:00 -5),
    ///     "1710034065".parse()?,
    ///     "message-key",
    ///     "SMTP 550: 5.1.1 <ana.quishpe@example.ec>: Recipient address rejected",
    /// );
    /// let AuditKind::NoticeDeadLettered { reason, .. } = event.kind else { unreachable!() };
    /// assert_eq!(reason, "SMTP 550: 5.1.1 <a***@example.ec>: Recipient address rejected");
    /// # Ok::<(), afiliado::identity::MemberIdError>(())
    /// ```
    pub fn dead_letter(at: OffsetDateTime, member: MemberId, message: &str, reason: &str) -> Self {
        Self::new(
            at,
            member,
            AuditKind::NoticeDeadLettered {
                message: message.to_owned(),
                reason: redact_personal_data(reason),
            },
        )
    }
}

/// What an audit event records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
#[non_exhaustive]
pub enum AuditKind {
    /// Registration accepted (or replaced).
    Registered,
    /// Registration refused by cooldown or daily cap.
    RegistrationThrottled,
    /// Registration attempted on an account that already exists.
    RegistrationOnActive,
    /// Recovery identity checks failed (they count against the recovery budget).
    ChecksFailed {
        /// Failures so far.
        failures: u32,
    },
    /// Registration proofs failed (they throttle registration for the day, nothing else).
    RegistrationChecksFailed {
        /// Failures so far today (America/Guayaquil).
        failures: u32,
    },
    /// Wrong activation code.
    WrongCode {
        /// Attempts left.
        attempts_left: u8,
    },
    /// Registration burned by wrong codes.
    RegistrationBurned,
    /// Pending registration expired; its contact data was dropped.
    RegistrationExpired,
    /// Account activated.
    Activated,
    /// Login succeeded.
    LoginSucceeded,
    /// The stored hash was upgraded to the policy's parameters.
    PasswordRehashed,
    /// Login failed.
    LoginFailed {
        /// Failures inside the window, this one included.
        failures: u32,
    },
    /// Login refused because the account is locked.
    LoginRefusedLocked,
    /// A client became a trusted device of the account after a successful login.
    DeviceTrusted,
    /// A trusted device logged in with the right password (a lock caused by other clients
    /// did not stop it).
    TrustedDeviceLogin,
    /// A trusted device gave a wrong password (counted on the device, not the account).
    DeviceLoginFailed {
        /// The device's failures inside the window, this one included.
        failures: u32,
    },
    /// A trusted device reached its failure threshold and is no longer trusted.
    DeviceDistrusted,
    /// Every trusted device of the account was revoked (password reset, email change or
    /// staff suspension).
    DevicesRevoked,
    /// The stored password hash asked for more work than the service's
    /// [`HashCostBounds`](crate::crypto::HashCostBounds) allow and was not verified (the
    /// login counted as failed). Names the algorithm and parameter, never hash material.
    StoredHashRefused {
        /// The hash's algorithm (`"argon2id"`, `"bcrypt"`, `"pbkdf2_sha256"`, …).
        algorithm: String,
        /// The parameter above its bound (`"m_cost_kib"`, `"cost"`, `"iterations"`, …).
        parameter: String,
    },
    /// The account was locked.
    Locked {
        /// Why.
        reason: LockReason,
        /// Lockouts so far.
        lockouts: u32,
        /// When it unlocks by itself.
        until: Option<OffsetDateTime>,
    },
    /// The lock lifted at its scheduled time.
    AutoUnlocked,
    /// An unlock link was issued.
    UnlockRequested,
    /// An unlock request that issued no link: no account, not locked, suspended, or a live
    /// link already in the member's inbox. Recorded so that every request costs the same
    /// store work.
    UnlockRequestIgnored,
    /// A recovery request whose checks passed but that issued no new link: a live one is
    /// already in the member's inbox, or queued. Recorded so that every request costs the
    /// same store work.
    RecoveryRequestIgnored,
    /// Identity checks not run because the budget is spent (the day's registration failures,
    /// or the recovery attempt budget): the attempt is still recorded.
    ChecksRefused,
    /// Unlocked by link.
    Unlocked,
    /// Reset link issued after the checks passed.
    RecoveryStarted,
    /// Reset link expired unused.
    ResetExpired,
    /// Reset cancelled by a successful login with the old password.
    ResetCancelled,
    /// Password replaced through a reset link.
    PasswordReset,
    /// Contact email replaced (at the end of a recovery with a replacement address, or a
    /// staff change confirmed by the new address).
    EmailChanged,
    /// Staff asked to change the contact email; a confirmation link went to the new address.
    EmailChangeRequested,
    /// A staff email change was not confirmed in time and was dropped.
    EmailChangeExpired,
    /// A lock warning was not sent because the day's warnings were spent.
    NoticeSuppressed,
    /// The outbox gave up on a notice (permanent failure or attempts exhausted).
    NoticeDeadLettered {
        /// The message's idempotency key (its `Message-ID`).
        message: String,
        /// Why it was given up on (mail server reply or rendering error; never a secret,
        /// addresses and cédula-like numbers masked).
        reason: String,
    },
    /// A staff operation.
    Staff {
        /// Staff user.
        actor: String,
        /// Stated reason (email addresses and runs of 9 or more digits in it are masked).
        reason: String,
        /// [`crate::core::StaffAction::label`].
        action: String,
    },
}

/// An effect of a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
#[non_exhaustive]
pub enum Effect {
    /// Queue a notice in the outbox (same transaction as the record).
    Notify(Notice),
    /// Append to the audit log (same transaction as the record).
    Audit(AuditEvent),
}
