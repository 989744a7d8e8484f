//! Institution policy: every number and rule the state machine applies.
//!
//! A [`Policy`] is plain data. Load it from TOML or JSON ([`Policy::from_toml`],
//! [`Policy::from_json`]) or start from one of the three presets:
//!
//! | preset | portal it reproduces |
//! |---|---|
//! | [`Policy::isspol()`] | ISSPOL's SIISSPOL-WEB (the ISSPOL guide and registration manual) |
//! | [`Policy::iess()`] | IESS "Clave de afiliado" (the IESS procedure and two third-party articles) |
//! | [`Policy::recommended()`] | OWASP ASVS 5.0 / NIST SP 800-63B aligned |
//!
//! Durations are written the human way in files (`"15m"`, `"20m"`, `"3m"`, `"1h"`).
//!
//! A file (or environment) need not repeat a whole policy: `preset = "iess"` at the top of a
//! file makes the rest an overlay ([`Policy::from_toml`], [`Policy::merge_toml`],
//! [`Policy::merge_json`]), and [`Policy::merge_vars`] lays `AFILIADO_LOCKOUT__THRESHOLD=4`
//! style variables over a policy. Every key and its default per preset is listed in the
//! reference at the end of this page.
//!
//! ## Sources
//!
//! The presets cite these public documents (in Spanish) by the short names on the left:
//!
//! | short name | document |
//! |---|---|
//! | the ISSPOL guide | ISSPOL, *Guía básica de uso de la plataforma SIISSPOL-WEB* |
//! | the ISSPOL registration manual | ISSPOL, *Manual para registrarse en el sistema en línea ISSPOL* |
//! | the IESS procedure | IESS, official procedure *Clave de afiliado para acceso al portal IESS* (Generar / Recuperar clave) |
//! | the IESS recommendations article | third-party article *Recomendaciones para solicitar y recuperar clave del IESS* |
//! | the IESS steps article | third-party article *Pasos para emitir la clave del IESS* |
//!
//! Where they disagree, the presets follow the official IESS procedure and say so.
//!
//! ```
//! use afiliado::Policy;
//!
//! let mut policy = Policy::from_toml(&Policy::iess().to_toml()?)?;
//! assert_eq!(policy.lockout.threshold, 3);
//! policy.lockout.threshold = 4; // a host may tune any knob
//! policy.validate()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
#![doc = include_str!("../docs/policy-reference.md")]

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::crypto::{HashCostBounds, HashParams};
use crate::identity::MemberIdKind;
use crate::password::PasswordPolicy;

const MINUTE: Duration = Duration::from_secs(60);

const fn minutes(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

/// The complete rule set of one institution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Policy {
    /// A short label for logs and audit (`"isspol"`, `"iess"`, `"recommended"` or the host's own).
    pub name: String,
    /// Which kinds of member identifier the portal accepts.
    pub identifiers: Vec<MemberIdKind>,
    /// Registration (first-time password generation) rules.
    pub registration: RegistrationPolicy,
    /// Activation link and code rules.
    pub activation: ActivationPolicy,
    /// Password composition rules.
    pub password: PasswordPolicy,
    /// Failed-login lockout rules.
    pub lockout: LockoutPolicy,
    /// How a locked account can be unlocked by its member.
    pub unlock: UnlockPolicy,
    /// Password recovery rules.
    pub recovery: RecoveryPolicy,
    /// Argon2id parameters for passwords and knowledge answers.
    pub hashing: HashParams,
    /// The most work a stored hash may ask for when a login verifies it; a hash above it
    /// is refused (the login fails, an audit event says why). `None`: the default derived
    /// from `hashing` ([`HashCostBounds::for_params`]), see [`Policy::hash_cost_bounds`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_hash_bounds: Option<HashCostBounds>,
    /// Notice (mail) limits.
    pub notices: NoticePolicy,
    /// How long data is kept.
    #[serde(default)]
    pub retention: RetentionPolicy,
    /// Staff operations.
    #[serde(default)]
    pub staff: StaffPolicy,
    /// Trusted devices (OWASP device cookies).
    #[serde(default)]
    pub devices: DevicePolicy,
    /// Per-source throttling (password spraying across many IDs).
    #[serde(default)]
    pub sources: SourcePolicy,
}

/// Per-source throttling: failures (wrong logins, failed registration or recovery checks,
/// every unlock request) from one client source, across every ID, are counted in
/// fixed windows; once a source reaches `threshold` in a window its calls are refused with
/// [`ServiceError::Throttled`](crate::service::ServiceError::Throttled) (HTTP 429) until the
/// window ends. Needs a source (`AccountService::for_source`) and a store
/// (`ServiceBuilder::throttle`); otherwise nothing is counted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SourcePolicy {
    /// Length of a counting window (default 15 minutes).
    #[serde(with = "compact_duration")]
    pub window: Duration,
    /// Failures per source and window before its calls are refused (default 50).
    pub threshold: u32,
}

impl Default for SourcePolicy {
    fn default() -> Self {
        Self {
            window: minutes(15),
            threshold: 50,
        }
    }
}

/// Trusted devices (OWASP "device cookies"): after a successful login the service hands the
/// host an opaque device token for a cookie; a login presenting a live one is judged on that
/// device's own failures, so a stranger's wrong passwords never lock the member's own browser
/// out. Devices are revoked on password reset, email change and staff suspension.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DevicePolicy {
    /// Whether devices are trusted at all (on in every preset).
    pub enabled: bool,
    /// How long a device stays trusted after its login (default 90 days).
    #[serde(with = "compact_duration")]
    pub lifetime: Duration,
    /// Wrong passwords from one device since its last successful login after which it is no
    /// longer trusted (and its logins count against the account like any other client's).
    /// There is no window: a stolen device token buys this many guesses in all.
    pub threshold: u32,
    /// Most devices kept per account; the oldest is forgotten first (default 10).
    pub max_per_account: u32,
}

impl Default for DevicePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            lifetime: Duration::from_secs(90 * 86_400),
            threshold: 5,
            max_per_account: 10,
        }
    }
}

impl DevicePolicy {
    fn with_threshold(threshold: u32) -> Self {
        Self {
            threshold,
            ..Self::default()
        }
    }
}

/// Rules for staff operations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StaffPolicy {
    /// Whether a staff email change waits for the new address to follow a confirmation link
    /// (on in every preset). Until then the account keeps its email; the old address is told
    /// at the request and at the change. Turning it off makes staff changes immediate.
    pub confirm_email_change: bool,
    /// Lifetime of the confirmation link sent to the new address (default 24 hours); an
    /// unconfirmed change expires with it.
    #[serde(with = "compact_duration")]
    pub email_change_ttl: Duration,
}

impl Default for StaffPolicy {
    fn default() -> Self {
        Self {
            confirm_email_change: true,
            email_change_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// How many [`Proof::RecordQuestions`] the library can ask: one per kind of fact the member
/// registry holds (an employer, the first and the last contribution year). The third-party
/// guide that mentions four questions at first registration describes facts the registry port
/// does not carry, so a count above this is refused by [`Policy::validate`].
pub const MAX_RECORD_QUESTIONS: u8 = 3;

/// Longest staff actor identifier accepted, in characters.
pub const MAX_STAFF_ACTOR_CHARS: usize = 64;
/// Longest staff reason accepted, in characters.
pub const MAX_STAFF_REASON_CHARS: usize = 500;

fn default_max_failed_proofs_per_day() -> u32 {
    5
}

/// How long data is kept (LOPDP data minimisation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// Audit events older than this are deleted by [`crate::retention::purge`]. Default:
    /// 5 years (**choice**: long enough for breach investigations and the institutions'
    /// own record-keeping; LOPDP sets no fixed period).
    #[serde(with = "compact_duration")]
    pub audit: Duration,
    /// Delivered outbox messages older than this are deleted by
    /// [`crate::retention::purge`] (they hold the member's address and ID). Default: 30 days
    /// (**choice**: long enough to answer "did the mail go out?"); at least 1 day.
    #[serde(with = "compact_duration", default = "default_sent_mail_retention")]
    pub sent_mail: Duration,
}

fn default_sent_mail_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            audit: Duration::from_secs(5 * 365 * 24 * 3600),
            sent_mail: default_sent_mail_retention(),
        }
    }
}

/// Whether a piece of contact data is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    /// The portal does not ask for it; if given it is ignored.
    No,
    /// Asked, may be left empty.
    Optional,
    /// Asked and mandatory.
    Required,
}

/// A proof of identity the member must give, checked against the member registry or
/// against answers the member enrolled earlier.
///
/// Knowledge-based proofs (`BirthDayMonth`, `RecordQuestions`, `SecurityQuestions`,
/// `SecurityImage`) are not authentication factors (OWASP ASVS 5.0 6.4.2, NIST SP 800-63B):
/// they only gate *issuing* a link to the registered email, they never log anyone in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Proof {
    /// The affiliate number printed on the member's credential (ISSPOL).
    AffiliateNumber,
    /// Day and month of birth, from the registry (IESS).
    BirthDayMonth,
    /// Questions drawn from the member's records (employers, contributions) (IESS).
    RecordQuestions {
        /// How many questions must be answered correctly.
        count: u8,
    },
    /// Security questions the member enrolled at registration (IESS recovery).
    SecurityQuestions {
        /// How many questions must be answered correctly.
        count: u8,
    },
    /// The security image the member chose at registration (IESS, the IESS steps article).
    SecurityImage,
    /// The email address registered on the account, typed by the member (ISSPOL recovery).
    RegisteredEmail,
}

/// Registration rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RegistrationPolicy {
    /// Proofs checked before a registration is accepted.
    pub proofs: Vec<Proof>,
    /// Email address (always required in practice: activation goes there).
    pub email: Ask,
    /// Mobile phone.
    pub mobile: Ask,
    /// Landline phone.
    pub landline: Ask,
    /// Wording of the terms the member must accept; `None` when no acceptance is asked.
    pub terms: Option<String>,
    /// Whether the member picks a security image at enrollment.
    pub security_image: bool,
    /// How many security questions the member answers at enrollment (0 = none).
    pub security_questions: u8,
    /// Whether the host must present a human check (CAPTCHA) verdict.
    pub human_check: bool,
    /// Minimum time between two activation mails for one member.
    #[serde(with = "compact_duration")]
    pub resend_cooldown: Duration,
    /// Maximum activation mails per member per day (America/Guayaquil calendar day).
    pub max_per_day: u32,
    /// Registration forms with failed proofs allowed per member per day (America/Guayaquil);
    /// beyond it every registration for that ID answers like failed proofs until the next
    /// day. Failed registrations never count against the recovery budget and never lock an
    /// account. Default 5.
    #[serde(default = "default_max_failed_proofs_per_day")]
    pub max_failed_proofs_per_day: u32,
}

/// Activation rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ActivationPolicy {
    /// Lifetime of the activation link and code.
    #[serde(with = "compact_duration")]
    pub ttl: Duration,
    /// Digits of the emailed activation code; `None` when only the link is used.
    pub code_digits: Option<u8>,
    /// Wrong code submissions allowed before the registration is burned.
    pub code_attempts: u8,
}

/// Failed-login lockout rules (pure arithmetic in [`crate::core::lockout`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LockoutPolicy {
    /// The failure that reaches this count locks the account.
    pub threshold: u32,
    /// Failures older than this no longer count.
    #[serde(with = "compact_duration")]
    pub window: Duration,
    /// Duration of the first lockout; `None`: no automatic unlock.
    #[serde(with = "compact_duration::option")]
    #[serde(default)]
    pub first_duration: Option<Duration>,
    /// Durations of the second, third, … lockouts (progressive lockout); the last entry
    /// repeats. Empty: every lockout lasts `first_duration`.
    #[serde(default, with = "durations_serde")]
    pub progressive: Vec<Duration>,
    /// After this many lockouts without a successful login, automatic unlock stops and only
    /// a link, a reset or staff can unlock. `None`: never.
    #[serde(default)]
    pub manual_after: Option<u32>,
    /// Whether login tells the member the account is locked (ISSPOL does; the safer default
    /// answers like a wrong password).
    pub reveal_lock_state: bool,
}

/// Self-service unlock rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UnlockPolicy {
    /// Lifetime of an emailed unlock link; `None` when the portal offers no unlock link.
    #[serde(default, with = "compact_duration::option")]
    pub link_ttl: Option<Duration>,
    /// Whether a completed password reset unlocks the account.
    pub reset_unlocks: bool,
    /// Whether requesting an unlock link needs a human check verdict.
    pub human_check: bool,
}

/// Password recovery rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RecoveryPolicy {
    /// Proofs checked before a reset link is issued. Possession of the registered email is
    /// always required on top: the link only ever goes there.
    pub proofs: Vec<Proof>,
    /// Failed identity checks (recovery and registration) allowed per member before the
    /// account is locked with reason `FailedRecovery`. `None`: unlimited (rate limits apply).
    pub attempt_budget: Option<u32>,
    /// Whether the member may replace the contact email after passing the checks.
    pub allow_email_change: bool,
    /// Lifetime of the reset link.
    #[serde(with = "compact_duration")]
    pub reset_ttl: Duration,
    /// Wording of the declaration the member accepts when resetting; `None`: none asked.
    pub declaration: Option<String>,
    /// Whether starting recovery needs a human check verdict.
    pub human_check: bool,
}

/// Limits on mails sent to one member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NoticePolicy {
    /// Lock warnings per member per day (America/Guayaquil): a stranger's wrong passwords can
    /// lock an account again and again, but the member hears of it at most this often.
    /// Beyond it nothing is sent and a `NoticeSuppressed` audit event is written. Warnings
    /// never use the budget of unlock and reset links. (Files may still call it
    /// `max_per_day`, its name when one cap covered every notice.)
    #[serde(alias = "max_per_day", alias = "max_links_per_day")]
    pub lock_warnings_per_day: u32,
    /// How links to the registered address are paced, per kind (unlock, reset), so that a
    /// stranger can neither flood the mailbox nor keep the member from getting back in:
    ///
    /// * while a link of that kind is live, a new request sends nothing (the member already
    ///   has a working link; a stranger cannot replace it with one the member never sees);
    /// * otherwise the new link is mailed at once, or — when the previous one went out less
    ///   than `link_cooldown` ago — queued for the end of the cooldown.
    ///
    /// So the member's own request always yields a working link within `link_cooldown`, and
    /// a stranger causes at most `1 + 24 h / link_cooldown` links of each kind a day (145 at
    /// the presets' 10 minutes). `None` mails every request at once (no pacing).
    ///
    /// Most mails a stranger can cause to the registered address per day, by preset
    /// (links per kind + `lock_warnings_per_day` + one registration-attempt warning):
    ///
    /// | preset | unlock links | reset links | lock warnings | registration warning | total |
    /// |---|---|---|---|---|---|
    /// | `isspol()` | — (none offered) | 145 | 3 | 1 | 149 |
    /// | `iess()` | 145 | 145 (only with the knowledge answers) | 3 | 1 | 294 |
    /// | `recommended()` | 145 | 145 | 3 | 1 | 294 |
    #[serde(default = "default_link_cooldown", with = "compact_duration::option")]
    pub link_cooldown: Option<Duration>,
}

fn default_link_cooldown() -> Option<Duration> {
    Some(minutes(10))
}

impl NoticePolicy {
    fn preset() -> Self {
        Self {
            lock_warnings_per_day: 3,
            link_cooldown: default_link_cooldown(),
        }
    }
}

/// Durations in policy files: read in any `humantime` form (`"25m"`, `"1h 30m"`,
/// `"5years"`), written in the largest whole unit (`"25m"`, `"1825d"`), so a dumped preset
/// reads the way a person would write it.
mod compact_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(super) fn format(d: Duration) -> String {
        let secs = d.as_secs();
        if d.subsec_nanos() != 0 {
            return humantime_serde::re::humantime::format_duration(d).to_string();
        }
        if secs == 0 {
            return "0s".to_owned();
        }
        for (unit, n) in [("d", 86_400u64), ("h", 3_600), ("m", 60)] {
            if secs % n == 0 {
                return format!("{}{unit}", secs / n);
            }
        }
        format!("{secs}s")
    }

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        humantime_serde::deserialize(d)
    }

    pub(super) mod option {
        use std::time::Duration;

        use serde::{Deserializer, Serializer};

        pub(in super::super) fn serialize<S: Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&super::format(*d)),
                None => s.serialize_none(),
            }
        }

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            humantime_serde::option::deserialize(d)
        }
    }
}

mod durations_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wrap(#[serde(with = "super::compact_duration")] Duration);

    pub(super) fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let w: Vec<Wrap> = v.iter().copied().map(Wrap).collect();
        w.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let w: Vec<Wrap> = Vec::deserialize(d)?;
        Ok(w.into_iter().map(|w| w.0).collect())
    }
}

/// Sets `path` in `table` to `value`, creating the tables on the way (a value already there
/// that is not a table is replaced by one).
fn insert_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [key] => {
            table.insert(key.clone(), value);
        }
        [key, rest @ ..] => {
            let entry = table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// `overlay` laid over `base`: tables merge key by key, other values replace.
fn merge_toml_tables(mut base: toml::Table, overlay: toml::Table) -> toml::Table {
    for (key, value) in overlay {
        let merged = match (base.remove(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
                toml::Value::Table(merge_toml_tables(b, o))
            }
            (_, v) => v,
        };
        base.insert(key, merged);
    }
    base
}

/// `overlay` laid over `base`: objects merge key by key, other values replace.
fn merge_json_values(base: serde_json::Value, overlay: serde_json::Value) -> serde_json::Value {
    match (base, overlay) {
        (serde_json::Value::Object(mut b), serde_json::Value::Object(o)) => {
            for (key, value) in o {
                let merged = match b.remove(&key) {
                    Some(old) => merge_json_values(old, value),
                    None => value,
                };
                b.insert(key, merged);
            }
            serde_json::Value::Object(b)
        }
        (_, v) => v,
    }
}

/// Why a policy file or value was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not valid TOML/JSON for a [`Policy`]; `path` names the field.
    #[error("policy field `{path}`: {message}")]
    Parse {
        /// Dotted path of the offending field (`lockout.threshold`), `.` for the root.
        path: String,
        /// What was wrong with it.
        message: String,
    },
    /// The values parse but contradict each other or are out of range.
    #[error("policy field `{field}`: {reason}")]
    Invalid {
        /// Dotted path of the offending field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Serialising the policy failed.
    #[error("policy could not be serialised: {0}")]
    Serialize(String),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Policy {
    /// ISSPOL, portal SIISSPOL-WEB.
    ///
    /// | value | source |
    /// |---|---|
    /// | identifier: cédula | the ISSPOL guide ("usuario (número de cédula)") |
    /// | registration proof: affiliate number from the credential | the ISSPOL registration manual step 10 |
    /// | contact: email + mobile | the ISSPOL registration manual steps 8–9 |
    /// | terms "He leído y acepto las condiciones" | the ISSPOL registration manual step 11 |
    /// | activation: link + 4-digit code, 25 min | the ISSPOL registration manual steps 13–18 and the note |
    /// | code attempts: 5 | **assumption**: the manual is silent |
    /// | password ≥ 8, lower + upper + digit | the ISSPOL registration manual step 4 |
    /// | lockout: 5 failures | **assumption**: the ISSPOL guide gives only the unlock rule |
    /// | unlock: automatic after 20 min, or a password reset | the ISSPOL guide "En caso de bloqueo" |
    /// | lock state revealed at login | the ISSPOL guide (the portal tells the member to wait) |
    /// | recovery: cédula + registered email | the ISSPOL guide "En caso de no recordar la clave" |
    /// | email change: staff only | the ISSPOL guide "no recordar el correo" |
    /// | reset link: 25 min | **assumption**: same as the activation code |
    /// | recovery attempt budget: none | **choice**: the proof is possession of the email, so a budget would only let strangers lock accounts |
    /// | argon2id m=19456 KiB, t=2, p=1 | OWASP password storage cheat sheet |
    pub fn isspol() -> Self {
        Self {
            name: "isspol".into(),
            identifiers: vec![MemberIdKind::Cedula],
            registration: RegistrationPolicy {
                proofs: vec![Proof::AffiliateNumber],
                email: Ask::Required,
                mobile: Ask::Required,
                landline: Ask::No,
                terms: Some("He leído y acepto las condiciones".into()),
                security_image: false,
                security_questions: 0,
                human_check: false,
                resend_cooldown: MINUTE,
                max_per_day: 5,
                max_failed_proofs_per_day: default_max_failed_proofs_per_day(),
            },
            activation: ActivationPolicy {
                ttl: minutes(25),
                code_digits: Some(4),
                code_attempts: 5,
            },
            password: PasswordPolicy::isspol(),
            lockout: LockoutPolicy {
                threshold: 5,
                window: minutes(20),
                first_duration: Some(minutes(20)),
                progressive: Vec::new(),
                manual_after: None,
                reveal_lock_state: true,
            },
            unlock: UnlockPolicy {
                link_ttl: None,
                reset_unlocks: true,
                human_check: false,
            },
            recovery: RecoveryPolicy {
                proofs: vec![Proof::RegisteredEmail],
                attempt_budget: None,
                allow_email_change: false,
                reset_ttl: minutes(25),
                declaration: None,
                human_check: false,
            },
            hashing: HashParams::OWASP,
            stored_hash_bounds: None,
            notices: NoticePolicy::preset(),
            retention: RetentionPolicy::default(),
            staff: StaffPolicy::default(),
            devices: DevicePolicy::with_threshold(5),
            sources: SourcePolicy::default(),
        }
    }

    /// IESS, "Clave de afiliado" (Generar / Recuperar clave).
    ///
    /// | value | source |
    /// |---|---|
    /// | identifiers: cédula or foreigner code | the IESS procedure ("Código de identificación para extranjero") and the IESS steps article |
    /// | registration proofs: birth day+month, 3 record questions | the IESS steps article ("fecha de nacimiento y contesta las tres preguntas"); the IESS recommendations article mentions 4 questions |
    /// | contact: email, mobile, landline | the IESS procedure (requisitos) and the IESS steps article |
    /// | terms of use | the IESS steps article ("Acepte los términos de uso") |
    /// | security image + 2 security questions | the IESS steps article; two questions because the IESS procedure step 7 asks 2 back |
    /// | human check at registration, recovery, unlock | the IESS procedure step 3 ("No soy un robot") |
    /// | activation: link only, 15 min | the IESS procedure step 10 |
    /// | password ≥ 8, ≤ 15, letters and digits only | the IESS procedure step 12 (≥ 8); the IESS steps article says 6–15: the maximum 15 is taken from it, the minimum from the official procedure |
    /// | lockout: 3 failures | the IESS steps article ("tres intentos fallidos") |
    /// | no automatic unlock; email link 3 min, or staff | the IESS steps article ("enlace ... vigente durante 3 minutos", Skype/staff) |
    /// | a completed password reset also unlocks | **choice**: the reset proves possession of the registered email, the same proof the unlock link asks; set `unlock.reset_unlocks = false` to keep locks over resets |
    /// | recovery proofs: birth day+month, 2 record questions, 2 security questions | the IESS procedure steps 5–7 (official); the IESS steps article lists birth date, image and 1 of 3 questions |
    /// | recovery budget: 5 attempts then locked | the IESS procedure step 8 (official); the IESS steps article says 3 |
    /// | email change after the checks | the IESS procedure step 9 |
    /// | reset link 15 min | the IESS procedure step 10 (official); the IESS recommendations article says 3 minutes |
    /// | declaration "Declaración de Información fidedigna" | the IESS procedure step 11 |
    pub fn iess() -> Self {
        Self {
            name: "iess".into(),
            identifiers: vec![MemberIdKind::Cedula, MemberIdKind::Foreigner],
            registration: RegistrationPolicy {
                proofs: vec![Proof::BirthDayMonth, Proof::RecordQuestions { count: 3 }],
                email: Ask::Required,
                mobile: Ask::Required,
                landline: Ask::Optional,
                terms: Some("Acepto los términos de uso".into()),
                security_image: true,
                security_questions: 2,
                human_check: true,
                resend_cooldown: MINUTE,
                max_per_day: 5,
                max_failed_proofs_per_day: default_max_failed_proofs_per_day(),
            },
            activation: ActivationPolicy {
                ttl: minutes(15),
                code_digits: None,
                code_attempts: 0,
            },
            password: PasswordPolicy::iess(),
            lockout: LockoutPolicy {
                threshold: 3,
                window: minutes(24 * 60),
                first_duration: None,
                progressive: Vec::new(),
                manual_after: None,
                reveal_lock_state: false,
            },
            unlock: UnlockPolicy {
                link_ttl: Some(minutes(3)),
                reset_unlocks: true,
                human_check: true,
            },
            recovery: RecoveryPolicy {
                proofs: vec![
                    Proof::BirthDayMonth,
                    Proof::RecordQuestions { count: 2 },
                    Proof::SecurityQuestions { count: 2 },
                ],
                attempt_budget: Some(5),
                allow_email_change: true,
                reset_ttl: minutes(15),
                declaration: Some("Declaración de Información fidedigna".into()),
                human_check: true,
            },
            hashing: HashParams::OWASP,
            stored_hash_bounds: None,
            notices: NoticePolicy::preset(),
            retention: RetentionPolicy::default(),
            staff: StaffPolicy::default(),
            devices: DevicePolicy::with_threshold(3),
            sources: SourcePolicy::default(),
        }
    }

    /// Standards-aligned preset (OWASP ASVS 5.0, NIST SP 800-63B).
    ///
    /// | value | reason |
    /// |---|---|
    /// | cédula and foreigner code | both populations exist |
    /// | registry match + affiliate number | possession of the credential, no knowledge questions |
    /// | link + 6-digit code, 15 min, 5 attempts | a code typed by the member defeats mail scanners that follow links |
    /// | password ≥ 15, ≤ 128, no composition rules, not the ID/email, not common | NIST SP 800-63B §3.1.1 (single-factor) |
    /// | lockout 10 failures in 1 h, progressive 1 → 5 → 15 → 60 min | throttling that never locks a member out for long |
    /// | unlock: automatic + email link (15 min) + reset | |
    /// | recovery: possession of the registered email only | knowledge answers are not authenticators (ASVS 6.4.2) |
    /// | human check at recovery and unlock | those requests send mail to third parties' inboxes |
    pub fn recommended() -> Self {
        Self {
            name: "recommended".into(),
            identifiers: vec![MemberIdKind::Cedula, MemberIdKind::Foreigner],
            registration: RegistrationPolicy {
                proofs: vec![Proof::AffiliateNumber],
                email: Ask::Required,
                mobile: Ask::Required,
                landline: Ask::No,
                terms: Some("Acepto los términos y condiciones".into()),
                security_image: false,
                security_questions: 0,
                human_check: false,
                resend_cooldown: MINUTE,
                max_per_day: 5,
                max_failed_proofs_per_day: default_max_failed_proofs_per_day(),
            },
            activation: ActivationPolicy {
                ttl: minutes(15),
                code_digits: Some(6),
                code_attempts: 5,
            },
            password: PasswordPolicy::recommended(),
            lockout: LockoutPolicy {
                threshold: 10,
                window: minutes(60),
                first_duration: Some(minutes(1)),
                progressive: vec![minutes(5), minutes(15), minutes(60)],
                manual_after: None,
                reveal_lock_state: false,
            },
            unlock: UnlockPolicy {
                link_ttl: Some(minutes(15)),
                reset_unlocks: true,
                human_check: true,
            },
            recovery: RecoveryPolicy {
                proofs: Vec::new(),
                attempt_budget: None,
                allow_email_change: false,
                reset_ttl: minutes(15),
                declaration: None,
                human_check: true,
            },
            hashing: HashParams::OWASP,
            stored_hash_bounds: None,
            notices: NoticePolicy::preset(),
            retention: RetentionPolicy::default(),
            staff: StaffPolicy::default(),
            devices: DevicePolicy::with_threshold(10),
            sources: SourcePolicy::default(),
        }
    }

    /// The preset named `name` (`"isspol"`, `"iess"` or `"recommended"`).
    ///
    /// # Errors
    ///
    /// [`PolicyError::Parse`] at `preset` for any other name.
    pub fn preset(name: &str) -> Result<Self, PolicyError> {
        match name {
            "isspol" => Ok(Self::isspol()),
            "iess" => Ok(Self::iess()),
            "recommended" => Ok(Self::recommended()),
            other => Err(PolicyError::Parse {
                path: "preset".into(),
                message: format!(
                    "unknown preset `{}`: expected `isspol`, `iess` or `recommended`",
                    other.chars().take(40).collect::<String>()
                ),
            }),
        }
    }

    /// This policy with the keys of a partial TOML document laid over it: tables merge key by
    /// key, any other value (numbers, strings, lists) replaces the one underneath. The result
    /// is validated; unknown keys are refused with their path.
    ///
    /// ```
    /// use afiliado::Policy;
    ///
    /// let policy = Policy::iess().merge_toml("[lockout]\nthreshold = 4\n")?;
    /// assert_eq!(policy.lockout.threshold, 4);
    /// assert_eq!(policy.lockout.window, Policy::iess().lockout.window); // kept
    /// assert!(Policy::iess().merge_toml("[lockout]\nthreshhold = 4\n").is_err());
    /// # Ok::<(), afiliado::policy::PolicyError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`PolicyError::Parse`] naming the field for malformed TOML, unknown keys or wrong
    /// types; [`PolicyError::Invalid`] when the merged policy breaks a rule.
    pub fn merge_toml(&self, text: &str) -> Result<Self, PolicyError> {
        let overlay: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| PolicyError::Parse {
                    path: ".".into(),
                    message: e.message().to_owned(),
                })?;
        self.merge_toml_table(overlay)
    }

    /// [`merge_toml`](Self::merge_toml) for an already parsed table.
    fn merge_toml_table(&self, overlay: toml::Table) -> Result<Self, PolicyError> {
        let base =
            toml::Table::try_from(self).map_err(|e| PolicyError::Serialize(e.to_string()))?;
        let merged = merge_toml_tables(base, overlay);
        let policy: Self =
            serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| {
                PolicyError::Parse {
                    path: e.path().to_string(),
                    message: e.inner().message().to_owned(),
                }
            })?;
        policy.validate()?;
        Ok(policy)
    }

    /// [`merge_toml`](Self::merge_toml) for a partial JSON document.
    ///
    /// # Errors
    ///
    /// As [`merge_toml`](Self::merge_toml).
    pub fn merge_json(&self, text: &str) -> Result<Self, PolicyError> {
        let overlay: serde_json::Value =
            serde_json::from_str(text).map_err(|e| PolicyError::Parse {
                path: ".".into(),
                message: e.to_string(),
            })?;
        self.merge_json_value(overlay)
    }

    /// [`merge_json`](Self::merge_json) for an already parsed value.
    fn merge_json_value(&self, overlay: serde_json::Value) -> Result<Self, PolicyError> {
        let base = serde_json::to_value(self).map_err(|e| PolicyError::Serialize(e.to_string()))?;
        let merged = merge_json_values(base, overlay);
        let policy: Self =
            serde_path_to_error::deserialize(merged).map_err(|e| PolicyError::Parse {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        policy.validate()?;
        Ok(policy)
    }

    /// This policy with overrides from environment-style variables laid over it: each
    /// variable named `{prefix}SECTION__KEY` (sections and keys separated by a double
    /// underscore, any case) sets `section.key`. A value is read as TOML (`4`, `true`,
    /// `"25m"`, `["cedula"]`) and, when it is not valid TOML, as a plain string (`25m`).
    /// Variables without the prefix are ignored. Pass `std::env::vars()` in a host; the
    /// function itself reads nothing.
    ///
    /// ```
    /// use afiliado::Policy;
    ///
    /// let vars = [
    ///     ("AFILIADO_LOCKOUT__THRESHOLD".to_owned(), "4".to_owned()),
    ///     ("AFILIADO_NOTICES__LINK_COOLDOWN".to_owned(), "5m".to_owned()),
    ///     ("HOME".to_owned(), "/root".to_owned()),
    /// ];
    /// let policy = Policy::iess().merge_vars("AFILIADO_", vars)?;
    /// assert_eq!(policy.lockout.threshold, 4);
    /// assert_eq!(policy.notices.link_cooldown, Some(std::time::Duration::from_secs(300)));
    /// # Ok::<(), afiliado::policy::PolicyError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`merge_toml`](Self::merge_toml): an unknown key or a wrong type names its path.
    pub fn merge_vars(
        &self,
        prefix: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, PolicyError> {
        let mut overlay = toml::Table::new();
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(prefix) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
            if path.iter().any(String::is_empty) {
                return Err(PolicyError::Parse {
                    path: rest.to_lowercase(),
                    message: "empty section or key in the variable name".into(),
                });
            }
            let value = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            insert_path(&mut overlay, &path, value);
        }
        self.merge_toml_table(overlay)
    }

    /// Parses a TOML document and validates it. Errors name the field.
    ///
    /// A document with a top-level `preset = "iess"` (or `"isspol"`, `"recommended"`) need
    /// only set what differs from that preset (see [`merge_toml`](Self::merge_toml));
    /// without it, the document must be complete.
    ///
    /// ```
    /// use afiliado::Policy;
    ///
    /// let policy = Policy::from_toml("preset = \"iess\"\n[lockout]\nthreshold = 4\n")?;
    /// assert_eq!(policy.lockout.threshold, 4);
    /// assert_eq!(policy.name, "iess");
    /// # Ok::<(), afiliado::policy::PolicyError>(())
    /// ```
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        if let Ok(mut table) = text.parse::<toml::Table>() {
            if let Some(preset) = table.remove("preset") {
                let name = preset.as_str().ok_or_else(|| PolicyError::Parse {
                    path: "preset".into(),
                    message: "expected a string".into(),
                })?;
                return Self::preset(name)?.merge_toml_table(table);
            }
        }
        let de = toml::Deserializer::new(text);
        let policy: Self =
            serde_path_to_error::deserialize(de).map_err(|e| PolicyError::Parse {
                path: e.path().to_string(),
                message: e.inner().message().to_owned(),
            })?;
        policy.validate()?;
        Ok(policy)
    }

    /// Parses a JSON document and validates it. Errors name the field. As in
    /// [`from_toml`](Self::from_toml), a top-level `"preset"` makes the rest an overlay.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(text) {
            if let Some(preset) = map.remove("preset") {
                let name = preset.as_str().ok_or_else(|| PolicyError::Parse {
                    path: "preset".into(),
                    message: "expected a string".into(),
                })?;
                return Self::preset(name)?.merge_json_value(serde_json::Value::Object(map));
            }
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let policy: Self =
            serde_path_to_error::deserialize(&mut de).map_err(|e| PolicyError::Parse {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        policy.validate()?;
        Ok(policy)
    }

    /// Renders the policy as TOML (a starting point for a host's own file).
    pub fn to_toml(&self) -> Result<String, PolicyError> {
        toml::to_string_pretty(self).map_err(|e| PolicyError::Serialize(e.to_string()))
    }

    /// Renders the policy as JSON.
    pub fn to_json(&self) -> Result<String, PolicyError> {
        serde_json::to_string_pretty(self).map_err(|e| PolicyError::Serialize(e.to_string()))
    }

    /// Lock duration of the `n`-th lockout (1-based); `None` when it does not unlock by itself.
    pub fn lock_duration(&self, n: u32) -> Option<Duration> {
        let l = &self.lockout;
        if let Some(limit) = l.manual_after {
            if n > limit {
                return None;
            }
        }
        let first = l.first_duration?;
        if n <= 1 || l.progressive.is_empty() {
            return Some(first);
        }
        let idx = usize::try_from(n.saturating_sub(2)).unwrap_or(usize::MAX);
        l.progressive
            .get(idx)
            .or_else(|| l.progressive.last())
            .copied()
    }

    /// The bounds on stored hashes in force: `stored_hash_bounds`, or by default four times
    /// the `hashing` parameters and the legacy defaults of [`HashCostBounds::for_params`].
    ///
    /// ```
    /// use afiliado::Policy;
    ///
    /// let policy = Policy::recommended();
    /// assert_eq!(policy.hash_cost_bounds().argon2_m_cost_kib, 4 * policy.hashing.m_cost_kib);
    /// ```
    pub fn hash_cost_bounds(&self) -> HashCostBounds {
        self.stored_hash_bounds
            .unwrap_or_else(|| HashCostBounds::for_params(&self.hashing))
    }

    /// Checks that the values are in range and consistent. Called by the loaders.
    ///
    /// Besides consistency, every value has a ceiling, so no policy file can make the
    /// service abort or spend unbounded work:
    ///
    /// | values | ceiling |
    /// |---|---|
    /// | `activation.ttl`, `unlock.link_ttl`, `recovery.reset_ttl` | 365 days |
    /// | `lockout.window`, `lockout.first_duration`, each of `lockout.progressive`, `registration.resend_cooldown` | 365 days |
    /// | `retention.audit`, `retention.sent_mail` | 50 years |
    /// | `hashing` | 1 GiB (`m_cost_kib` ≤ 1 048 576), `t_cost` ≤ 100, `p_cost` ≤ 64 ([`HashParams::validate`]) |
    /// | `stored_hash_bounds` | [`HashCostBounds::validate`], and not below `hashing` |
    /// | `lockout.threshold`, `lockout.manual_after`, `recovery.attempt_budget` | 1000 |
    /// | `lockout.progressive` | 32 entries |
    /// | `registration.max_per_day`, `notices.max_per_day` | 1 000 000 |
    /// | `activation.code_attempts` | 10 |
    /// | `registration.security_questions` | 10 |
    ///
    /// ```
    /// use afiliado::Policy;
    /// use afiliado::policy::PolicyError;
    /// use std::time::Duration;
    ///
    /// let mut policy = Policy::iess();
    /// policy.unlock.link_ttl = Some(Duration::MAX);
    /// assert!(matches!(
    ///     policy.validate(),
    ///     Err(PolicyError::Invalid { field: "unlock.link_ttl", .. })
    /// ));
    /// ```
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.identifiers.is_empty() {
            return Err(invalid("identifiers", "at least one identifier kind"));
        }
        let r = &self.registration;
        if r.email != Ask::Required {
            return Err(invalid(
                "registration.email",
                "must be `required`: activation links go to the email",
            ));
        }
        if r.max_per_day == 0 {
            return Err(invalid("registration.max_per_day", "must be at least 1"));
        }
        if r.proofs.contains(&Proof::RegisteredEmail) {
            return Err(invalid(
                "registration.proofs",
                "`registered_email` is a recovery proof",
            ));
        }
        if r.max_failed_proofs_per_day == 0 {
            return Err(invalid(
                "registration.max_failed_proofs_per_day",
                "must be at least 1",
            ));
        }
        if r.proofs.is_empty() {
            return Err(invalid(
                "registration.proofs",
                "at least one proof: otherwise anyone with a cédula registers it to their email",
            ));
        }
        check_proof_counts("registration.proofs", &r.proofs)?;
        if r.proofs.contains(&Proof::SecurityImage)
            || r.proofs
                .iter()
                .any(|p| matches!(p, Proof::SecurityQuestions { .. }))
        {
            return Err(invalid(
                "registration.proofs",
                "security image/questions are enrolled at registration, not proofs of it",
            ));
        }
        let a = &self.activation;
        if a.ttl.is_zero() {
            return Err(invalid("activation.ttl", "must be positive"));
        }
        if let Some(d) = a.code_digits {
            if !(4..=10).contains(&d) {
                return Err(invalid("activation.code_digits", "between 4 and 10"));
            }
            if a.code_attempts == 0 {
                return Err(invalid(
                    "activation.code_attempts",
                    "must be at least 1 when a code is used",
                ));
            }
        }
        self.password.validate().map_err(|e| PolicyError::Invalid {
            field: "password",
            reason: e.to_string(),
        })?;
        let l = &self.lockout;
        if l.threshold == 0 {
            return Err(invalid("lockout.threshold", "must be at least 1"));
        }
        if l.threshold > 1000 {
            return Err(invalid("lockout.threshold", "at most 1000"));
        }
        if l.window.is_zero() {
            return Err(invalid("lockout.window", "must be positive"));
        }
        if l.first_duration.is_none() && !l.progressive.is_empty() {
            return Err(invalid(
                "lockout.progressive",
                "needs `first_duration` (no automatic unlock otherwise)",
            ));
        }
        if l.first_duration.is_some_and(|d| d.is_zero()) {
            return Err(invalid("lockout.first_duration", "must be positive"));
        }
        if l.progressive.iter().any(|d| d.is_zero()) {
            return Err(invalid("lockout.progressive", "durations must be positive"));
        }
        let auto_unlock = l.first_duration.is_some();
        let u = &self.unlock;
        if u.link_ttl.is_some_and(|d| d.is_zero()) {
            return Err(invalid("unlock.link_ttl", "must be positive"));
        }
        if !auto_unlock && u.link_ttl.is_none() && !u.reset_unlocks {
            // Staff unlock always exists, so this is legal, but say so loudly.
            return Err(invalid(
                "unlock",
                "no automatic unlock, no link and no reset: only staff could unlock; set reset_unlocks or link_ttl",
            ));
        }
        let rc = &self.recovery;
        if rc.reset_ttl.is_zero() {
            return Err(invalid("recovery.reset_ttl", "must be positive"));
        }
        check_proof_counts("recovery.proofs", &rc.proofs)?;
        if rc.allow_email_change && rc.proofs.iter().all(|p| *p == Proof::RegisteredEmail) {
            // The reset link would go to an address of the caller's choosing: some proof of
            // identity beyond knowing the registered address must gate it.
            return Err(invalid(
                "recovery.proofs",
                "`allow_email_change` needs at least one identity proof other than `registered_email`",
            ));
        }
        if rc.proofs.iter().any(
            |p| matches!(p, Proof::SecurityQuestions { count } if *count > r.security_questions),
        ) {
            return Err(invalid(
                "recovery.proofs",
                "asks more security questions than registration enrolls",
            ));
        }
        if rc.proofs.contains(&Proof::SecurityImage) && !r.security_image {
            return Err(invalid(
                "recovery.proofs",
                "asks the security image but registration does not enroll one",
            ));
        }
        if rc.attempt_budget == Some(0) {
            return Err(invalid("recovery.attempt_budget", "must be at least 1"));
        }
        self.hashing.validate().map_err(|e| PolicyError::Invalid {
            field: "hashing",
            reason: e.to_string(),
        })?;
        if self.retention.audit.is_zero() {
            return Err(invalid("retention.audit", "must be positive"));
        }
        if self.retention.sent_mail < Duration::from_secs(24 * 3600) {
            return Err(invalid("retention.sent_mail", "at least 1 day"));
        }
        if self.notices.lock_warnings_per_day == 0 {
            return Err(invalid(
                "notices.lock_warnings_per_day",
                "must be at least 1",
            ));
        }
        if self
            .notices
            .link_cooldown
            .is_some_and(|c| c.is_zero() || c > Duration::from_secs(86_400))
        {
            return Err(invalid(
                "notices.link_cooldown",
                "between 1 second and 24 hours",
            ));
        }
        let sp = &self.sources;
        if sp.window.is_zero() || sp.window > Duration::from_secs(86_400) {
            return Err(invalid("sources.window", "between 1 second and 24 hours"));
        }
        if sp.threshold == 0 || sp.threshold > 1_000_000 {
            return Err(invalid("sources.threshold", "between 1 and 1000000"));
        }
        let dv = &self.devices;
        if dv.lifetime.is_zero() || dv.lifetime > Duration::from_secs(365 * 86_400) {
            return Err(invalid("devices.lifetime", "between 1 second and 365 days"));
        }
        if dv.threshold == 0 || dv.threshold > 1000 {
            return Err(invalid("devices.threshold", "between 1 and 1000"));
        }
        if dv.max_per_account == 0 || dv.max_per_account > 100 {
            return Err(invalid("devices.max_per_account", "between 1 and 100"));
        }
        let st = &self.staff;
        if st.email_change_ttl.is_zero() || st.email_change_ttl > Duration::from_secs(7 * 86_400) {
            return Err(invalid(
                "staff.email_change_ttl",
                "between 1 second and 7 days",
            ));
        }
        // ---- ceilings (hash costs, durations, counts): begin ----
        self.validate_ceilings()?;
        // ---- ceilings: end ----
        Ok(())
    }

    /// The upper limits of [`validate`](Self::validate): no value may make the service
    /// abort (an Argon2 allocation that fails) or run away (a lock for 584 billion years,
    /// a daily cap of four billion mails).
    fn validate_ceilings(&self) -> Result<(), PolicyError> {
        const DAY: u64 = 24 * 3600;
        const YEAR: Duration = Duration::from_secs(365 * DAY);
        const FIFTY_YEARS: Duration = Duration::from_secs(50 * 365 * DAY);
        const MAX_COUNT: u32 = 1000;
        const MAX_PER_DAY: u32 = 1_000_000;
        const MAX_CODE_ATTEMPTS: u8 = 10;
        const MAX_SECURITY_QUESTIONS: u8 = 10;
        const MAX_PROGRESSIVE: usize = 32;

        let at_most = |field: &'static str, d: Duration, max: Duration, what: &str| {
            if d > max {
                Err(invalid(field, format!("at most {what}")))
            } else {
                Ok(())
            }
        };
        at_most("activation.ttl", self.activation.ttl, YEAR, "365 days")?;
        if let Some(d) = self.unlock.link_ttl {
            at_most("unlock.link_ttl", d, YEAR, "365 days")?;
        }
        at_most(
            "recovery.reset_ttl",
            self.recovery.reset_ttl,
            YEAR,
            "365 days",
        )?;
        at_most(
            "registration.resend_cooldown",
            self.registration.resend_cooldown,
            YEAR,
            "365 days",
        )?;
        at_most("lockout.window", self.lockout.window, YEAR, "365 days")?;
        if let Some(d) = self.lockout.first_duration {
            at_most("lockout.first_duration", d, YEAR, "365 days")?;
        }
        if self.lockout.progressive.len() > MAX_PROGRESSIVE {
            return Err(invalid("lockout.progressive", "at most 32 durations"));
        }
        for d in &self.lockout.progressive {
            at_most("lockout.progressive", *d, YEAR, "365 days each")?;
        }
        at_most(
            "retention.audit",
            self.retention.audit,
            FIFTY_YEARS,
            "50 years",
        )?;
        at_most(
            "retention.sent_mail",
            self.retention.sent_mail,
            FIFTY_YEARS,
            "50 years",
        )?;

        if self.lockout.manual_after.is_some_and(|n| n > MAX_COUNT) {
            return Err(invalid("lockout.manual_after", "at most 1000"));
        }
        if self.recovery.attempt_budget.is_some_and(|n| n > MAX_COUNT) {
            return Err(invalid("recovery.attempt_budget", "at most 1000"));
        }
        if self.registration.max_per_day > MAX_PER_DAY {
            return Err(invalid("registration.max_per_day", "at most 1000000"));
        }
        if self.registration.max_failed_proofs_per_day > MAX_COUNT {
            return Err(invalid(
                "registration.max_failed_proofs_per_day",
                "at most 1000",
            ));
        }
        if self.notices.lock_warnings_per_day > MAX_PER_DAY {
            return Err(invalid("notices.lock_warnings_per_day", "at most 1000000"));
        }
        if self.activation.code_attempts > MAX_CODE_ATTEMPTS {
            return Err(invalid(
                "activation.code_attempts",
                "at most 10: every attempt is a guess at the code",
            ));
        }
        if self.registration.security_questions > MAX_SECURITY_QUESTIONS {
            return Err(invalid(
                "registration.security_questions",
                "at most 10: every answer costs one Argon2 hash",
            ));
        }

        if let Some(bounds) = &self.stored_hash_bounds {
            bounds.validate().map_err(|e| PolicyError::Invalid {
                field: "stored_hash_bounds",
                reason: e.to_string(),
            })?;
            if !bounds.admits(&self.hashing) {
                return Err(invalid(
                    "stored_hash_bounds",
                    "below `hashing`: the service's own new hashes would be refused",
                ));
            }
        }
        Ok(())
    }
}

/// Each proof at most once, and every question count one the library can ask (at least one;
/// record questions at most [`MAX_RECORD_QUESTIONS`]).
fn check_proof_counts(field: &'static str, proofs: &[Proof]) -> Result<(), PolicyError> {
    for (i, p) in proofs.iter().enumerate() {
        let same_kind = proofs
            .iter()
            .skip(i.saturating_add(1))
            .any(|q| std::mem::discriminant(p) == std::mem::discriminant(q));
        if same_kind {
            return Err(invalid(field, "each proof may be listed once"));
        }
        match p {
            Proof::RecordQuestions { count } if *count == 0 || *count > MAX_RECORD_QUESTIONS => {
                return Err(invalid(
                    field,
                    format!("record questions: between 1 and {MAX_RECORD_QUESTIONS}"),
                ));
            }
            Proof::SecurityQuestions { count: 0 } => {
                return Err(invalid(field, "security questions: at least 1"));
            }
            _ => {}
        }
    }
    Ok(())
}

impl Default for Policy {
    /// [`Policy::recommended()`].
    fn default() -> Self {
        Self::recommended()
    }
}
