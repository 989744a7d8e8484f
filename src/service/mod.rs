//! The async service: drives the pure core through the ports.
//!
//! For every call it reads the clock once, loads the account, does the slow or random work
//! (argon2 in a bounded pool off the executor, token generation, registry checks), asks
//! [`core::decide`](crate::core::decide), and commits the next record together with its
//! outbox messages and audit events in one store transaction. On a version conflict it
//! reloads and decides again with the same facts, without hashing again.
//!
//! Unknown IDs, wrong passwords and (unless the policy reveals it) locked accounts get the
//! same answer, and every login path performs exactly one password verification (a dummy
//! one for unknown IDs), so neither the answer nor its timing tells whether an ID exists.

mod dispatch;
mod hashing;
mod normalize;

use std::borrow::Cow;
use std::sync::Arc;

use rand::Rng as _;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub use dispatch::{DispatchReport, DispatcherHandle, OutboxDispatcher};
#[cfg(feature = "test-util")]
pub use hashing::CountingHasher;
pub use hashing::{Argon2Hasher, Busy, HashPool, PasswordHasher};
pub use normalize::normalize_answer;

use crate::core::{
    AccountRecord, AuditEvent, AuditKind, Command, Contact, Decision, Denied, Effect,
    EnrolledAnswer, Locale, NewPassword, Outcome, ProofResult, Register, SecurityEnrollment,
    StaffAction, StartRecovery, decide,
};
use crate::crypto::{
    CryptoError, Digest, DigestKey, HashCostBounds, HashParams, NumericCode, PasswordHash, Token,
    TokenPurpose,
};
use crate::identity::{Email, Landline, MemberId, MobilePhone, is_forbidden_char};
use crate::password::Password;
use crate::policy::{Policy, Proof};
use crate::ports::{
    AccountStore, Clock, HumanCheck, MemberDirectory, MemberFacts, NewMessage, StoreError,
};
use crate::seal::{LinkSecrets, SealKey};

use hashing::PoolError;

/// Why a service call failed. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A field of the request is malformed; `field` names it.
    #[error("invalid `{field}`: {reason}")]
    InvalidInput {
        /// The request field.
        field: &'static str,
        /// Which rule failed.
        reason: String,
    },
    /// The policy asks for a human check and the host's verdict was missing or negative.
    #[error("human check failed")]
    HumanCheckFailed,
    /// The core refused the command (expired link, rejected password, …).
    #[error(transparent)]
    Denied(#[from] Denied),
    /// Hashing capacity exhausted: try again later.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Concurrent updates kept winning; nothing was written.
    #[error("too many concurrent updates; nothing was written")]
    Contended,
    /// Hashing or sealing failed.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// [`ServiceBuilder::build`]: the hasher makes hashes with other parameters than the
    /// policy's `hashing`, so the core would refuse every new password it hashed.
    #[error("the hasher's parameters {hasher:?} differ from the policy's `hashing` {policy:?}")]
    HasherMismatch {
        /// The policy's `hashing`.
        policy: HashParams,
        /// [`PasswordHasher::params`] of the hasher given to the builder.
        hasher: HashParams,
    },
    /// Too many failures from this client source (`policy.sources`): refused until
    /// `retry_after` (HTTP 429 with `Retry-After`).
    #[error("too many failed attempts from this source; retry after {retry_after}")]
    Throttled {
        /// When the source's window ends.
        retry_after: OffsetDateTime,
    },
    /// A blocking task was lost (runtime shutting down).
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl From<PoolError> for ServiceError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Busy => Self::Busy(Busy),
            PoolError::Lost => Self::Internal("hashing task lost"),
        }
    }
}

fn invalid(field: &'static str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::InvalidInput {
        field,
        reason: e.to_string(),
    }
}

/// A question drawn from the member's records (IESS "preguntas de historia laboral").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordQuestion {
    /// Name of any employer on record.
    Employer,
    /// Year of the first contribution.
    FirstContributionYear,
    /// Year of the latest contribution.
    LastContributionYear,
}

/// Every record question the library can ask, in the order they are asked.
const RECORD_QUESTIONS: [RecordQuestion; 3] = [
    RecordQuestion::Employer,
    RecordQuestion::FirstContributionYear,
    RecordQuestion::LastContributionYear,
];
// `Policy::validate` refuses counts above what can be asked.
const _: () = assert!(RECORD_QUESTIONS.len() == crate::policy::MAX_RECORD_QUESTIONS as usize);

/// Longest knowledge answer accepted (affiliate number, record or security answer), in
/// characters.
pub const MAX_ANSWER_CHARS: usize = 200;

impl RecordQuestion {
    /// The questions asked, in order, when a policy asks `count` of them. The same for every
    /// ID, so the question list reveals nothing.
    pub fn first(count: u8) -> Vec<RecordQuestion> {
        RECORD_QUESTIONS
            .into_iter()
            .take(usize::from(count))
            .collect()
    }

    fn accepts(self, facts: &MemberFacts, answer: &str) -> bool {
        let a = normalize_answer(answer);
        match self {
            Self::Employer => facts
                .employers
                .iter()
                .any(|e| ct_str_eq(&normalize_answer(e), &a)),
            Self::FirstContributionYear => facts
                .contribution_years
                .iter()
                .min()
                .is_some_and(|y| a == y.to_string()),
            Self::LastContributionYear => facts
                .contribution_years
                .iter()
                .max()
                .is_some_and(|y| a == y.to_string()),
        }
    }
}

fn ct_str_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Knowledge answers given in a registration or recovery form.
///
/// Exactly one answer per question asked: a form with a missing, extra or repeated answer
/// (or one longer than [`MAX_ANSWER_CHARS`]) is refused with
/// [`ServiceError::InvalidInput`] naming `record_answers` or `security_answers`, and still
/// counts as a failed attempt, so a form cannot carry many guesses at once.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Answers {
    /// Affiliate number from the member's credential (ISSPOL).
    pub affiliate_number: Option<String>,
    /// Day and month of birth.
    pub birth_day_month: Option<(u8, u8)>,
    /// Answers to [`RecordQuestion`]s.
    pub record: Vec<(RecordQuestion, String)>,
    /// Security-question answers: `(question id, answer)`.
    pub security: Vec<(String, String)>,
    /// The chosen security image's identifier.
    pub security_image: Option<String>,
}

/// A registration (first-time password generation) form.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RegisterRequest {
    /// Cédula or foreigner code, as typed.
    pub member_id: String,
    /// Contact email, as typed.
    pub email: String,
    /// Mobile phone, as typed.
    pub mobile: Option<String>,
    /// Landline, as typed.
    pub landline: Option<String>,
    /// The terms box.
    pub terms_accepted: bool,
    /// Proofs of identity; for IESS also the security image and questions to enroll.
    pub answers: Answers,
    /// The human check widget's response, when the policy asks for one.
    pub human_response: Option<String>,
    /// Language of the mails.
    pub locale: Locale,
}

impl RegisterRequest {
    /// A form with an ID and an email; set the other fields as the policy requires.
    pub fn new(member_id: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            member_id: member_id.into(),
            email: email.into(),
            ..Self::default()
        }
    }
}

/// A password recovery form.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RecoveryRequest {
    /// Cédula or foreigner code, as typed.
    pub member_id: String,
    /// The registered email, as typed (ISSPOL).
    pub email: Option<String>,
    /// Knowledge answers (IESS).
    pub answers: Answers,
    /// A replacement email (IESS step 9), when the policy allows it.
    pub new_email: Option<String>,
    /// The human check widget's response.
    pub human_response: Option<String>,
}

impl RecoveryRequest {
    /// A recovery form for an ID.
    pub fn new(member_id: impl Into<String>) -> Self {
        Self {
            member_id: member_id.into(),
            ..Self::default()
        }
    }
}

/// Answer to a registration. `Submitted` covers accepted registrations, already-registered
/// accounts and throttled resends alike; an ID that is not in the registry gets the same
/// `ChecksFailed` as wrong proofs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterOutcome {
    /// "If the data is correct, you will receive an email."
    Submitted,
    /// The identity proofs did not match (or the ID is not in the registry, or its budget
    /// is spent). How many attempts are left is audited, never shown: a count that goes
    /// down would tell a stranger that the ID exists.
    ChecksFailed,
}

/// Answer to opening an activation link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkStatus {
    /// The link works until `expires_at`.
    Valid {
        /// Expiry.
        expires_at: OffsetDateTime,
        /// Whether the form must ask for the emailed code.
        code_required: bool,
    },
    /// Unknown, used or expired.
    Invalid,
}

/// Answer to an activation form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActivateOutcome {
    /// The account is active.
    Activated,
    /// Wrong code.
    WrongCode {
        /// Attempts left.
        attempts_left: u8,
    },
    /// Last attempt failed; the member must register again.
    RegistrationBurned,
}

/// Answer to a login.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginOutcome {
    /// Logged in: the host opens a session for `member`.
    Success {
        /// Who.
        member: MemberId,
    },
    /// Wrong ID or password (or a locked account, unless the policy reveals locks).
    Failed,
    /// The account is locked (only when the policy reveals it).
    Locked {
        /// When it unlocks by itself.
        until: Option<OffsetDateTime>,
    },
}

/// Answer to [`AccountService::login_device`].
#[derive(Debug)]
#[non_exhaustive]
pub struct DeviceLogin {
    /// The answer to show.
    pub outcome: LoginOutcome,
    /// A new trusted-device token, after a successful login from a browser that had none
    /// (keep it in an `HttpOnly`, `Secure` cookie; it is a secret).
    pub device_token: Option<Token>,
}

/// Answer to a recovery form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryOutcome {
    /// "If the data is correct, you will receive an email."
    Submitted,
    /// Knowledge checks failed (or the ID is unknown, or its budget is spent). Attempts
    /// left are audited, never shown, so the answer does not tell whether the ID exists.
    ChecksFailed,
}

/// A staff operation.
#[derive(Clone)]
#[non_exhaustive]
pub enum StaffRequest {
    /// Unlock (after the verification the reason records).
    Unlock,
    /// Suspend.
    Suspend,
    /// Replace the contact email. Under `staff.confirm_email_change` (every preset) a
    /// confirmation link goes to the new address and the old one is told; the change takes
    /// effect in [`AccountService::confirm_email_change`], or expires unconfirmed.
    ChangeEmail(String),
    /// Mail a reset link.
    SendReset,
    /// Enroll a foreign member without cédula in the registry.
    EnrollForeigner(MemberFacts),
}

/// Builder for [`AccountService`].
#[derive(Debug)]
pub struct ServiceBuilder {
    policy: Policy,
    digest_key: DigestKey,
    seal_key: SealKey,
    store: Option<Arc<dyn AccountStore>>,
    directory: Option<Arc<dyn MemberDirectory>>,
    human: Option<Arc<dyn HumanCheck>>,
    clock: Option<Arc<dyn Clock>>,
    hasher: Option<Arc<dyn PasswordHasher>>,
    throttle: Option<Arc<dyn crate::ports::SourceThrottle>>,
    pool: Option<HashPool>,
    max_retries: u32,
    response_floor: std::time::Duration,
    older_digest_keys: Vec<DigestKey>,
}

/// Default of [`ServiceBuilder::response_floor`].
pub const DEFAULT_RESPONSE_FLOOR: std::time::Duration = std::time::Duration::from_millis(50);

/// Random jitter added to the response floor, in microseconds (see
/// [`ServiceBuilder::response_floor`]).
const RESPONSE_JITTER_MICROS: u64 = 1_000;

/// Largest [`ServiceBuilder::response_floor`] accepted.
pub const MAX_RESPONSE_FLOOR: std::time::Duration = std::time::Duration::from_secs(2);

impl std::fmt::Debug for dyn AccountStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountStore")
    }
}
impl std::fmt::Debug for dyn MemberDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemberDirectory")
    }
}
impl std::fmt::Debug for dyn crate::ports::SourceThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceThrottle")
    }
}
impl std::fmt::Debug for dyn HumanCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HumanCheck")
    }
}

impl ServiceBuilder {
    /// Sets the store (required).
    pub fn store(mut self, store: Arc<dyn AccountStore>) -> Self {
        self.store = Some(store);
        self
    }
    /// Sets the member registry (required).
    pub fn directory(mut self, directory: Arc<dyn MemberDirectory>) -> Self {
        self.directory = Some(directory);
        self
    }
    /// Sets the human-check verifier (required when the policy asks for human checks).
    pub fn human_check(mut self, human: Arc<dyn HumanCheck>) -> Self {
        self.human = Some(human);
        self
    }
    /// Sets the clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Sets the password hasher (default: argon2id with the policy's parameters). Its
    /// [`params`](PasswordHasher::params) must equal the policy's `hashing`, or
    /// [`build`](Self::build) fails with [`ServiceError::HasherMismatch`].
    pub fn hasher(mut self, hasher: Arc<dyn PasswordHasher>) -> Self {
        self.hasher = Some(hasher);
        self
    }
    /// Sets where per-source failures are counted (usually the store itself, so every
    /// instance on one database shares the counts). Without it `policy.sources` is not
    /// enforced.
    pub fn throttle(mut self, throttle: Arc<dyn crate::ports::SourceThrottle>) -> Self {
        self.throttle = Some(throttle);
        self
    }
    /// Sets the hashing pool (default: one worker per core).
    pub fn pool(mut self, pool: HashPool) -> Self {
        self.pool = Some(pool);
        self
    }
    /// Retries after a version conflict before giving up with [`ServiceError::Contended`].
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }
    /// The least time a login, registration, recovery or unlock request takes to answer
    /// (default [`DEFAULT_RESPONSE_FLOOR`], 50 ms; at most [`MAX_RESPONSE_FLOOR`]); each
    /// answer comes between the floor and the floor plus a random millisecond.
    ///
    /// Every such request already does the same store work whatever the ID, but a store
    /// still updates a large record a little more slowly than a small one, and a request that
    /// mails the member (an unlock link for a locked account) seals and queues a message.
    /// Answering no earlier than the floor, measured from the call, hides those differences
    /// as long as the work fits under it: pick a floor above the slowest request your store
    /// answers in normal operation (`cargo bench --bench enumeration --all-features` shows
    /// the latencies and whether any difference remains). The wait is a timer, not work: it
    /// holds no hashing worker, connection or lock. `Duration::ZERO` turns it off, for tests.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// use afiliado::crypto::{DigestKey, HashParams};
    /// use afiliado::memory::{MemoryDirectory, MemoryStore};
    /// use afiliado::seal::SealKey;
    /// use afiliado::service::{AccountService, ServiceError};
    /// use afiliado::Policy;
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(1); // keys: use real randomness
    /// let mut builder = |floor| {
    ///     AccountService::builder(Policy::isspol(), DigestKey::generate(&mut rng), SealKey::generate(&mut rng))
    ///         .store(Arc::new(MemoryStore::new()))
    ///         .directory(Arc::new(MemoryDirectory::new()))
    ///         .response_floor(floor)
    ///         .build()
    /// };
    /// assert!(builder(Duration::from_millis(50)).is_ok());
    /// assert!(matches!(
    ///     builder(Duration::from_secs(10)),
    ///     Err(ServiceError::InvalidInput { field: "response_floor", .. })
    /// ));
    /// ```
    pub fn response_floor(mut self, floor: std::time::Duration) -> Self {
        self.response_floor = floor;
        self
    }

    /// A digest key used before the current one (repeat for several). Links, codes and
    /// device tokens it digested keep working until they expire; everything new is digested
    /// with the current key. Per-source failure counts start afresh under a new key.
    ///
    /// Rotating keys: put the new key first (the `digest_key` of [`AccountService::builder`])
    /// and list the old one here; drop it once the longest-lived token it digested has
    /// expired (trusted devices: `policy.devices.lifetime`, 90 days by default). Seal keys
    /// rotate the same way on the [`OutboxDispatcher`] with [`crate::seal::SealKeys`].
    pub fn older_digest_key(mut self, key: DigestKey) -> Self {
        self.older_digest_keys.push(key);
        self
    }

    /// Builds the service.
    ///
    /// # Errors
    ///
    /// [`ServiceError::InvalidInput`] for an invalid policy, a missing store, directory
    /// or (when the policy asks for one) human check, or a response floor above
    /// [`MAX_RESPONSE_FLOOR`]; [`ServiceError::HasherMismatch`]
    /// when the hasher's parameters are not the policy's `hashing`.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use afiliado::crypto::{DigestKey, HashParams};
    /// use afiliado::memory::{MemoryDirectory, MemoryStore};
    /// use afiliado::seal::SealKey;
    /// use afiliado::service::{AccountService, Argon2Hasher, ServiceError};
    /// use afiliado::Policy;
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(1); // keys: use real randomness
    /// let policy = Policy::isspol(); // hashing: HashParams::OWASP
    /// let cheap = Argon2Hasher::new(HashParams::danger_insecure_for_tests())?;
    /// let built = AccountService::builder(
    ///     policy,
    ///     DigestKey::generate(&mut rng),
    ///     SealKey::generate(&mut rng),
    /// )
    /// .store(Arc::new(MemoryStore::new()))
    /// .directory(Arc::new(MemoryDirectory::new()))
    /// .hasher(Arc::new(cheap))
    /// .build();
    /// assert!(matches!(built, Err(ServiceError::HasherMismatch { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<AccountService, ServiceError> {
        self.policy.validate().map_err(|e| invalid("policy", e))?;
        if self.response_floor > MAX_RESPONSE_FLOOR {
            return Err(invalid(
                "response_floor",
                format_args!("at most {} ms", MAX_RESPONSE_FLOOR.as_millis()),
            ));
        }
        let store = self.store.ok_or(ServiceError::InvalidInput {
            field: "store",
            reason: "required".into(),
        })?;
        let directory = self.directory.ok_or(ServiceError::InvalidInput {
            field: "directory",
            reason: "required".into(),
        })?;
        let needs_human = self.policy.registration.human_check
            || self.policy.recovery.human_check
            || self.policy.unlock.human_check;
        let human = match (self.human, needs_human) {
            (Some(h), _) => Some(h),
            (None, false) => None,
            (None, true) => {
                return Err(ServiceError::InvalidInput {
                    field: "human_check",
                    reason: "the policy asks for human checks".into(),
                });
            }
        };
        let hasher: Arc<dyn PasswordHasher> = match self.hasher {
            Some(h) => h,
            None => Arc::new(Argon2Hasher::new(self.policy.hashing)?),
        };
        if hasher.params() != self.policy.hashing {
            return Err(ServiceError::HasherMismatch {
                policy: self.policy.hashing,
                hasher: hasher.params(),
            });
        }
        let bounds = self.policy.hash_cost_bounds();
        let clock: Arc<dyn Clock> = match self.clock {
            Some(c) => c,
            None => Arc::new(crate::ports::SystemClock),
        };
        Ok(AccountService {
            inner: Arc::new(Inner {
                policy: self.policy,
                digest_key: self.digest_key,
                seal_key: self.seal_key,
                store,
                directory,
                human,
                clock,
                hasher,
                bounds,
                pool: self.pool.unwrap_or_default(),
                max_retries: self.max_retries,
                response_floor: self.response_floor,
                older_digest_keys: self.older_digest_keys,
                account_locks: AccountLocks::new(),
                throttle: self.throttle,
            }),
            source: None,
        })
    }
}

/// The account service. Cheap to clone; share one per process.
#[derive(Clone, Debug)]
pub struct AccountService {
    inner: Arc<Inner>,
    /// Keyed pseudonym of the client source this handle speaks for (`for_source`).
    source: Option<Digest>,
}

#[derive(Debug)]
struct Inner {
    policy: Policy,
    digest_key: DigestKey,
    seal_key: SealKey,
    store: Arc<dyn AccountStore>,
    directory: Arc<dyn MemberDirectory>,
    human: Option<Arc<dyn HumanCheck>>,
    clock: Arc<dyn Clock>,
    hasher: Arc<dyn PasswordHasher>,
    /// Stored hashes above these are refused unverified (a dummy verification instead).
    bounds: HashCostBounds,
    pool: HashPool,
    max_retries: u32,
    /// Least answer time of the requests an ID must not show through (see the builder).
    response_floor: std::time::Duration,
    /// Digest keys before the current one: links and device tokens they digested still work.
    older_digest_keys: Vec<DigestKey>,
    /// Serialises load → decide → commit per account inside this instance.
    account_locks: AccountLocks,
    throttle: Option<Arc<dyn crate::ports::SourceThrottle>>,
}

/// What one verification found.
struct Verified {
    matched: bool,
    /// Why the stored hash was refused unverified (it asked for more than the bounds).
    refused: Option<CryptoError>,
}

/// Striped per-account locks: a member's commands run one at a time in this instance.
/// Members are spread over the stripes with a per-process random hash key, so which members
/// share a stripe cannot be chosen from outside.
struct AccountLocks {
    stripes: Box<[tokio::sync::Mutex<()>]>,
    key: std::collections::hash_map::RandomState,
}

impl AccountLocks {
    const STRIPES: usize = 1024;

    fn new() -> Self {
        Self {
            stripes: (0..Self::STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            key: std::collections::hash_map::RandomState::new(),
        }
    }

    async fn lock(&self, member: &MemberId) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        use std::hash::BuildHasher;
        let n = u64::try_from(self.stripes.len()).unwrap_or(1).max(1);
        let at = usize::try_from(self.key.hash_one(member.as_str()) % n).unwrap_or(0);
        match self.stripes.get(at) {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }
}

impl std::fmt::Debug for AccountLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountLocks")
            .field("stripes", &self.stripes.len())
            .finish()
    }
}

/// What a decided command produced, with the secrets its mails carry.
struct Applied {
    decision: Decision,
}

impl AccountService {
    /// Starts building a service for `policy`, with the server keys for token digests and
    /// outbox sealing.
    pub fn builder(policy: Policy, digest_key: DigestKey, seal_key: SealKey) -> ServiceBuilder {
        ServiceBuilder {
            policy,
            digest_key,
            seal_key,
            store: None,
            directory: None,
            human: None,
            clock: None,
            hasher: None,
            throttle: None,
            pool: None,
            max_retries: 8,
            response_floor: DEFAULT_RESPONSE_FLOOR,
            older_digest_keys: Vec::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The record questions a form must show (the same for every ID).
    pub fn record_questions(&self, for_recovery: bool) -> Vec<RecordQuestion> {
        let proofs = if for_recovery {
            &self.inner.policy.recovery.proofs
        } else {
            &self.inner.policy.registration.proofs
        };
        proofs
            .iter()
            .find_map(|p| match p {
                Proof::RecordQuestions { count } => Some(RecordQuestion::first(*count)),
                _ => None,
            })
            .unwrap_or_default()
    }

    // ---- plumbing --------------------------------------------------------------------

    fn parse_member(&self, text: &str) -> Result<MemberId, ServiceError> {
        text.parse::<MemberId>()
            .map_err(|e| invalid("member_id", e))
    }

    async fn human_verified(
        &self,
        required: bool,
        response: Option<&str>,
    ) -> Result<bool, ServiceError> {
        if !required {
            return Ok(false);
        }
        let (Some(h), Some(r)) = (&self.inner.human, response) else {
            return Err(ServiceError::HumanCheckFailed);
        };
        if h.verify(r).await? {
            Ok(true)
        } else {
            Err(ServiceError::HumanCheckFailed)
        }
    }

    /// Runs `request`, answering no earlier than the response floor after the call began.
    async fn floored<T>(&self, request: impl std::future::Future<Output = T>) -> T {
        let floor = self.inner.response_floor;
        if floor.is_zero() {
            return request.await;
        }
        // Plus up to a millisecond of jitter: what the floor leaves of the work is a few
        // microseconds in how the waiting task wakes up (measured by the enumeration bench:
        // an outbox insert a floor earlier still nudged it), and a random millisecond drowns that.
        #[allow(clippy::disallowed_methods)] // service: jitter from the OS-seeded RNG
        let jitter =
            std::time::Duration::from_micros(rand::rng().random_range(0..RESPONSE_JITTER_MICROS));
        #[allow(clippy::disallowed_methods)] // service: the floor is measured in real time
        let deadline = std::time::Instant::now() + floor + jitter;
        let answer = request.await;
        wait_until(deadline).await;
        answer
    }

    async fn load(&self, member: &MemberId) -> Result<AccountRecord, ServiceError> {
        Ok(self
            .inner
            .store
            .load(member)
            .await?
            .unwrap_or_else(|| AccountRecord::new(member.clone())))
    }

    /// Load → decide → commit, retrying on version conflicts with the same facts.
    async fn apply(
        &self,
        member: &MemberId,
        now: OffsetDateTime,
        command: &Command,
        secrets: Option<&LinkSecrets>,
    ) -> Result<Result<Applied, Denied>, ServiceError> {
        self.apply_from(None, member, now, secrets, |_| Cow::Borrowed(command))
            .await
    }

    /// The load → decide → commit loop shared by every command. `first` is a record the
    /// caller already loaded (saves one read); after a conflict the record is reloaded and
    /// `command_for` picks the command again for it, with the same facts (no new hashing).
    async fn apply_from<'c>(
        &self,
        first: Option<AccountRecord>,
        member: &MemberId,
        now: OffsetDateTime,
        secrets: Option<&LinkSecrets>,
        command_for: impl Fn(&AccountRecord) -> Cow<'c, Command>,
    ) -> Result<Result<Applied, Denied>, ServiceError> {
        self.apply_audited(first, member, now, secrets, None, command_for)
            .await
    }

    /// [`apply_from`](Self::apply_from) that also appends `extra` to the audit events of the
    /// same commit. When the core refuses the command, the unchanged record is committed
    /// with `extra` alone, so the event is recorded whatever the account's state.
    async fn apply_audited<'c>(
        &self,
        first: Option<AccountRecord>,
        member: &MemberId,
        now: OffsetDateTime,
        secrets: Option<&LinkSecrets>,
        extra: Option<&AuditKind>,
        command_for: impl Fn(&AccountRecord) -> Cow<'c, Command>,
    ) -> Result<Result<Applied, Denied>, ServiceError> {
        // Commands about one account queue here, so concurrent callers in this instance never
        // race each other to the store's version check: a storm of requests about one account
        // is answered one by one instead of with `Contended`. (Instances sharing a database
        // still meet at the version check and retry.)
        let _turn = self.inner.account_locks.lock(member).await;
        let mut attempt = 0;
        let mut loaded = first;
        loop {
            let record = match loaded.take() {
                Some(r) => r,
                None => self.load(member).await?,
            };
            let extra_event = extra.map(|k| AuditEvent::new(now, member.clone(), k.clone()));
            let decision = match decide(&record, &command_for(&record), now, &self.inner.policy) {
                Ok(d) => d,
                Err(denied) => {
                    let Some(event) = extra_event else {
                        return Ok(Err(denied));
                    };
                    let version = record.version;
                    match self
                        .inner
                        .store
                        .commit(&record, version, Vec::new(), vec![event])
                        .await
                    {
                        Ok(_) => return Ok(Err(denied)),
                        Err(StoreError::Conflict { .. }) if attempt < self.inner.max_retries => {
                            attempt += 1;
                            continue;
                        }
                        Err(StoreError::Conflict { .. }) => return Err(ServiceError::Contended),
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            if decision.next == record && decision.effects.is_empty() && extra_event.is_none() {
                // Nothing happened (e.g. an unlock request for an account that is not
                // locked, or for an ID with no account): write nothing.
                return Ok(Ok(Applied { decision }));
            }
            let version = record.version;
            let (outbox, mut audit) = self.effects(&decision, version, now, secrets);
            audit.extend(extra_event);
            match self
                .inner
                .store
                .commit(&decision.next, version, outbox, audit)
                .await
            {
                Ok(_) => return Ok(Ok(Applied { decision })),
                Err(StoreError::Conflict { .. }) if attempt < self.inner.max_retries => {
                    attempt += 1;
                }
                Err(StoreError::Conflict { .. }) => return Err(ServiceError::Contended),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn effects(
        &self,
        decision: &Decision,
        version: u64,
        now: OffsetDateTime,
        secrets: Option<&LinkSecrets>,
    ) -> (Vec<NewMessage>, Vec<AuditEvent>) {
        let member = &decision.next.member;
        let mut outbox = Vec::new();
        let mut audit = Vec::new();
        for (i, effect) in decision.effects.iter().enumerate() {
            match effect {
                Effect::Notify(notice) => {
                    // Stable per committed version: a retried commit reuses nothing (the
                    // conflicting one wrote nothing), a replayed one is deduplicated.
                    // A keyed pseudonym, so the Message-ID built from it does not carry
                    // the cédula.
                    let (v, n) = (version.saturating_add(1).to_string(), i.to_string());
                    let key = self
                        .inner
                        .digest_key
                        .pseudonym("outbox", &[member.as_str(), &v, &n])
                        .to_hex();
                    let sealed = match (notice.kind.link_purpose(), secrets) {
                        (Some(_), Some(s)) => self.seal(s, &key),
                        _ => Vec::new(),
                    };
                    // A link queued for the end of its cooldown is due then.
                    outbox.push(NewMessage::new(
                        key,
                        member.clone(),
                        notice.clone(),
                        sealed,
                        notice.not_before.unwrap_or(now),
                    ));
                }
                Effect::Audit(a) => audit.push(a.clone()),
            }
        }
        (outbox, audit)
    }

    fn seal(&self, secrets: &LinkSecrets, key: &str) -> Vec<u8> {
        #[allow(clippy::disallowed_methods)] // service: nonces from the OS-seeded RNG
        let mut rng = rand::rng();
        self.inner.seal_key.seal(secrets, key.as_bytes(), &mut rng)
    }

    fn new_token(&self, purpose: TokenPurpose) -> (Token, Digest) {
        #[allow(clippy::disallowed_methods)] // service: tokens from the OS-seeded RNG
        let mut rng = rand::rng();
        let token = Token::generate(&mut rng);
        let digest = self.inner.digest_key.digest_token(purpose, &token);
        (token, digest)
    }

    fn new_code(&self, member: &MemberId) -> Result<Option<(NumericCode, Digest)>, ServiceError> {
        let Some(digits) = self.inner.policy.activation.code_digits else {
            return Ok(None);
        };
        #[allow(clippy::disallowed_methods)] // service: codes from the OS-seeded RNG
        let mut rng = rand::rng();
        let code = NumericCode::generate(digits, &mut rng)?;
        let digest =
            self.inner
                .digest_key
                .digest_code(TokenPurpose::ActivationCode, member.as_str(), &code);
        Ok(Some((code, digest)))
    }

    async fn hash(&self, secret: &str) -> Result<PasswordHash, ServiceError> {
        let hasher = self.inner.hasher.clone();
        let bytes = Zeroizing::new(secret.as_bytes().to_vec());
        Ok(self.inner.pool.run(move || hasher.hash(&bytes)).await??)
    }

    /// Exactly one verification: against `hash`, or a dummy one when there is none.
    async fn verify(&self, secret: &str, hash: Option<PasswordHash>) -> Result<bool, ServiceError> {
        Ok(self.verify_checked(secret, hash).await?.matched)
    }

    /// [`verify`](Self::verify), also telling whether the stored hash was refused: a hash
    /// above the [`HashCostBounds`] is never verified (it could allocate terabytes or burn
    /// minutes); a dummy verification at the policy's cost runs instead, so the answer and
    /// its timing are those of a wrong password.
    async fn verify_checked(
        &self,
        secret: &str,
        hash: Option<PasswordHash>,
    ) -> Result<Verified, ServiceError> {
        let hasher = self.inner.hasher.clone();
        let bounds = self.inner.bounds;
        let bytes = Zeroizing::new(secret.as_bytes().to_vec());
        Ok(self
            .inner
            .pool
            .run(move || match hash.map(|h| (bounds.check(&h), h)) {
                Some((Ok(()), h)) => Verified {
                    matched: hasher.verify(&bytes, &h).unwrap_or(false),
                    refused: None,
                },
                Some((Err(e), _)) => {
                    let _ = std::hint::black_box(hasher.verify_dummy(&bytes));
                    Verified {
                        matched: false,
                        refused: Some(e),
                    }
                }
                None => Verified {
                    matched: hasher.verify_dummy(&bytes),
                    refused: None,
                },
            })
            .await?)
    }

    /// The registration rules that depend on the form alone (identifier kind, terms,
    /// required contact fields, enrollment items), checked before any lookup or hashing.
    fn check_registration_form(
        &self,
        req: &RegisterRequest,
        member: &MemberId,
        has_mobile: bool,
        has_landline: bool,
    ) -> Result<(), ServiceError> {
        let policy = &self.inner.policy;
        let reg = &policy.registration;
        if !policy.identifiers.contains(&member.kind()) {
            return Err(Denied::IdentifierNotAccepted(member.kind()).into());
        }
        if reg.terms.is_some() && !req.terms_accepted {
            return Err(Denied::TermsNotAccepted.into());
        }
        if reg.mobile == crate::policy::Ask::Required && !has_mobile {
            return Err(Denied::MissingContact("mobile").into());
        }
        if reg.landline == crate::policy::Ask::Required && !has_landline {
            return Err(Denied::MissingContact("landline").into());
        }
        if reg.security_image
            && req
                .answers
                .security_image
                .as_deref()
                .is_none_or(|i| i.trim().is_empty())
        {
            return Err(Denied::MissingEnrollment("security_image").into());
        }
        let wanted = usize::from(reg.security_questions);
        let given = &req.answers.security;
        if given.len() < wanted {
            return Err(Denied::MissingEnrollment("security_questions").into());
        }
        // Bounded hashing: exactly the enrolled number of answers, to distinct questions.
        if given.len() > wanted {
            return Err(invalid(
                "security_answers",
                format!("exactly {wanted} answers are enrolled"),
            ));
        }
        let mut questions: Vec<&str> = given.iter().map(|(q, _)| q.as_str()).collect();
        questions.sort_unstable();
        questions.dedup();
        if questions.len() != given.len() {
            return Err(invalid(
                "security_answers",
                "each question may be answered once",
            ));
        }
        // Bounded, and never blank: checked here, on the form alone, so the answer is the
        // same whether or not the registry facts were right.
        if reg.security_image && req.answers.security_image.as_deref().is_some_and(too_long) {
            return Err(invalid("security_image", "too long"));
        }
        if given.iter().any(|(q, a)| too_long(q) || too_long(a)) {
            return Err(invalid("security_answers", "an answer is too long"));
        }
        // Question ids are stored in clear (PostgreSQL cannot store a NUL in JSON).
        if given.iter().any(|(q, _)| q.chars().any(is_forbidden_char)) {
            return Err(invalid("security_answers", "control character"));
        }
        if given
            .iter()
            .any(|(q, a)| q.trim().is_empty() || normalize_answer(a).is_empty())
        {
            return Err(invalid("security_answers", "an answer is empty"));
        }
        Ok(())
    }

    /// Hashes the enrollment answers (normalised), so a later recovery can check them.
    async fn enrollment(&self, answers: &Answers) -> Result<SecurityEnrollment, ServiceError> {
        let reg = &self.inner.policy.registration;
        let image = match (&answers.security_image, reg.security_image) {
            (Some(i), true) => Some(self.hash(&normalize_answer(i)).await?),
            _ => None,
        };
        let mut enrolled = Vec::new();
        if reg.security_questions > 0 {
            for (question, answer) in &answers.security {
                let a = normalize_answer(answer);
                if a.is_empty() {
                    return Err(invalid("security_answers", "an answer is empty"));
                }
                enrolled.push(EnrolledAnswer {
                    question: question.clone(),
                    answer: self.hash(&a).await?,
                });
            }
        }
        Ok(SecurityEnrollment {
            image,
            answers: enrolled,
        })
    }

    /// One answer per question asked, nothing else, nothing oversized. `Err` is a field error
    /// the caller still counts as a failed attempt.
    fn check_answer_shape(
        &self,
        proofs: &[Proof],
        answers: &Answers,
        for_recovery: bool,
    ) -> Result<(), ServiceError> {
        if answers.affiliate_number.as_deref().is_some_and(too_long) {
            return Err(invalid("affiliate_number", "too long"));
        }
        let asked = proofs
            .iter()
            .find_map(|p| match p {
                Proof::RecordQuestions { count } => Some(RecordQuestion::first(*count)),
                _ => None,
            })
            .unwrap_or_default();
        let exactly_asked = answers.record.len() == asked.len()
            && asked
                .iter()
                .all(|q| answers.record.iter().filter(|(aq, _)| aq == q).count() == 1);
        if !exactly_asked {
            return Err(invalid(
                "record_answers",
                "exactly one answer to each question asked",
            ));
        }
        if answers.record.iter().any(|(_, a)| too_long(a)) {
            return Err(invalid("record_answers", "an answer is too long"));
        }
        if for_recovery {
            let wanted = proofs
                .iter()
                .find_map(|p| match p {
                    Proof::SecurityQuestions { count } => Some(usize::from(*count)),
                    _ => None,
                })
                .unwrap_or(0);
            let given = &answers.security;
            let distinct = given
                .iter()
                .enumerate()
                .all(|(i, (q, _))| given.iter().skip(i.saturating_add(1)).all(|(o, _)| o != q));
            if given.len() != wanted || !distinct {
                return Err(invalid(
                    "security_answers",
                    "exactly one answer to each question asked",
                ));
            }
            if given.iter().any(|(q, a)| too_long(q) || too_long(a)) {
                return Err(invalid("security_answers", "an answer is too long"));
            }
            if answers.security_image.as_deref().is_some_and(too_long) {
                return Err(invalid("security_image", "too long"));
            }
        }
        Ok(())
    }

    /// Checks registry-based proofs (no hashing) against the member's facts; `None` facts
    /// (unknown ID) fail every proof.
    fn registry_proofs(
        &self,
        required: &[Proof],
        answers: &Answers,
        facts: Option<&MemberFacts>,
    ) -> Vec<ProofResult> {
        let mut out = Vec::new();
        for proof in required {
            let passed = match (proof, facts) {
                (_, None) => false,
                (Proof::AffiliateNumber, Some(f)) => {
                    match (&answers.affiliate_number, &f.affiliate_number) {
                        (Some(given), Some(real)) => {
                            ct_str_eq(&normalize_answer(given), &normalize_answer(real))
                        }
                        _ => false,
                    }
                }
                (Proof::BirthDayMonth, Some(f)) => {
                    answers.birth_day_month
                        == Some((f.birth_date.day(), u8::from(f.birth_date.month())))
                }
                (Proof::RecordQuestions { count }, Some(f)) => {
                    // One answer per question (`check_answer_shape`): the first is the only.
                    let asked = RecordQuestion::first(*count);
                    asked.iter().all(|q| {
                        answers
                            .record
                            .iter()
                            .find(|(aq, _)| aq == q)
                            .is_some_and(|(_, a)| q.accepts(f, a))
                    })
                }
                _ => continue,
            };
            out.push(ProofResult {
                proof: *proof,
                passed,
            });
        }
        out
    }

    // ---- flows -----------------------------------------------------------------------

    /// This service speaking for one client source (its address or network, as the host sees
    /// it): failures through the returned handle are counted per source, across every ID,
    /// and once `policy.sources.threshold` is reached in a window the calls answer
    /// [`ServiceError::Throttled`] until the window ends (needs a store given to
    /// [`ServiceBuilder::throttle`]). The source is kept only as a keyed pseudonym. Cheap:
    /// make one per request.
    pub fn for_source(&self, source: &str) -> AccountService {
        AccountService {
            inner: Arc::clone(&self.inner),
            source: Some(self.inner.digest_key.pseudonym("source", &[source])),
        }
    }

    /// The source's pseudonym and the window containing `now` (start, end), when throttling
    /// applies to this handle.
    fn source_window(
        &self,
        now: OffsetDateTime,
    ) -> Option<(Digest, OffsetDateTime, OffsetDateTime)> {
        let source = self.source?;
        self.inner.throttle.as_ref()?;
        let w = i64::try_from(self.inner.policy.sources.window.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        let start = now.unix_timestamp().checked_div_euclid(w)?.checked_mul(w)?;
        let start = OffsetDateTime::from_unix_timestamp(start).ok()?;
        let end = start.checked_add(time::Duration::seconds(w))?;
        Some((source, start, end))
    }

    /// Refuses the call when this handle's source spent its failures for the window.
    async fn check_source(&self, now: OffsetDateTime) -> Result<(), ServiceError> {
        let (Some((source, start, end)), Some(throttle)) =
            (self.source_window(now), &self.inner.throttle)
        else {
            return Ok(());
        };
        if throttle.source_failures(&source, start).await? >= self.inner.policy.sources.threshold {
            return Err(ServiceError::Throttled { retry_after: end });
        }
        Ok(())
    }

    /// Counts one failure for this handle's source.
    async fn source_failed(&self, now: OffsetDateTime) -> Result<(), ServiceError> {
        if let (Some((source, start, _)), Some(throttle)) =
            (self.source_window(now), &self.inner.throttle)
        {
            throttle.add_source_failure(&source, start).await?;
        }
        Ok(())
    }

    /// Registration: validates the form, checks the registry proofs, and queues the
    /// activation mail (link, and code when the policy uses one). Refused with
    /// [`ServiceError::Throttled`] when the handle's source spent its failures
    /// ([`for_source`](Self::for_source)); failed checks and malformed answers count.
    pub async fn register(&self, req: RegisterRequest) -> Result<RegisterOutcome, ServiceError> {
        self.floored(async {
            let now = self.inner.clock.now();
            self.check_source(now).await?;
            let result = self.register_core(req, now).await;
            if matches!(
                result,
                Ok(RegisterOutcome::ChecksFailed) | Err(ServiceError::InvalidInput { .. })
            ) {
                self.source_failed(now).await?;
            }
            result
        })
        .await
    }

    async fn register_core(
        &self,
        req: RegisterRequest,
        now: OffsetDateTime,
    ) -> Result<RegisterOutcome, ServiceError> {
        let policy = &self.inner.policy;
        let member = self.parse_member(&req.member_id)?;
        let email: Email = req.email.parse().map_err(|e| invalid("email", e))?;
        let mobile = parse_opt::<MobilePhone>(req.mobile.as_deref(), "mobile")?;
        let landline = parse_opt::<Landline>(req.landline.as_deref(), "landline")?;
        // Every rule that depends on the form alone is checked here, before the registry is
        // consulted, so the answer to a malformed form is the same for every ID.
        self.check_registration_form(&req, &member, mobile.is_some(), landline.is_some())?;
        let human = self
            .human_verified(
                policy.registration.human_check,
                req.human_response.as_deref(),
            )
            .await?;
        // A form with more (or fewer) answers than questions is refused, and still counts
        // as a failed attempt: one request can never carry many guesses.
        let shape = self.check_answer_shape(&policy.registration.proofs, &req.answers, false);
        let facts = self.inner.directory.find(&member).await?;
        let mut proofs =
            self.registry_proofs(&policy.registration.proofs, &req.answers, facts.as_ref());
        if shape.is_err() {
            proofs.iter_mut().for_each(|p| p.passed = false);
        }
        // An ID the registry does not know goes through the core like any other, with every
        // proof failed: counted against its day's registration budget in one commit, so it
        // costs the same store work and gets the same answer as a member's wrong proofs.
        let (token, link) = self.new_token(TokenPurpose::Activation);
        let code = self.new_code(&member)?;
        let secrets = LinkSecrets::new(token, code.as_ref().map(|c| c.0.clone()));
        let mut cmd = Command::Register(Register {
            contact: Contact {
                email,
                mobile,
                landline,
            },
            terms_accepted: req.terms_accepted,
            proofs,
            human_verified: human,
            link,
            code: code.map(|c| c.1),
            enrollment: SecurityEnrollment::default(),
            locale: req.locale,
        });
        // Argon2 runs only when the core would register: it asks for the enrollment items
        // (`MissingEnrollment`) only after the form, the proofs, the daily budgets and the
        // account's state allow a registration. Wrong answers, spent budgets and forms for
        // an existing account cost no hashing, whatever the ID, and cannot starve logins.
        let mut hashed = false;
        let applied = loop {
            match self.apply(&member, now, &cmd, Some(&secrets)).await? {
                Err(Denied::MissingEnrollment(_)) if !hashed && shape.is_ok() => {
                    hashed = true;
                    let enrollment = self.enrollment(&req.answers).await?;
                    if let Command::Register(r) = &mut cmd {
                        r.enrollment = enrollment;
                    }
                }
                other => break other,
            }
        };
        // The failed attempt is committed; the caller hears the field error.
        shape?;
        match applied {
            Ok(a) => Ok(match a.decision.outcome {
                Outcome::ChecksFailed { .. } => RegisterOutcome::ChecksFailed,
                _ => RegisterOutcome::Submitted,
            }),
            // A spent budget answers like any failed check.
            Err(Denied::ChecksExhausted) => Ok(RegisterOutcome::ChecksFailed),
            Err(d) => Err(d.into()),
        }
    }

    fn parse_token(&self, text: &str) -> Result<Token, ServiceError> {
        Token::parse(text).map_err(|e| invalid("token", e))
    }

    /// Every digest key, the current one first (older ones verify what they digested).
    fn digest_keys(&self) -> impl Iterator<Item = &DigestKey> {
        std::iter::once(&self.inner.digest_key).chain(&self.inner.older_digest_keys)
    }

    /// `digest` under every listed key, and of those the first that `known` recognises (the
    /// current key's when none does): what the record holds, whichever key digested it.
    fn digest_known(
        &self,
        digest: impl Fn(&DigestKey) -> Digest,
        known: impl Fn(&Digest) -> bool,
    ) -> Digest {
        let current = digest(&self.inner.digest_key);
        if known(&current) {
            return current;
        }
        self.inner
            .older_digest_keys
            .iter()
            .map(digest)
            .find(|d| known(d))
            .unwrap_or(current)
    }

    /// The record holding `token`, looked up under the current digest key and then under
    /// each older one (a key rotation kills no live link).
    async fn by_token(
        &self,
        purpose: TokenPurpose,
        token: &Token,
    ) -> Result<(Digest, Option<AccountRecord>), ServiceError> {
        let mut first = None;
        for key in self.digest_keys() {
            let digest = key.digest_token(purpose, token);
            if let Some(record) = self.inner.store.load_by_token(purpose, &digest).await? {
                return Ok((digest, Some(record)));
            }
            first.get_or_insert(digest);
        }
        let current = first.unwrap_or_else(|| self.inner.digest_key.digest_token(purpose, token));
        Ok((current, None))
    }

    /// Opening the activation link: reports whether it works, consumes nothing.
    pub async fn inspect_activation(&self, token: &str) -> Result<LinkStatus, ServiceError> {
        let now = self.inner.clock.now();
        let token = self.parse_token(token)?;
        let (link, record) = self.by_token(TokenPurpose::Activation, &token).await?;
        let Some(record) = record else {
            return Ok(LinkStatus::Invalid);
        };
        Ok(
            match decide(
                &record,
                &Command::InspectActivation { link },
                now,
                &self.inner.policy,
            ) {
                Ok(Decision {
                    outcome:
                        Outcome::ActivationLinkValid {
                            expires_at,
                            code_required,
                        },
                    ..
                }) => LinkStatus::Valid {
                    expires_at,
                    code_required,
                },
                _ => LinkStatus::Invalid,
            },
        )
    }

    /// Submitting the activation form: link token, code (when the policy uses one), new
    /// password and its confirmation.
    pub async fn activate(
        &self,
        token: &str,
        code: Option<&str>,
        password: Password,
        confirmation: Password,
    ) -> Result<ActivateOutcome, ServiceError> {
        let now = self.inner.clock.now();
        let token = self.parse_token(token)?;
        let (link, record) = self.by_token(TokenPurpose::Activation, &token).await?;
        let record = record.ok_or(Denied::InvalidToken)?;
        let code = match (code, self.inner.policy.activation.code_digits) {
            (Some(c), Some(d)) => {
                let c = NumericCode::parse(c, d).map_err(|e| invalid("code", e))?;
                let stored = match &record.state {
                    crate::core::AccountState::PendingActivation(p) => p.code,
                    _ => None,
                };
                // Under whichever listed key digested the stored code (the current one for
                // a wrong code).
                Some(self.digest_known(
                    |k| k.digest_code(TokenPurpose::ActivationCode, record.member.as_str(), &c),
                    |d| Some(*d) == stored,
                ))
            }
            _ => None,
        };
        let password = NewPassword {
            password,
            confirmation,
            hash: None,
        };
        let cmd = Command::Activate {
            link,
            code,
            password,
        };
        let applied = self.with_password(&record, now, cmd).await?;
        Ok(match applied.decision.outcome {
            Outcome::WrongCode { attempts_left } => ActivateOutcome::WrongCode { attempts_left },
            Outcome::RegistrationBurned => ActivateOutcome::RegistrationBurned,
            _ => ActivateOutcome::Activated,
        })
    }

    /// Two-phase decision for commands carrying a new password: hash only when the core
    /// says everything else is in order, then apply (retries reuse the hash).
    async fn with_password(
        &self,
        record: &AccountRecord,
        now: OffsetDateTime,
        mut cmd: Command,
    ) -> Result<Applied, ServiceError> {
        if let Err(Denied::HashRequired) = decide(record, &cmd, now, &self.inner.policy) {
            let (Command::Activate { password, .. } | Command::ResetPassword { password, .. }) =
                &mut cmd
            else {
                return Err(ServiceError::Internal("not a password command"));
            };
            let secret = Zeroizing::new(password.password.expose_secret().to_owned());
            password.hash = Some(self.hash(&secret).await?);
        }
        // The record was just loaded: start from it (a conflict reloads).
        Ok(self
            .apply_from(Some(record.clone()), &record.member, now, None, |_| {
                Cow::Borrowed(&cmd)
            })
            .await??)
    }

    /// Login: exactly one password verification, whatever the ID.
    pub async fn login(
        &self,
        member_id: &str,
        password: Password,
    ) -> Result<LoginOutcome, ServiceError> {
        // No device is trusted for a caller that cannot keep a token.
        Ok(self
            .login_impl(member_id, password, None, false)
            .await?
            .outcome)
    }

    /// Login from a browser that may keep a trusted-device token (OWASP "device cookies").
    ///
    /// Give the token the browser presented (from its cookie), if any. A live token of this
    /// member makes the login judged on that device's own failures: wrong passwords from
    /// other clients never lock the member's own browser out (a staff suspension still
    /// does). After a successful login from a browser without one, the answer carries a new
    /// [`DeviceLogin::device_token`] for the host to set as a long-lived, `HttpOnly`,
    /// `Secure` cookie. Devices stay trusted for `policy.devices.lifetime`, lose their trust
    /// after `policy.devices.threshold` wrong passwords, and are all revoked on a password
    /// reset, an email change or a staff suspension. A malformed, expired, revoked or other
    /// member's token is simply ignored, and the call costs exactly one verification either
    /// way.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use afiliado::crypto::{DigestKey, HashParams};
    /// # use afiliado::memory::{MemoryDirectory, MemoryStore};
    /// # use afiliado::seal::SealKey;
    /// # use afiliado::service::{AccountService, LoginOutcome};
    /// # use afiliado::{Password, Policy};
    /// # use rand::SeedableRng;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    /// # let mut policy = Policy::isspol();
    /// # policy.hashing = HashParams::danger_insecure_for_tests();
    /// # let service = AccountService::builder(policy, DigestKey::generate(&mut rng), SealKey::generate(&mut rng))
    /// #     .store(Arc::new(MemoryStore::new()))
    /// #     .directory(Arc::new(MemoryDirectory::new()))
    /// #     .build()?;
    /// let cookie: Option<String> = None; // what the browser sent
    /// let answer = service
    ///     .login_device("1710034065", Password::new("Clave2026x"), cookie.as_deref())
    ///     .await?;
    /// if let LoginOutcome::Success { .. } = answer.outcome {
    ///     if let Some(token) = answer.device_token {
    ///         // set-cookie: device=<token>; HttpOnly; Secure; SameSite=Strict
    ///         let _value: &str = token.expose_secret();
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn login_device(
        &self,
        member_id: &str,
        password: Password,
        device_token: Option<&str>,
    ) -> Result<DeviceLogin, ServiceError> {
        self.login_impl(member_id, password, device_token, true)
            .await
    }

    async fn login_impl(
        &self,
        member_id: &str,
        password: Password,
        device_token: Option<&str>,
        trust_new_device: bool,
    ) -> Result<DeviceLogin, ServiceError> {
        self.floored(async {
            let now = self.inner.clock.now();
            self.check_source(now).await?;
            let answer = self
                .login_core(member_id, password, device_token, trust_new_device, now)
                .await?;
            if !matches!(answer.outcome, LoginOutcome::Success { .. }) {
                self.source_failed(now).await?;
            }
            Ok(answer)
        })
        .await
    }

    async fn login_core(
        &self,
        member_id: &str,
        password: Password,
        device_token: Option<&str>,
        trust_new_device: bool,
        now: OffsetDateTime,
    ) -> Result<DeviceLogin, ServiceError> {
        let plain = |outcome| DeviceLogin {
            outcome,
            device_token: None,
        };
        let policy = &self.inner.policy;
        // Longer than any password the policy accepts: refused before hashing.
        if policy.password.exceeds_max_length(&password) {
            return Err(invalid("password", "too long"));
        }
        let Ok(member) = member_id.parse::<MemberId>() else {
            // Malformed IDs cost the same as unknown ones.
            self.verify(password.expose_secret(), None).await?;
            return Ok(plain(LoginOutcome::Failed));
        };
        // The device the browser claims (ignored when malformed), and a fresh one to trust
        // if this login succeeds from an untrusted browser.
        let device_token = device_token.and_then(|t| Token::parse(t).ok());
        let (new_device, enroll) = if policy.devices.enabled && trust_new_device {
            let (token, digest) = self.new_token(TokenPurpose::Device);
            (Some(token), Some(digest))
        } else {
            (None, None)
        };
        let record = self.inner.store.load(&member).await?;
        // The device as the record knows it, under whichever listed key digested it.
        let device = device_token.map(|t| {
            self.digest_known(
                |k| k.digest_token(TokenPurpose::Device, &t),
                |d| {
                    record
                        .as_ref()
                        .is_some_and(|r| r.devices.iter().any(|dev| dev.digest == *d))
                },
            )
        });
        let stored = record.as_ref().and_then(|r| r.password_hash().cloned());
        let checked = self
            .verify_checked(password.expose_secret(), stored.clone())
            .await?;
        let matched = checked.matched;
        // A stored hash above the bounds was not verified: the login fails like a wrong
        // password, and the refusal is audited in the same commit.
        let refused = match checked.refused {
            Some(CryptoError::CostAboveBound {
                algorithm,
                parameter,
                ..
            }) => Some(AuditKind::StoredHashRefused {
                algorithm: algorithm.to_owned(),
                parameter: parameter.to_owned(),
            }),
            _ => None,
        };
        // An ID with no activated account is still recorded: its failures are counted and
        // locked like an account's, in one commit, so it costs the same store work and gets
        // the same answers as a wrong password for an account.
        let record = record.unwrap_or_else(|| AccountRecord::new(member.clone()));
        // Rehash only when the core would let this login in: hashing for a locked account
        // would make a right password slower than a wrong one (a guessing oracle).
        let would_log_in = matches!(
            decide(
                &record,
                &Command::LoginFrom {
                    password_matched: matched,
                    rehash: None,
                    device,
                    enroll,
                },
                now,
                policy,
            ),
            Ok(Decision {
                outcome: Outcome::LoggedIn { .. },
                ..
            })
        );
        let rehash = match &stored {
            Some(stored) if would_log_in && self.inner.hasher.needs_rehash(stored) => {
                Some(self.hash(password.expose_secret()).await?)
            }
            _ => None,
        };
        let cmd = Command::LoginFrom {
            password_matched: matched,
            rehash,
            device,
            enroll,
        };
        let applied = match self
            .apply_login(
                &record,
                stored.as_ref(),
                now,
                &cmd,
                device,
                refused.as_ref(),
            )
            .await?
        {
            Ok(a) => a,
            Err(_) => return Ok(plain(LoginOutcome::Failed)),
        };
        let trusted_now = applied
            .decision
            .audit()
            .any(|e| e.kind == AuditKind::DeviceTrusted);
        let outcome = match applied.decision.outcome {
            Outcome::LoggedIn { .. } => LoginOutcome::Success { member },
            Outcome::LoginRefusedLocked { until } | Outcome::Locked { until }
                if policy.lockout.reveal_lock_state =>
            {
                LoginOutcome::Locked { until }
            }
            _ => LoginOutcome::Failed,
        };
        Ok(DeviceLogin {
            outcome,
            device_token: new_device.filter(|_| trusted_now),
        })
    }

    /// Like [`apply`](Self::apply), but a login's verification is only valid for the hash it
    /// was made against: if a concurrent reset changed the hash, the attempt counts as failed.
    async fn apply_login(
        &self,
        record: &AccountRecord,
        verified_against: Option<&PasswordHash>,
        now: OffsetDateTime,
        cmd: &Command,
        device: Option<Digest>,
        refused: Option<&AuditKind>,
    ) -> Result<Result<Applied, Denied>, ServiceError> {
        // Still counted against the device it came from.
        let failed = Command::LoginFrom {
            password_matched: false,
            rehash: None,
            device,
            enroll: None,
        };
        self.apply_audited(
            Some(record.clone()),
            &record.member,
            now,
            None,
            refused,
            |current| {
                if current.password_hash() == verified_against {
                    Cow::Borrowed(cmd)
                } else {
                    Cow::Owned(failed.clone())
                }
            },
        )
        .await
    }

    /// Asks for an unlock link. Answers the same whether or not the ID exists or is locked.
    pub async fn request_unlock(
        &self,
        member_id: &str,
        human_response: Option<&str>,
    ) -> Result<(), ServiceError> {
        self.floored(self.request_unlock_core(member_id, human_response))
            .await
    }

    async fn request_unlock_core(
        &self,
        member_id: &str,
        human_response: Option<&str>,
    ) -> Result<(), ServiceError> {
        let now = self.inner.clock.now();
        self.check_source(now).await?;
        let member = self.parse_member(member_id)?;
        let human = self
            .human_verified(self.inner.policy.unlock.human_check, human_response)
            .await?;
        let (token, link) = self.new_token(TokenPurpose::Unlock);
        let secrets = LinkSecrets::new(token, None);
        let cmd = Command::RequestUnlock {
            link,
            human_verified: human || !self.inner.policy.unlock.human_check,
        };
        match self.apply(&member, now, &cmd, Some(&secrets)).await? {
            Ok(_) | Err(Denied::NotApplicable { .. }) => {}
            Err(d) => return Err(d.into()),
        }
        // Every unlock request counts against the source, whether or not it sent a link: the
        // same store work for every ID (and a member asks for a link once, not fifty times).
        self.source_failed(now).await?;
        Ok(())
    }

    /// Follows an unlock link.
    pub async fn unlock(&self, token: &str) -> Result<(), ServiceError> {
        let now = self.inner.clock.now();
        let token = self.parse_token(token)?;
        let (link, record) = self.by_token(TokenPurpose::Unlock, &token).await?;
        let record = record.ok_or(Denied::InvalidToken)?;
        self.apply(&record.member, now, &Command::Unlock { link }, None)
            .await??;
        Ok(())
    }

    /// Password recovery: the policy's identity checks, then a reset link to the registered
    /// (or, where allowed, the replacement) email. Refused with [`ServiceError::Throttled`]
    /// when the handle's source spent its failures; failed checks and malformed answers count.
    pub async fn start_recovery(
        &self,
        req: RecoveryRequest,
    ) -> Result<RecoveryOutcome, ServiceError> {
        self.floored(async {
            let now = self.inner.clock.now();
            self.check_source(now).await?;
            let result = self.start_recovery_core(req, now).await;
            if matches!(
                result,
                Ok(RecoveryOutcome::ChecksFailed) | Err(ServiceError::InvalidInput { .. })
            ) {
                self.source_failed(now).await?;
            }
            result
        })
        .await
    }

    async fn start_recovery_core(
        &self,
        req: RecoveryRequest,
        now: OffsetDateTime,
    ) -> Result<RecoveryOutcome, ServiceError> {
        let policy = &self.inner.policy;
        let member = self.parse_member(&req.member_id)?;
        let claimed = parse_opt::<Email>(req.email.as_deref(), "email")?;
        let new_email = parse_opt::<Email>(req.new_email.as_deref(), "new_email")?;
        // Form-only rules first, identical for every ID.
        if !policy.identifiers.contains(&member.kind()) {
            return Err(Denied::IdentifierNotAccepted(member.kind()).into());
        }
        if new_email.is_some() && !policy.recovery.allow_email_change {
            return Err(Denied::EmailChangeNotAllowed.into());
        }
        if claimed.is_none() && policy.recovery.proofs.contains(&Proof::RegisteredEmail) {
            return Err(Denied::MissingProof(Proof::RegisteredEmail).into());
        }
        let human = self
            .human_verified(policy.recovery.human_check, req.human_response.as_deref())
            .await?;
        let shape = self.check_answer_shape(&policy.recovery.proofs, &req.answers, true);
        let facts = self.inner.directory.find(&member).await?;
        let record = self.inner.store.load(&member).await?;
        let mut proofs =
            self.registry_proofs(&policy.recovery.proofs, &req.answers, facts.as_ref());
        if shape.is_ok() {
            proofs.extend(self.enrolled_proofs(&req.answers, record.as_ref()).await?);
        } else {
            // Counted as a failed attempt without verifying anything.
            proofs.iter_mut().for_each(|p| p.passed = false);
            proofs.extend(
                policy
                    .recovery
                    .proofs
                    .iter()
                    .filter(|p| matches!(p, Proof::SecurityQuestions { .. } | Proof::SecurityImage))
                    .map(|p| ProofResult::failed(*p)),
            );
        }
        let knowledge = policy
            .recovery
            .proofs
            .iter()
            .any(|p| *p != Proof::RegisteredEmail);
        if facts.is_none() || shape.is_err() {
            // No longer (or never) in the registry, or a malformed form: no link, whatever
            // the proofs (any failed result vetoes the checks, even under a policy that asks
            // no proof).
            proofs.push(ProofResult::failed(Proof::RegisteredEmail));
        }
        // An ID without an account goes through the core like any other: counted as a
        // failed check in one commit (the same store work and answer as wrong proofs).
        let (token, link) = self.new_token(TokenPurpose::Reset);
        let secrets = LinkSecrets::new(token, None);
        let cmd = Command::StartRecovery(StartRecovery {
            claimed_email: claimed,
            proofs,
            human_verified: human,
            new_email,
            link,
        });
        // The record read above (or a fresh one): one read, whatever the ID.
        let record = record.unwrap_or_else(|| AccountRecord::new(member.clone()));
        let applied = self
            .apply_from(Some(record), &member, now, Some(&secrets), |_| {
                Cow::Borrowed(&cmd)
            })
            .await?;
        shape?;
        match applied {
            Ok(a) => Ok(match a.decision.outcome {
                // With knowledge checks an unknown ID hears `ChecksFailed`, so must every
                // account that cannot recover (pending, suspended).
                Outcome::ChecksFailed { .. } | Outcome::NotEligible if knowledge => {
                    RecoveryOutcome::ChecksFailed
                }
                _ => RecoveryOutcome::Submitted,
            }),
            Err(d) => Err(d.into()),
        }
    }

    /// Verifies security answers and image against the enrolled hashes (one verification per
    /// required item, dummy ones when there is nothing enrolled, so timing does not tell).
    async fn enrolled_proofs(
        &self,
        answers: &Answers,
        record: Option<&AccountRecord>,
    ) -> Result<Vec<ProofResult>, ServiceError> {
        let enrollment = record
            .and_then(|r| r.state.profile())
            .map(|p| p.enrollment.clone());
        let mut out = Vec::new();
        for proof in &self.inner.policy.recovery.proofs {
            match proof {
                Proof::SecurityQuestions { count } => {
                    // Distinct questions only: answering one question twice is one answer.
                    let mut seen: Vec<&str> = Vec::new();
                    let distinct = answers.security.iter().filter(|(q, _)| {
                        if seen.contains(&q.as_str()) {
                            false
                        } else {
                            seen.push(q.as_str());
                            true
                        }
                    });
                    let mut passed = 0u8;
                    for (question, answer) in distinct.take(usize::from(*count)) {
                        let hash = enrollment
                            .as_ref()
                            .and_then(|e| e.answers.iter().find(|a| a.question == *question))
                            .map(|a| a.answer.clone());
                        if self.verify(&normalize_answer(answer), hash).await? {
                            passed = passed.saturating_add(1);
                        }
                    }
                    out.push(ProofResult {
                        proof: *proof,
                        passed: passed >= *count,
                    });
                }
                Proof::SecurityImage => {
                    let hash = enrollment.as_ref().and_then(|e| e.image.clone());
                    let given = answers
                        .security_image
                        .as_deref()
                        .map(normalize_answer)
                        .unwrap_or_default();
                    let passed = self.verify(&given, hash).await?;
                    out.push(ProofResult {
                        proof: *proof,
                        passed,
                    });
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Submitting the reset form.
    pub async fn reset_password(
        &self,
        token: &str,
        password: Password,
        confirmation: Password,
        declaration_accepted: bool,
    ) -> Result<(), ServiceError> {
        let now = self.inner.clock.now();
        let token = self.parse_token(token)?;
        let (link, record) = self.by_token(TokenPurpose::Reset, &token).await?;
        let record = record.ok_or(Denied::InvalidToken)?;
        let cmd = Command::ResetPassword {
            link,
            password: NewPassword {
                password,
                confirmation,
                hash: None,
            },
            declaration_accepted,
        };
        self.with_password(&record, now, cmd).await?;
        Ok(())
    }

    /// Follows the confirmation link of a staff email change (sent to the new address): the
    /// account's email becomes the new one, every outstanding link dies, and both addresses
    /// are told.
    pub async fn confirm_email_change(&self, token: &str) -> Result<(), ServiceError> {
        let now = self.inner.clock.now();
        let token = self.parse_token(token)?;
        let (link, record) = self.by_token(TokenPurpose::EmailChange, &token).await?;
        let record = record.ok_or(Denied::InvalidToken)?;
        self.apply(
            &record.member,
            now,
            &Command::ConfirmEmailChange { link },
            None,
        )
        .await??;
        Ok(())
    }

    /// A staff operation, audited with `actor` (at most
    /// [`MAX_STAFF_ACTOR_CHARS`](crate::policy::MAX_STAFF_ACTOR_CHARS) characters) and
    /// `reason` (at most [`MAX_STAFF_REASON_CHARS`](crate::policy::MAX_STAFF_REASON_CHARS)).
    pub async fn staff(
        &self,
        actor: &str,
        reason: &str,
        member_id: &str,
        request: StaffRequest,
    ) -> Result<(), ServiceError> {
        let now = self.inner.clock.now();
        if actor.chars().count() > crate::policy::MAX_STAFF_ACTOR_CHARS {
            return Err(invalid(
                "actor",
                format!(
                    "at most {} characters",
                    crate::policy::MAX_STAFF_ACTOR_CHARS
                ),
            ));
        }
        if reason.chars().count() > crate::policy::MAX_STAFF_REASON_CHARS {
            return Err(invalid(
                "reason",
                format!(
                    "at most {} characters",
                    crate::policy::MAX_STAFF_REASON_CHARS
                ),
            ));
        }
        if actor.chars().any(is_forbidden_char) {
            return Err(invalid("actor", "control character"));
        }
        if reason
            .chars()
            .any(|c| c != '\n' && c != '\t' && is_forbidden_char(c))
        {
            return Err(invalid("reason", "control character"));
        }
        let member = self.parse_member(member_id)?;
        let mut secrets = None;
        let mut enroll = None;
        let action = match request {
            StaffRequest::Unlock => StaffAction::Unlock,
            StaffRequest::Suspend => StaffAction::Suspend,
            StaffRequest::ChangeEmail(e) => {
                let email = e.parse().map_err(|e| invalid("email", e))?;
                let confirm_link = if self.inner.policy.staff.confirm_email_change {
                    let (token, link) = self.new_token(TokenPurpose::EmailChange);
                    secrets = Some(LinkSecrets::new(token, None));
                    Some(link)
                } else {
                    None
                };
                StaffAction::ChangeEmail {
                    email,
                    confirm_link,
                }
            }
            StaffRequest::SendReset => {
                let (token, link) = self.new_token(TokenPurpose::Reset);
                secrets = Some(LinkSecrets::new(token, None));
                StaffAction::SendReset { link }
            }
            StaffRequest::EnrollForeigner(facts) => {
                if facts.member != member {
                    return Err(invalid("facts", "member differs from member_id"));
                }
                let texts = std::iter::once(facts.names.as_str())
                    .chain(facts.affiliate_number.as_deref())
                    .chain(facts.employers.iter().map(String::as_str));
                if texts.clone().any(|t| t.chars().any(is_forbidden_char)) {
                    return Err(invalid("facts", "control character"));
                }
                if texts.clone().any(|t| t.chars().count() > MAX_ANSWER_CHARS)
                    || facts.employers.len() > 100
                    || facts.contribution_years.len() > 200
                {
                    return Err(invalid("facts", "too long"));
                }
                if member.kind() != crate::identity::MemberIdKind::Foreigner {
                    return Err(Denied::IdentifierNotAccepted(member.kind()).into());
                }
                enroll = Some(facts);
                StaffAction::EnrollForeigner
            }
        };
        let cmd = Command::Staff {
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            action,
        };
        if let Some(facts) = enroll {
            // The registry is written only for a command the core accepts (actor, reason,
            // an account that does not exist yet), so a refused request changes nothing and
            // an activated member's identity facts cannot be overwritten.
            let _accepted = decide(&self.load(&member).await?, &cmd, now, &self.inner.policy)?;
            self.inner.directory.enroll(facts).await?;
        }
        self.apply(&member, now, &cmd, secrets.as_ref()).await??;
        Ok(())
    }
}

/// Whether a knowledge answer (or question id) is longer than [`MAX_ANSWER_CHARS`].
/// Waits until `deadline` with sub-millisecond precision. Tokio's timer alone is not enough
/// for the response floor: it wakes on 1 ms ticks, and when a worker parks its wake-up is
/// rounded up to whole milliseconds from the moment it parked, so the answer time would still
/// carry how long the work took, modulo a millisecond (measured with `cargo bench --bench
/// enumeration`). The timer covers all but the last 2 ms; the OS's high-resolution sleep on a
/// blocking thread covers the rest (it holds that thread for at most 2 ms, and no hashing
/// worker, connection or lock).
async fn wait_until(deadline: std::time::Instant) {
    const FINE: std::time::Duration = std::time::Duration::from_millis(2);
    if let Some(coarse) = deadline.checked_sub(FINE) {
        tokio::time::sleep_until(coarse.into()).await;
    }
    #[allow(clippy::disallowed_methods)] // service: the floor is measured in real time
    let rest = deadline.saturating_duration_since(std::time::Instant::now());
    if !rest.is_zero() {
        // A failed blocking task only shortens the wait; the answer is unchanged.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

fn too_long(answer: &str) -> bool {
    answer.chars().count() > MAX_ANSWER_CHARS
}

// ---- Debug of forms: what a host may log ------------------------------------------------
//
// Forms hold what the member typed: IDs and addresses are shown masked, phones and knowledge
// answers only as present or absent.

/// `Some(<masked>)` / `None` for a typed ID or address.
fn masked_text(text: Option<&str>) -> Option<String> {
    text.map(crate::identity::redact_personal_data)
}

/// Whether a secret-ish field was given, without its value.
fn given<T>(value: &Option<T>) -> &'static str {
    if value.is_some() { "[given]" } else { "None" }
}

impl std::fmt::Debug for Answers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answers")
            .field("affiliate_number", &given(&self.affiliate_number))
            .field("birth_day_month", &given(&self.birth_day_month))
            .field(
                "record",
                &self.record.iter().map(|(q, _)| q).collect::<Vec<_>>(),
            )
            .field("security", &self.security.len())
            .field("security_image", &given(&self.security_image))
            .finish()
    }
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("member_id", &masked_text(Some(&self.member_id)))
            .field("email", &masked_text(Some(&self.email)))
            .field("mobile", &given(&self.mobile))
            .field("landline", &given(&self.landline))
            .field("terms_accepted", &self.terms_accepted)
            .field("answers", &self.answers)
            .field("human_response", &given(&self.human_response))
            .field("locale", &self.locale)
            .finish()
    }
}

impl std::fmt::Debug for RecoveryRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryRequest")
            .field("member_id", &masked_text(Some(&self.member_id)))
            .field("email", &masked_text(self.email.as_deref()))
            .field("answers", &self.answers)
            .field("new_email", &masked_text(self.new_email.as_deref()))
            .field("human_response", &given(&self.human_response))
            .finish()
    }
}

impl std::fmt::Debug for StaffRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unlock => f.write_str("Unlock"),
            Self::Suspend => f.write_str("Suspend"),
            Self::ChangeEmail(e) => f
                .debug_tuple("ChangeEmail")
                .field(&crate::identity::redact_personal_data(e))
                .finish(),
            Self::SendReset => f.write_str("SendReset"),
            Self::EnrollForeigner(facts) => f
                .debug_tuple("EnrollForeigner")
                .field(&facts.member)
                .finish(),
        }
    }
}

fn parse_opt<T>(text: Option<&str>, field: &'static str) -> Result<Option<T>, ServiceError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t.parse().map(Some).map_err(|e| invalid(field, e)),
    }
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use time::macros::datetime;

    use super::*;
    use crate::core::{AccountState, Profile};
    use crate::crypto::HashParams;
    use crate::memory::{MemoryDirectory, MemoryStore};

    /// The core never refuses a login for an account holding a hash today, but if it did,
    /// the extra audit event (a refused stored hash) must still be committed.
    #[tokio::test]
    async fn an_extra_audit_event_is_committed_even_when_the_core_refuses() {
        let now = datetime!(2026-11-22 19:36 -5);
        let mut policy = Policy::isspol();
        policy.hashing = HashParams::danger_insecure_for_tests();
        let mut rng = StdRng::seed_from_u64(9);
        let hash = crate::crypto::hash_password(b"x", &policy.hashing, &mut rng).unwrap();
        let store = Arc::new(MemoryStore::new());
        let member: MemberId = "1710034065".parse().unwrap();
        let mut record = AccountRecord::new(member.clone());
        record.state = AccountState::Active {
            profile: Profile {
                password: hash,
                contact: Contact::email_only("ana.quispe@example.ec".parse().unwrap()),
                enrollment: SecurityEnrollment::default(),
                activated_at: now,
                password_changed_at: now,
                last_login_at: None,
            },
            failures: Vec::new(),
        };
        store
            .commit(&record, 0, Vec::new(), Vec::new())
            .await
            .unwrap();
        let service = AccountService::builder(
            policy,
            DigestKey::generate(&mut rng),
            SealKey::generate(&mut rng),
        )
        .store(store.clone())
        .directory(Arc::new(MemoryDirectory::new()))
        .build()
        .unwrap();
        let extra = AuditKind::StoredHashRefused {
            algorithm: "argon2id".into(),
            parameter: "m_cost_kib".into(),
        };
        // An unlock link on an account that is not locked: refused by the core.
        let cmd = Command::Unlock {
            link: Digest::from_bytes([7; 32]),
        };
        let loaded = store.load(&member).await.unwrap();
        let out = service
            .apply_audited(loaded, &member, now, None, Some(&extra), |_| {
                Cow::Borrowed(&cmd)
            })
            .await
            .unwrap();
        assert!(out.is_err(), "the core refuses");
        let log = store.audit_log(&member).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].kind, extra);
        let after = store.load(&member).await.unwrap().unwrap();
        assert_eq!(after.state, record.state, "the record is unchanged");
        // Without an extra event, a refusal writes nothing.
        let version = after.version;
        let out = service.apply(&member, now, &cmd, None).await.unwrap();
        assert!(out.is_err());
        assert_eq!(store.load(&member).await.unwrap().unwrap().version, version);
        assert_eq!(store.audit_log(&member).await.unwrap().len(), 1);
    }
}
