//! Rendering of [`Notice`]s into [`Mail`]s — a plain-text body and an HTML alternative — in
//! the member's [`Locale`].
//!
//! The outbox dispatcher claims a message, unseals its [`LinkSecrets`] (link-bearing notices
//! only) and calls [`render`]; the resulting [`Mail`] goes to the [`Mailer`](crate::ports::Mailer).
//!
//! * The texts live in [minijinja](https://docs.rs/minijinja) templates under
//!   `src/templates/{es-EC,en}/`, embedded in the binary: per locale a `layout.txt` and a
//!   `layout.html` (greeting and closing lines) and, per kind of notice, `{kind}.txt` (the
//!   subject in a `subject` block, the body in `body`) and `{kind}.html` (the body). `.html`
//!   templates are auto-escaped; the link and the code are the only values written as they
//!   are, and they are HTML-safe by construction.
//! * Links are built **only** from the configured [`LinkBase`]: never from a request's `Host`
//!   header or anything else an attacker could influence. The HTML shows each link as a
//!   button and as the visible address.
//! * Times are shown in continental Ecuador time (`America/Guayaquil`: UTC−5 all year, no
//!   daylight saving), as `22/11/2026 19:25` followed by `(hora de Ecuador)` /
//!   `(Ecuador time)`. Link expiries are rounded *down* to the minute (the link still works
//!   at the time shown); automatic-unlock times are rounded *up* (the account is unlocked at
//!   the time shown). The times are formatted here and handed to the templates as text.
//! * Texts are polite Spanish as written in Ecuador (usted form) or English. The member's ID
//!   never appears (it is not in the [`Notice`]); the new address of an email change appears
//!   only masked.
//!
//! ```
//! use afiliado::core::{Locale, Notice, NoticeKind};
//! use afiliado::crypto::{NumericCode, Token};
//! use afiliado::notices::{LinkBase, render};
//! use afiliado::seal::LinkSecrets;
//! use rand::SeedableRng;
//! use time::macros::datetime;
//!
//! let links = LinkBase::new("https://afiliados.example.ec/portal/")?;
//! let notice = Notice::new(
//!     "ana@example.ec".parse()?,
//!     Locale::EsEc,
//!     NoticeKind::Activation { expires_at: datetime!(2026-11-23 00:25 UTC), with_code: true },
//! );
//! let mut rng = rand::rngs::StdRng::seed_from_u64(1);
//! let token = Token::generate(&mut rng);
//! let secrets = LinkSecrets::new(token.clone(), Some(NumericCode::parse("4821", 4)?));
//!
//! let mail = render(&notice, Some(&secrets), &links, "outbox-42")?;
//! assert_eq!(mail.subject, "Active su cuenta de afiliado");
//! let link = format!("https://afiliados.example.ec/portal/activar?token={}", token.expose_secret());
//! assert!(mail.text.contains(&link));
//! assert!(mail.text.contains("Su código de activación es 4821."));
//! assert!(mail.text.contains("22/11/2026 19:25 (hora de Ecuador)"));
//!
//! let html = mail.html.as_deref().unwrap_or_default();
//! assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"es-EC\">"));
//! assert!(html.contains(&format!("<a href=\"{link}\"")));
//! assert!(html.contains("Su código de activación es <strong"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Object, ObjectRepr, Value};
use minijinja::{
    AutoEscape, Environment, Error, Output, State, Template, UndefinedBehavior, context,
    escape_formatter,
};
use time::macros::offset;
use time::{Duration, OffsetDateTime, UtcOffset};
use zeroize::Zeroizing;

use crate::core::{Locale, LockReason, Notice, NoticeKind};
use crate::crypto::{Token, TokenPurpose};
use crate::ports::Mail;
use crate::seal::LinkSecrets;

/// Continental Ecuador (`America/Guayaquil`): UTC−5 all year, no daylight saving.
const ECUADOR: UtcOffset = offset!(-5);

/// Why a notice could not be rendered or a link base was rejected. Messages never carry a
/// token, a code or the rejected URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoticeError {
    /// The configured base URL is unusable.
    #[error("invalid link base URL: {reason}")]
    InvalidBase {
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A configured link path is unusable.
    #[error("invalid link path for {purpose}: {reason}")]
    InvalidPath {
        /// Whose path.
        purpose: TokenPurpose,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// The notice carries a link but no [`LinkSecrets`] were given.
    #[error("a {purpose} notice carries a link but no link secrets were given")]
    MissingSecrets {
        /// The purpose of the missing link.
        purpose: TokenPurpose,
    },
    /// An activation notice announces a code but the secrets hold none.
    #[error("the activation notice announces a code but the link secrets hold none")]
    MissingCode,
    /// A time in the notice cannot be shown in Ecuador time (outside the representable range).
    #[error("a time in the notice is outside the representable range")]
    TimeOutOfRange,
    /// A mail template failed to load or render. The message names the template and the kind
    /// of error, never a value of the notice.
    #[error("mail template error: {0}")]
    Template(String),
}

/// Where e-mailed links point: a configured base URL and one path per purpose.
///
/// Links are `{base}{path}?token={token}`. The default paths are `/activar`,
/// `/desbloquear` and `/restablecer`; the activation code is typed on the activation page, so
/// [`TokenPurpose::ActivationCode`] shares the activation path.
///
/// ```
/// use afiliado::crypto::TokenPurpose;
/// use afiliado::notices::LinkBase;
///
/// let links = LinkBase::new("https://afiliados.example.ec/")?
///     .with_path(TokenPurpose::Reset, "/clave/nueva")?;
/// assert_eq!(links.base(), "https://afiliados.example.ec");
/// assert_eq!(links.path(TokenPurpose::Unlock), "/desbloquear");
/// assert_eq!(links.path(TokenPurpose::Reset), "/clave/nueva");
/// assert!(LinkBase::new("http://afiliados.example.ec").is_err());
/// assert!(LinkBase::new("http://localhost:8080").is_ok());
/// # Ok::<(), afiliado::notices::NoticeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkBase {
    base: String,
    activation: String,
    unlock: String,
    reset: String,
    email_change: String,
}

impl LinkBase {
    /// Default path of activation links.
    pub const ACTIVATION_PATH: &'static str = "/activar";
    /// Default path of unlock links.
    pub const UNLOCK_PATH: &'static str = "/desbloquear";
    /// Default path of reset links.
    pub const RESET_PATH: &'static str = "/restablecer";
    /// Default path of email-change confirmation links.
    pub const EMAIL_CHANGE_PATH: &'static str = "/confirmar-correo";

    /// Validates `base` and keeps the default paths.
    ///
    /// The base must be `https://host[:port][/path]`, or plain `http://` only for
    /// `localhost` and `127.0.0.1` (development). The host is ASCII (`punycode` for
    /// international names) with no user info; the path uses only unreserved characters,
    /// `/` and `%XX` escapes; there is no query and no fragment. Trailing slashes are
    /// trimmed.
    ///
    /// # Errors
    ///
    /// [`NoticeError::InvalidBase`] naming the broken rule.
    pub fn new(base: &str) -> Result<Self, NoticeError> {
        Ok(Self {
            base: validate_base(base)?,
            activation: Self::ACTIVATION_PATH.to_owned(),
            unlock: Self::UNLOCK_PATH.to_owned(),
            reset: Self::RESET_PATH.to_owned(),
            email_change: Self::EMAIL_CHANGE_PATH.to_owned(),
        })
    }

    /// Replaces the path of `purpose`'s links (setting [`TokenPurpose::Activation`] or
    /// [`TokenPurpose::ActivationCode`] sets the activation path). The path starts with `/`
    /// and uses the same characters as the base's path.
    ///
    /// # Errors
    ///
    /// [`NoticeError::InvalidPath`] naming the broken rule.
    pub fn with_path(mut self, purpose: TokenPurpose, path: &str) -> Result<Self, NoticeError> {
        let reason = |reason| NoticeError::InvalidPath { purpose, reason };
        if !path.starts_with('/') {
            return Err(reason("must start with '/'"));
        }
        if path.len() < 2 {
            return Err(reason("must not be empty"));
        }
        check_path(path).map_err(reason)?;
        let slot = match purpose {
            TokenPurpose::Activation | TokenPurpose::ActivationCode => &mut self.activation,
            TokenPurpose::Unlock => &mut self.unlock,
            TokenPurpose::Reset => &mut self.reset,
            TokenPurpose::EmailChange => &mut self.email_change,
            TokenPurpose::Device => return Err(reason("device tokens travel in no link")),
        };
        *slot = path.to_owned();
        Ok(self)
    }

    /// The validated base URL, without trailing slash.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The path of `purpose`'s links.
    #[must_use]
    pub fn path(&self, purpose: TokenPurpose) -> &str {
        match purpose {
            TokenPurpose::Activation | TokenPurpose::ActivationCode => &self.activation,
            TokenPurpose::Unlock => &self.unlock,
            TokenPurpose::Reset => &self.reset,
            TokenPurpose::EmailChange => &self.email_change,
            // Device tokens never travel in a mail.
            TokenPurpose::Device => "",
        }
    }

    /// The link for `token`: `{base}{path}?token={token}`. Tokens are base64url, so nothing
    /// needs escaping. The result holds the secret token: handle it like one.
    #[must_use]
    pub fn link(&self, purpose: TokenPurpose, token: &Token) -> String {
        let path = self.path(purpose);
        let secret = token.expose_secret();
        let mut link =
            String::with_capacity(self.base.len() + path.len() + "?token=".len() + secret.len());
        link.push_str(&self.base);
        link.push_str(path);
        link.push_str("?token=");
        link.push_str(secret);
        link
    }
}

/// Checks a base URL and returns it without trailing slashes.
fn validate_base(base: &str) -> Result<String, NoticeError> {
    let invalid = |reason| NoticeError::InvalidBase { reason };
    if base.contains(['?', '#']) {
        return Err(invalid("must not have a query or fragment"));
    }
    if !base.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("must be printable ASCII without spaces"));
    }
    let (rest, https) = if let Some(rest) = base.strip_prefix("https://") {
        (rest, true)
    } else if let Some(rest) = base.strip_prefix("http://") {
        (rest, false)
    } else {
        return Err(invalid("must start with https://"));
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.contains('@') {
        return Err(invalid("must not contain user info"));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(invalid("has no host"));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        || host.starts_with(['.', '-'])
        || host.contains("..")
    {
        return Err(invalid("host is not a valid name"));
    }
    if let Some(port) = port {
        if port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().map_or(true, |p| p == 0)
        {
            return Err(invalid("port is not a number in 1..=65535"));
        }
    }
    let loopback = host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1";
    if !(https || loopback) {
        return Err(invalid(
            "must start with https:// (http:// only for localhost or 127.0.0.1)",
        ));
    }
    check_path(path).map_err(invalid)?;
    Ok(base.trim_end_matches('/').to_owned())
}

/// Allows unreserved characters, `/` and well-formed `%XX` escapes.
fn check_path(path: &str) -> Result<(), &'static str> {
    let bytes = path.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return Err("path has a malformed %-escape");
            }
            i += 3;
        } else if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            i += 1;
        } else {
            return Err(
                "path may hold only letters, digits, '-', '.', '_', '~', '/' and %-escapes",
            );
        }
    }
    Ok(())
}

/// Renders `notice` into a mail with id `message_id` (the outbox idempotency key): the
/// plain-text body, the subject, and the HTML alternative, from the embedded templates of the
/// notice's [`Locale`].
///
/// Link-bearing notices ([`NoticeKind::link_purpose`]) need the unsealed `secrets`; an
/// [`NoticeKind::Activation`] with `with_code` also needs `secrets.code`. Secrets given for a
/// notice without a link, or a code for an activation without `with_code`, are ignored.
///
/// # Errors
///
/// [`NoticeError::MissingSecrets`], [`NoticeError::MissingCode`],
/// [`NoticeError::TimeOutOfRange`] for a time that cannot be shown in Ecuador time, or
/// [`NoticeError::Template`] if a template fails to load or render.
pub fn render(
    notice: &Notice,
    secrets: Option<&LinkSecrets>,
    links: &LinkBase,
    message_id: &str,
) -> Result<Mail, NoticeError> {
    let link = match notice.kind.link_purpose() {
        Some(purpose) => {
            let secrets = secrets.ok_or(NoticeError::MissingSecrets { purpose })?;
            Secret::value(Zeroizing::new(links.link(purpose, &secrets.token)))?
        }
        None => Value::UNDEFINED,
    };
    let code = match (&notice.kind, secrets) {
        (
            NoticeKind::Activation {
                with_code: true, ..
            },
            Some(s),
        ) => {
            let code = s.code.as_ref().ok_or(NoticeError::MissingCode)?;
            Secret::value(Zeroizing::new(code.expose_secret().to_owned()))?
        }
        _ => Value::UNDEFINED,
    };
    let facts = Facts::of(&notice.kind)?;
    let ctx = context! {
        link,
        code,
        expires_at => defined(facts.expires_at),
        unlock_at => defined(facts.unlock_at),
        reason => defined(facts.reason),
        new_masked => defined(facts.new_masked),
    };
    let dir = match notice.locale {
        Locale::EsEc => "es-EC",
        Locale::En => "en",
    };
    let env = environment()?;

    // Text first: its `subject` block is the subject of the mail (and the HTML title).
    let text_template = env
        .get_template(&format!("{dir}/{}.txt", facts.template))
        .map_err(template_error)?;
    // Sized so that the bodies are written without reallocating (no stray copies of the link).
    let mut text = Vec::with_capacity(TEXT_CAPACITY);
    let mut captured = text_template
        .render_captured_to(ctx.clone(), &mut text)
        .map_err(template_error)?;
    let subject = captured
        .with_state_mut(|state| state.render_block("subject"))
        .map_err(template_error)?;
    drop(captured);
    let text = String::from_utf8(text).map_err(|_| not_utf8(&text_template))?;

    let html_template = env
        .get_template(&format!("{dir}/{}.html", facts.template))
        .map_err(template_error)?;
    let mut html = Vec::with_capacity(HTML_CAPACITY);
    html_template
        .render_captured_to(context! { subject => subject.as_str(), ..ctx }, &mut html)
        .map_err(template_error)?;
    let html = String::from_utf8(html).map_err(|_| not_utf8(&html_template))?;

    Ok(Mail::new(message_id, notice.to.clone(), subject, text).with_html(html))
}

/// Capacity of the text buffer: every text mail is well under it.
const TEXT_CAPACITY: usize = 4 * 1024;
/// Capacity of the HTML buffer: every HTML mail is well under it.
const HTML_CAPACITY: usize = 16 * 1024;

/// The non-secret facts of one notice: its template and the values its templates show.
struct Facts<'a> {
    /// File stem of the notice's templates (`activation` → `es-EC/activation.txt` …).
    template: &'static str,
    /// Link (and code) expiry, rounded down.
    expires_at: Option<String>,
    /// Automatic unlock, rounded up.
    unlock_at: Option<String>,
    /// Why the account is locked: `failed_logins`, `failed_recovery` or `staff`.
    reason: Option<&'static str>,
    /// The new, masked contact address.
    new_masked: Option<&'a str>,
}

impl<'a> Facts<'a> {
    /// The facts of `kind`, with its times formatted.
    fn of(kind: &'a NoticeKind) -> Result<Self, NoticeError> {
        let only = |template| Self {
            template,
            expires_at: None,
            unlock_at: None,
            reason: None,
            new_masked: None,
        };
        let expiring = |template, expires_at| -> Result<Self, NoticeError> {
            Ok(Self {
                expires_at: Some(ecuador_time(expires_at, Round::Down)?),
                ..only(template)
            })
        };
        Ok(match kind {
            NoticeKind::Activation { expires_at, .. } => expiring("activation", *expires_at)?,
            NoticeKind::UnlockLink { expires_at } => expiring("unlock_link", *expires_at)?,
            NoticeKind::ResetLink { expires_at } => expiring("reset_link", *expires_at)?,
            NoticeKind::Locked { reason, until } => Self {
                reason: Some(match reason {
                    LockReason::FailedLogins => "failed_logins",
                    LockReason::FailedRecovery => "failed_recovery",
                    LockReason::Staff => "staff",
                }),
                unlock_at: until.map(|t| ecuador_time(t, Round::Up)).transpose()?,
                ..only("locked")
            },
            NoticeKind::Unlocked => only("unlocked"),
            NoticeKind::PasswordChanged => only("password_changed"),
            NoticeKind::EmailChangedFrom { new_masked } => Self {
                new_masked: Some(new_masked),
                ..only("email_changed_from")
            },
            NoticeKind::EmailChangedTo => only("email_changed_to"),
            NoticeKind::EmailChangeConfirm { expires_at } => {
                expiring("email_change_confirm", *expires_at)?
            }
            NoticeKind::EmailChangeRequested { new_masked } => Self {
                new_masked: Some(new_masked),
                ..only("email_change_requested")
            },
            NoticeKind::RegistrationAttemptOnActive => only("registration_attempt_on_active"),
        })
    }
}

/// A value the templates may show, or undefined (printing it is then a template error).
fn defined<T: Into<Value>>(value: Option<T>) -> Value {
    value.map_or(Value::UNDEFINED, Into::into)
}

/// How a time is rounded to the minute.
#[derive(Clone, Copy)]
enum Round {
    /// Earlier: for expiries.
    Down,
    /// Later: for automatic unlocks.
    Up,
}

/// `22/11/2026 19:25` in Ecuador time.
fn ecuador_time(t: OffsetDateTime, round: Round) -> Result<String, NoticeError> {
    let mut t = t
        .checked_to_offset(ECUADOR)
        .ok_or(NoticeError::TimeOutOfRange)?;
    if matches!(round, Round::Up) && (t.second() != 0 || t.nanosecond() != 0) {
        let to_next_minute = Duration::seconds(i64::from(60 - t.second()))
            - Duration::nanoseconds(i64::from(t.nanosecond()));
        t = t
            .checked_add(to_next_minute)
            .ok_or(NoticeError::TimeOutOfRange)?;
    }
    Ok(format!(
        "{:02}/{:02}/{:04} {:02}:{:02}",
        t.day(),
        u8::from(t.month()),
        t.year(),
        t.hour(),
        t.minute()
    ))
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

/// The templates, embedded at compile time: `src/templates/{locale}/{stem}.{txt,html}`.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("templates/", $name)))),*]
    };
}

/// Every template, by name. `.html` templates are auto-escaped, `.txt` templates are not.
const TEMPLATES: &[(&str, &str)] = templates![
    "es-EC/layout.txt",
    "es-EC/layout.html",
    "es-EC/activation.txt",
    "es-EC/activation.html",
    "es-EC/unlock_link.txt",
    "es-EC/unlock_link.html",
    "es-EC/reset_link.txt",
    "es-EC/reset_link.html",
    "es-EC/locked.txt",
    "es-EC/locked.html",
    "es-EC/unlocked.txt",
    "es-EC/unlocked.html",
    "es-EC/password_changed.txt",
    "es-EC/password_changed.html",
    "es-EC/email_changed_from.txt",
    "es-EC/email_changed_from.html",
    "es-EC/email_changed_to.txt",
    "es-EC/email_changed_to.html",
    "es-EC/registration_attempt_on_active.txt",
    "es-EC/registration_attempt_on_active.html",
    "es-EC/email_change_confirm.txt",
    "es-EC/email_change_confirm.html",
    "es-EC/email_change_requested.txt",
    "es-EC/email_change_requested.html",
    "en/layout.txt",
    "en/layout.html",
    "en/activation.txt",
    "en/activation.html",
    "en/unlock_link.txt",
    "en/unlock_link.html",
    "en/reset_link.txt",
    "en/reset_link.html",
    "en/locked.txt",
    "en/locked.html",
    "en/unlocked.txt",
    "en/unlocked.html",
    "en/password_changed.txt",
    "en/password_changed.html",
    "en/email_changed_from.txt",
    "en/email_changed_from.html",
    "en/email_changed_to.txt",
    "en/email_changed_to.html",
    "en/registration_attempt_on_active.txt",
    "en/registration_attempt_on_active.html",
    "en/email_change_confirm.txt",
    "en/email_change_confirm.html",
    "en/email_change_requested.txt",
    "en/email_change_requested.html",
];

/// The template environment, built once on first use.
fn environment() -> Result<&'static Environment<'static>, NoticeError> {
    static ENVIRONMENT: OnceLock<Result<Environment<'static>, NoticeError>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(build_environment)
        .as_ref()
        .map_err(Clone::clone)
}

fn build_environment() -> Result<Environment<'static>, NoticeError> {
    let mut env = Environment::new();
    // Block tags on their own line leave no trace: the text templates read like the mails.
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(template_error)?;
    env.set_syntax(syntax);
    // Printing a value the notice does not have is an error, not an empty string.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_formatter(format_value);
    for (name, source) in TEMPLATES {
        env.add_template(name, source).map_err(template_error)?;
    }
    Ok(env)
}

/// Writes a value into a template's output.
///
/// The link and the code ([`Secret`]s) are written as they are: they are HTML-safe by
/// construction (checked in [`Secret::value`]), and so are written without a temporary copy.
/// In auto-escaped (`.html`) templates every other string has `&`, `<`, `>`, `"` and `'`
/// escaped; minijinja's default escaper would also turn `/` into `&#x2f;`, which HTML does not
/// need and which would garble the dates and the visible link. Anything else goes to
/// minijinja's default formatter.
fn format_value(
    out: &mut Output<'_>,
    state: &mut State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    if let Some(secret) = value.downcast_object_ref::<Secret>() {
        return out.write_str(&secret.0).map_err(Error::from);
    }
    if matches!(state.auto_escape(), AutoEscape::Html) && !value.is_safe() {
        if let Some(s) = value.as_str() {
            return write_html_escaped(out, s).map_err(Error::from);
        }
    }
    escape_formatter(out, state, value)
}

/// Writes `s` with the five HTML-significant characters escaped.
fn write_html_escaped(out: &mut Output<'_>, s: &str) -> fmt::Result {
    let mut rest = s;
    while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
        let (plain, tail) = rest.split_at(i);
        out.write_str(plain)?;
        let mut chars = tail.chars();
        out.write_str(match chars.next() {
            Some('&') => "&amp;",
            Some('<') => "&lt;",
            Some('>') => "&gt;",
            Some('"') => "&quot;",
            _ => "&#39;",
        })?;
        rest = chars.as_str();
    }
    out.write_str(rest)
}

/// A link or code while a mail is rendered: zeroized when the render is done, hidden from
/// `Debug`, and written into the output without intermediate copies.
struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps `secret` for the templates. Links (validated base, unreserved path characters,
    /// base64url token) and codes (digits) never hold an HTML-significant character; one that
    /// did would be refused rather than written unescaped.
    fn value(secret: Zeroizing<String>) -> Result<Value, NoticeError> {
        if secret.contains(['&', '<', '>', '"', '\'']) {
            return Err(NoticeError::Template(
                "a link or code holds a character that would need HTML escaping".to_owned(),
            ));
        }
        Ok(Value::from_object(Self(secret)))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Object for Secret {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A template error, as a message without values: the kind of error and where it happened.
fn template_error(err: Error) -> NoticeError {
    let kind = err.kind();
    NoticeError::Template(match (err.name(), err.line()) {
        (Some(name), Some(line)) => format!("{kind} (in {name}:{line})"),
        (Some(name), None) => format!("{kind} (in {name})"),
        _ => kind.to_string(),
    })
}

fn not_utf8(template: &Template<'_, '_>) -> NoticeError {
    NoticeError::Template(format!("output of {} is not UTF-8", template.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_loads() {
        let env = environment().expect("templates load");
        for (name, _) in TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn html_values_are_escaped_but_slashes_kept() {
        let env = environment().expect("templates load");
        let tmpl = env
            .template_from_named_str("t.html", "{{ a }}|{{ b }}|{{ c|safe }}")
            .expect("parses");
        let out = tmpl
            .render(context! { a => "<a href=\"x\">&'</a>", b => "22/11/2026", c => "<b>" })
            .expect("renders");
        assert_eq!(
            out,
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;|22/11/2026|<b>"
        );
        let tmpl = env
            .template_from_named_str("t.txt", "{{ a }}")
            .expect("parses");
        assert_eq!(
            tmpl.render(context! { a => "<&>" }).expect("renders"),
            "<&>"
        );
    }

    #[test]
    fn unsafe_secrets_are_refused() {
        let err = Secret::value(Zeroizing::new("https://x.ec/a?token=<b>".to_owned()))
            .expect_err("refused");
        assert!(matches!(err, NoticeError::Template(ref m) if !m.contains("token")));
    }

    #[test]
    fn template_errors_carry_no_values() {
        let env = environment().expect("templates load");
        let tmpl = env
            .template_from_named_str("t.txt", "{{ missing }}")
            .expect("parses");
        let err = template_error(
            tmpl.render(context! { secret => "s3cr3t" })
                .expect_err("undefined"),
        );
        let msg = err.to_string();
        assert!(msg.contains("t.txt"), "{msg}");
        assert!(!msg.contains("s3cr3t") && !msg.contains("missing"), "{msg}");
    }
}
