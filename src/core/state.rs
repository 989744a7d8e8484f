//! Account records and their states.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::crypto::{Digest, PasswordHash};
use crate::identity::{Email, Landline, MemberId, MobilePhone};

/// Language of the member's notices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Locale {
    /// Spanish as written in Ecuador (default).
    #[default]
    #[serde(rename = "es-EC")]
    EsEc,
    /// English.
    #[serde(rename = "en")]
    En,
}

/// Contact data of a member, parsed at the boundary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Where every link goes.
    pub email: Email,
    /// Mobile phone, when the policy asks for it.
    pub mobile: Option<MobilePhone>,
    /// Landline, when the policy asks for it.
    pub landline: Option<Landline>,
}

impl Contact {
    /// Contact with only an email.
    pub fn email_only(email: Email) -> Self {
        Self {
            email,
            mobile: None,
            landline: None,
        }
    }
}

/// One security question the member answered at enrollment (IESS). The answer is stored
/// only as an argon2 hash of its normalised form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolledAnswer {
    /// Identifier of the question in the host's question bank.
    pub question: String,
    /// Argon2 PHC hash of the normalised answer.
    pub answer: PasswordHash,
}

/// Knowledge data enrolled at registration (IESS): never an authenticator, only a gate for
/// issuing a link to the registered email.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEnrollment {
    /// Argon2 hash of the chosen security image's identifier.
    pub image: Option<PasswordHash>,
    /// Security questions and hashed answers.
    pub answers: Vec<EnrolledAnswer>,
}

/// A link token as stored: its keyed digest and its lifetime. Valid while
/// `issued_at <= now < expires_at`: at `expires_at` exactly it is dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    /// HMAC-SHA-256 digest of the token under the server key.
    pub digest: Digest,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// First instant at which it is no longer valid.
    pub expires_at: OffsetDateTime,
}

impl IssuedToken {
    /// Whether `now` is inside the token's lifetime.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at
    }
}

/// A registration waiting for its activation link (and code).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The activation link.
    pub link: IssuedToken,
    /// Digest of the activation code (bound to the member), when the policy uses one.
    pub code: Option<Digest>,
    /// Wrong code submissions left before the registration is burned.
    pub code_attempts_left: u8,
    /// Contact data given at registration (dropped on expiry).
    pub contact: Contact,
    /// When the member accepted the terms, if the policy asks.
    pub terms_accepted_at: Option<OffsetDateTime>,
    /// Security image and questions enrolled at registration.
    pub enrollment: SecurityEnrollment,
}

/// What an activated account carries in every state after activation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// PHC string of the password hash (argon2id, or a legacy format awaiting rehash).
    pub password: PasswordHash,
    /// Contact data.
    pub contact: Contact,
    /// Security image and questions.
    pub enrollment: SecurityEnrollment,
    /// When the account was activated.
    pub activated_at: OffsetDateTime,
    /// When the password was last set.
    pub password_changed_at: OffsetDateTime,
    /// Last successful login.
    pub last_login_at: Option<OffsetDateTime>,
}

/// Why an account is locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LockReason {
    /// The failure threshold was reached.
    FailedLogins,
    /// The identity-check budget of recovery was exhausted.
    FailedRecovery,
    /// Staff suspended the account.
    Staff,
}

/// Details of a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Why.
    pub reason: LockReason,
    /// Since when.
    pub since: OffsetDateTime,
    /// When it lifts by itself (evaluated lazily); `None`: it does not.
    pub auto_unlock_at: Option<OffsetDateTime>,
    /// Outstanding unlock link, if one was requested.
    pub unlock_link: Option<IssuedToken>,
}

/// Standing of an account underneath a pending reset: where it returns when the reset link
/// expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Standing {
    /// It was active, with these recent failures.
    Active {
        /// Failed logins inside the window.
        failures: Vec<OffsetDateTime>,
    },
    /// It was locked.
    Locked {
        /// The lock.
        lock: Lock,
    },
}

/// The state of one member's account. See the crate docs for the diagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
#[non_exhaustive]
pub enum AccountState {
    /// Member known to the registry, no online account.
    Unregistered,
    /// Registration accepted, waiting for activation.
    PendingActivation(Pending),
    /// Can log in.
    Active {
        /// Password, contact and enrollment.
        profile: Profile,
        /// Failed logins inside the policy window (at most `threshold - 1` of them).
        failures: Vec<OffsetDateTime>,
    },
    /// Login refused until unlocked.
    Locked {
        /// Password, contact and enrollment.
        profile: Profile,
        /// The lock.
        lock: Lock,
    },
    /// Identity checks passed, reset link issued.
    Resetting {
        /// Password, contact and enrollment.
        profile: Profile,
        /// The reset link.
        reset: IssuedToken,
        /// Where the account returns if the link expires.
        return_to: Standing,
        /// A replacement contact email given with the recovery checks (where the policy
        /// allows it). The reset link goes there, but the account's email changes only when
        /// the reset completes; an abandoned reset leaves it as it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_email: Option<Email>,
    },
}

/// The name of a state, for errors and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StateKind {
    /// [`AccountState::Unregistered`]
    Unregistered,
    /// [`AccountState::PendingActivation`]
    PendingActivation,
    /// [`AccountState::Active`]
    Active,
    /// [`AccountState::Locked`]
    Locked,
    /// [`AccountState::Resetting`]
    Resetting,
}

impl std::fmt::Display for StateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unregistered => "unregistered",
            Self::PendingActivation => "pending_activation",
            Self::Active => "active",
            Self::Locked => "locked",
            Self::Resetting => "resetting",
        })
    }
}

impl AccountState {
    /// The state's name.
    pub fn kind(&self) -> StateKind {
        match self {
            Self::Unregistered => StateKind::Unregistered,
            Self::PendingActivation(_) => StateKind::PendingActivation,
            Self::Active { .. } => StateKind::Active,
            Self::Locked { .. } => StateKind::Locked,
            Self::Resetting { .. } => StateKind::Resetting,
        }
    }

    /// The profile of an activated account.
    pub fn profile(&self) -> Option<&Profile> {
        match self {
            Self::Active { profile, .. }
            | Self::Locked { profile, .. }
            | Self::Resetting { profile, .. } => Some(profile),
            Self::Unregistered | Self::PendingActivation(_) => None,
        }
    }

    /// The lock in force, directly or underneath a pending reset.
    pub fn lock(&self) -> Option<&Lock> {
        match self {
            Self::Locked { lock, .. }
            | Self::Resetting {
                return_to: Standing::Locked { lock },
                ..
            } => Some(lock),
            _ => None,
        }
    }
}

/// A staff email change waiting for the new address to follow its confirmation link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEmailChange {
    /// The new address (it receives the link).
    pub email: Email,
    /// The confirmation link.
    pub link: IssuedToken,
}

/// A counter that restarts every calendar day (America/Guayaquil).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyCount {
    /// The day the count belongs to.
    pub day: Option<Date>,
    /// How many so far that day.
    pub count: u32,
}

impl DailyCount {
    /// The count on `day` (0 when the stored day is another).
    pub fn on(&self, day: Date) -> u32 {
        if self.day == Some(day) { self.count } else { 0 }
    }

    /// The count after one more on `day`.
    pub fn bumped(&self, day: Date) -> Self {
        Self {
            day: Some(day),
            count: self.on(day).saturating_add(1),
        }
    }
}

/// Everything the library persists about one member's account. Holds digests and hashes
/// only, never a secret in clear.
///
/// `version` belongs to the store: the core copies it unchanged and the store's
/// `commit(record, expected_version)` increments it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountRecord {
    /// Whose account.
    pub member: MemberId,
    /// Optimistic-concurrency version, owned by the store.
    pub version: u64,
    /// The state.
    pub state: AccountState,
    /// Language of notices.
    pub locale: Locale,
    /// Lockouts since the last successful login (drives progressive lockout).
    pub lockouts: u32,
    /// Failed identity checks (registration proofs, recovery) since the last reset.
    pub check_failures: u32,
    /// Lock warnings sent today (`Policy.notices.lock_warnings_per_day`).
    pub notices_sent: DailyCount,
    /// Registrations accepted today.
    pub registrations: DailyCount,
    /// When the last activation mail was issued (resend cooldown).
    pub last_registration_at: Option<OffsetDateTime>,
    /// Registration forms with failed proofs today (they throttle registration only).
    #[serde(default)]
    pub registration_failures: DailyCount,
    /// A staff email change waiting for confirmation by the new address.
    #[serde(default)]
    pub pending_email: Option<PendingEmailChange>,
    /// Registration-attempt warnings sent today (at most one a day).
    #[serde(default)]
    pub registration_warnings: DailyCount,
    /// Clients trusted after a successful login (OWASP device cookies), oldest first.
    #[serde(default)]
    pub devices: Vec<TrustedDevice>,
    /// When the latest unlock link to the registered address was (or is queued to be) mailed.
    #[serde(default)]
    pub unlock_link_at: Option<OffsetDateTime>,
    /// When the latest reset link to the registered address was (or is queued to be) mailed.
    #[serde(default)]
    pub reset_link_at: Option<OffsetDateTime>,
    /// A live unlock link whose lock lifted by itself: a new lock picks it up again, so the
    /// link the member holds keeps working.
    #[serde(default)]
    pub spare_unlock_link: Option<IssuedToken>,
    /// Failed logins and the lock of an ID with no activated account (unknown, registry
    /// member only, pending activation), counted exactly like an account's so that guessing
    /// passwords for it answers the same and locks at the same failure.
    #[serde(default, skip_serializing_if = "ShadowLockout::is_empty")]
    pub shadow: ShadowLockout,
}

/// The lockout of an ID that has no activated account: the same failures, window, lock
/// durations and answers as an account's (see [`AccountRecord::shadow`]), so a guesser
/// cannot tell by locking it whether an account exists. Nothing is ever mailed for it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowLockout {
    /// Failed logins inside the policy window.
    #[serde(default)]
    pub failures: Vec<OffsetDateTime>,
    /// The lock in force, as an account's would be.
    #[serde(default)]
    pub lock: Option<Lock>,
}

impl ShadowLockout {
    /// Nothing counted and no lock.
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty() && self.lock.is_none()
    }
}

/// A client that logged in successfully and keeps a device token (in a cookie): its logins
/// are judged on its own failures, so other clients' failures never lock it out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedDevice {
    /// Keyed digest of the device token.
    pub digest: Digest,
    /// When it was trusted.
    pub issued_at: OffsetDateTime,
    /// When its trust ends.
    pub expires_at: OffsetDateTime,
    /// Its failed logins since its last successful one.
    pub failures: Vec<OffsetDateTime>,
}

impl AccountRecord {
    /// A fresh record for a member with no online account.
    pub fn new(member: MemberId) -> Self {
        Self {
            member,
            version: 0,
            state: AccountState::Unregistered,
            locale: Locale::default(),
            lockouts: 0,
            check_failures: 0,
            notices_sent: DailyCount::default(),
            registrations: DailyCount::default(),
            last_registration_at: None,
            registration_failures: DailyCount::default(),
            pending_email: None,
            registration_warnings: DailyCount::default(),
            devices: Vec::new(),
            unlock_link_at: None,
            reset_link_at: None,
            spare_unlock_link: None,
            shadow: ShadowLockout::default(),
        }
    }

    /// The stored password hash the service verifies a login against, when there is one.
    pub fn password_hash(&self) -> Option<&PasswordHash> {
        self.state.profile().map(|p| &p.password)
    }

    /// Every live token digest the record holds, with its purpose (for store indexes).
    pub fn token_digests(&self) -> Vec<(crate::crypto::TokenPurpose, Digest)> {
        use crate::crypto::TokenPurpose;
        let mut out = Vec::new();
        match &self.state {
            AccountState::PendingActivation(p) => {
                out.push((TokenPurpose::Activation, p.link.digest));
            }
            AccountState::Resetting { reset, .. } => {
                out.push((TokenPurpose::Reset, reset.digest));
            }
            _ => {}
        }
        if let Some(link) = self.state.lock().and_then(|l| l.unlock_link) {
            out.push((TokenPurpose::Unlock, link.digest));
        }
        if let Some(change) = &self.pending_email {
            out.push((TokenPurpose::EmailChange, change.link.digest));
        }
        out
    }
}
