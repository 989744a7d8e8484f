//! Commands the core decides on, their outcomes and the reasons for refusing them.
//!
//! Commands carry *verified facts* and *digests*, never work to do: the service has already
//! compared knowledge answers against the registry, verified the password with argon2 and
//! turned presented tokens into keyed digests. The core compares digests (in constant time),
//! applies the policy and the clock value it is given, and says what happens.

use time::OffsetDateTime;

use crate::crypto::{Digest, PasswordHash};
use crate::identity::{Email, MemberIdKind};
use crate::password::{Password, PasswordViolations};
use crate::policy::Proof;

use super::state::{Contact, Locale, SecurityEnrollment, StateKind};

/// The verdict of one identity proof, as checked by the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProofResult {
    /// Which proof.
    pub proof: Proof,
    /// Whether the member's answer matched.
    pub passed: bool,
}

impl ProofResult {
    /// A passed proof.
    pub fn passed(proof: Proof) -> Self {
        Self {
            proof,
            passed: true,
        }
    }

    /// A failed proof.
    pub fn failed(proof: Proof) -> Self {
        Self {
            proof,
            passed: false,
        }
    }
}

/// A new password as submitted (activation or reset), with its hash once the service made it.
///
/// The core checks the confirmation and the password policy itself, so no path can reach
/// `Active` with a password the policy rejects. Hashing is slow, so the service first decides
/// with `hash: None`; when everything else is in order the core answers
/// [`Denied::HashRequired`], the service hashes off the executor and decides again.
#[derive(Clone, Debug)]
pub struct NewPassword {
    /// The password.
    pub password: Password,
    /// The confirmation typed a second time.
    pub confirmation: Password,
    /// Argon2id PHC hash of `password`, made with the policy's parameters.
    pub hash: Option<PasswordHash>,
}

/// Registration (first-time password generation) request.
#[derive(Clone, Debug)]
pub struct Register {
    /// Contact data given.
    pub contact: Contact,
    /// Whether the member ticked the terms box.
    pub terms_accepted: bool,
    /// Verdicts of the registration proofs.
    pub proofs: Vec<ProofResult>,
    /// Whether the host's human check passed (ignored when the policy asks for none).
    pub human_verified: bool,
    /// Digest of the freshly generated activation link token.
    pub link: Digest,
    /// Digest of the freshly generated activation code, when the policy uses one.
    pub code: Option<Digest>,
    /// Security image and questions, when the policy enrolls them.
    pub enrollment: SecurityEnrollment,
    /// Language for notices.
    pub locale: Locale,
}

/// Password recovery request ("olvidé mi contraseña" / "recuperar clave").
#[derive(Clone, Debug)]
pub struct StartRecovery {
    /// The email the member typed, for [`Proof::RegisteredEmail`].
    pub claimed_email: Option<Email>,
    /// Verdicts of the knowledge proofs.
    pub proofs: Vec<ProofResult>,
    /// Whether the host's human check passed.
    pub human_verified: bool,
    /// A replacement contact email (IESS step 9), when the policy allows it.
    pub new_email: Option<Email>,
    /// Digest of the freshly generated reset link token.
    pub link: Digest,
}

/// What staff does.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaffAction {
    /// Unlock a locked account (any reason) and clear the identity-check budget.
    Unlock,
    /// Suspend: lock with reason `Staff`, no automatic unlock.
    Suspend,
    /// Replace the contact email. With `staff.confirm_email_change` (every preset) this only
    /// sends `confirm_link` to the new address and tells the old one; the change happens on
    /// [`Command::ConfirmEmailChange`]. Otherwise it is immediate. Either way every
    /// outstanding token dies when the email changes and both addresses are notified.
    ChangeEmail {
        /// The new address.
        email: Email,
        /// Digest of the freshly generated confirmation link (required when the policy asks
        /// for confirmation).
        confirm_link: Option<Digest>,
    },
    /// Send a reset link to the registered email.
    SendReset {
        /// Digest of the freshly generated reset link token.
        link: Digest,
    },
    /// Record that a foreign member without cédula was enrolled in the registry.
    EnrollForeigner,
}

impl StaffAction {
    /// Stable label for audit.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unlock => "unlock",
            Self::Suspend => "suspend",
            Self::ChangeEmail { .. } => "change_email",
            Self::SendReset { .. } => "send_reset",
            Self::EnrollForeigner => "enroll_foreigner",
        }
    }
}

/// One command to the state machine.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Command {
    /// Register or re-register (replaces a pending registration's link and code).
    Register(Register),
    /// Check an activation link without consuming it (mail scanners open links).
    InspectActivation {
        /// Digest of the presented link token.
        link: Digest,
    },
    /// Activate with link, code and a new password.
    Activate {
        /// Digest of the presented link token.
        link: Digest,
        /// Digest of the presented code (bound to the member).
        code: Option<Digest>,
        /// The new password.
        password: NewPassword,
    },
    /// The outcome of one password verification.
    Login {
        /// Whether the password verified against the stored hash.
        password_matched: bool,
        /// A fresh hash with the policy's parameters when the stored one needs an upgrade.
        rehash: Option<PasswordHash>,
    },
    /// The outcome of one password verification, from a client that may hold a trusted-device
    /// token (OWASP "device cookies"). A live device of this account is judged on its own
    /// failures only, so failures from other clients never lock it out (a staff suspension
    /// still does); every other login is [`Command::Login`]. After a successful login from an
    /// untrusted client, `enroll` becomes a trusted device of the account.
    LoginFrom {
        /// Whether the password verified against the stored hash.
        password_matched: bool,
        /// A fresh hash with the policy's parameters when the stored one needs an upgrade.
        rehash: Option<PasswordHash>,
        /// Digest of the device token the client presented, if any.
        device: Option<Digest>,
        /// Digest of a freshly generated device token to trust after a successful login.
        enroll: Option<Digest>,
    },
    /// Ask for an unlock link.
    RequestUnlock {
        /// Digest of the freshly generated unlock token.
        link: Digest,
        /// Whether the host's human check passed.
        human_verified: bool,
    },
    /// Consume an unlock link.
    Unlock {
        /// Digest of the presented token.
        link: Digest,
    },
    /// Start password recovery with the policy's identity checks.
    StartRecovery(StartRecovery),
    /// Consume a reset link with a new password.
    ResetPassword {
        /// Digest of the presented token.
        link: Digest,
        /// The new password.
        password: NewPassword,
        /// Whether the member accepted the policy's declaration.
        declaration_accepted: bool,
    },
    /// Apply the time-driven transitions that are due (expiries, automatic unlock).
    Expire,
    /// Follow the confirmation link of a staff email change (sent to the new address).
    ConfirmEmailChange {
        /// Digest of the presented token.
        link: Digest,
    },
    /// A staff operation.
    Staff {
        /// Who (staff user identifier, audited).
        actor: String,
        /// Why (audited; required).
        reason: String,
        /// What.
        action: StaffAction,
    },
}

/// What a command did, for the service to answer the caller. The service maps outcomes that
/// must look alike (unknown ID, wrong password, locked) to identical responses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A registration was accepted; the activation mail is queued.
    Registered {
        /// When link and code expire.
        expires_at: OffsetDateTime,
    },
    /// The member already has an account; a warning notice is queued to its address.
    AlreadyRegistered,
    /// Nothing sent: cooldown or daily cap reached.
    Throttled,
    /// Identity checks failed.
    ChecksFailed {
        /// Attempts left before the account locks, when the policy has a budget.
        remaining: Option<u32>,
    },
    /// The activation link is valid (nothing consumed).
    ActivationLinkValid {
        /// When it expires.
        expires_at: OffsetDateTime,
        /// Whether the code must be typed too.
        code_required: bool,
    },
    /// Wrong activation code.
    WrongCode {
        /// Attempts left.
        attempts_left: u8,
    },
    /// Last code attempt failed: the registration is gone.
    RegistrationBurned,
    /// The account is active.
    Activated,
    /// Successful login.
    LoggedIn {
        /// Whether the stored hash was upgraded.
        rehashed: bool,
    },
    /// Wrong password, account still active.
    LoginFailed {
        /// Failures inside the window.
        failures: u32,
    },
    /// This failure locked the account.
    Locked {
        /// When it unlocks by itself.
        until: Option<OffsetDateTime>,
    },
    /// Login refused because the account is locked (whatever the password).
    LoginRefusedLocked {
        /// When it unlocks by itself.
        until: Option<OffsetDateTime>,
    },
    /// An unlock link is queued.
    UnlockLinkSent {
        /// When it expires.
        expires_at: OffsetDateTime,
    },
    /// Not locked (or not self-unlockable): nothing sent.
    NotLocked,
    /// Unlocked.
    Unlocked,
    /// A reset link is queued.
    ResetLinkSent {
        /// When it expires.
        expires_at: OffsetDateTime,
    },
    /// No account that could be recovered: nothing sent.
    NotEligible,
    /// Password replaced.
    PasswordReset,
    /// A staff email change was confirmed by the new address.
    EmailChangeConfirmed,
    /// Due time-driven transitions were applied.
    Expired,
    /// A staff operation was applied.
    StaffDone,
}

/// Why a command was refused. Nothing changes when a command is denied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The command does not apply to the account's current state.
    #[error("not applicable to an account in state {state}")]
    NotApplicable {
        /// The state it is in (after due expiries).
        state: StateKind,
    },
    /// The policy does not accept this kind of identifier.
    #[error("identifier kind {0:?} is not accepted by this policy")]
    IdentifierNotAccepted(MemberIdKind),
    /// The policy demands a human check verdict and none passed.
    #[error("human check required")]
    HumanCheckRequired,
    /// Terms not accepted.
    #[error("terms must be accepted")]
    TermsNotAccepted,
    /// A contact field the policy requires is missing.
    #[error("contact field `{0}` is required")]
    MissingContact(&'static str),
    /// A proof the policy requires was not checked by the service.
    #[error("proof {0:?} is required")]
    MissingProof(Proof),
    /// An enrollment item the policy requires is missing.
    #[error("enrollment item `{0}` is required")]
    MissingEnrollment(&'static str),
    /// The policy uses an activation code and none was given.
    #[error("activation code required")]
    CodeRequired,
    /// A code was given but the policy uses none.
    #[error("activation code not expected")]
    UnexpectedCode,
    /// The presented token does not match.
    #[error("invalid or expired link")]
    InvalidToken,
    /// The presented token matched but its lifetime ended.
    #[error("invalid or expired link")]
    TokenExpired,
    /// The new password fails the policy (every unmet rule is listed).
    #[error("password rejected: {0}")]
    PasswordRejected(PasswordViolations),
    /// Password and confirmation differ.
    #[error("password and confirmation differ")]
    ConfirmationMismatch,
    /// Everything is in order: hash the password and decide again.
    #[error("password hash required")]
    HashRequired,
    /// The hash was not made with the policy's parameters.
    #[error("password hash does not use the policy's parameters")]
    HashParamsMismatch,
    /// The declaration must be accepted.
    #[error("declaration must be accepted")]
    DeclarationRequired,
    /// The policy does not allow changing the email in recovery.
    #[error("email change not allowed by this policy")]
    EmailChangeNotAllowed,
    /// The policy offers no such self-service path.
    #[error("not offered by this policy: {0}")]
    NotOffered(&'static str),
    /// The identity-check budget is exhausted. No longer returned by [`decide`](crate::core::decide):
    /// a spent budget answers `Outcome::ChecksFailed { remaining: Some(0) }` and is audited
    /// `ChecksRefused`, so the attempt is still recorded; kept for hosts that match on it.
    #[error("identity checks exhausted")]
    ChecksExhausted,
    /// `Expire` found nothing due.
    #[error("nothing due")]
    NothingDue,
    /// Staff commands need an actor and a reason.
    #[error("staff actor and reason are required")]
    MissingStaffReason,
    /// A staff field is longer than its limit (`actor` or `reason`).
    #[error("staff `{0}` is too long")]
    StaffInputTooLong(&'static str),
    /// The new email is the account's current one.
    #[error("the new email is the current one")]
    SameEmail,
    /// The policy confirms staff email changes and no confirmation link was given.
    #[error("email change confirmation link required")]
    ConfirmationLinkRequired,
}
