//! Rendering of [`Notice`]s into plain-text [`Mail`]s, in the member's [`Locale`].
//!
//! The outbox dispatcher claims a message, unseals its [`LinkSecrets`] (link-bearing notices
//! only) and calls [`render`]; the resulting [`Mail`] goes to the [`Mailer`](crate::ports::Mailer).
//!
//! * Links are built **only** from the configured [`LinkBase`]: never from a request's `Host`
//!   header or anything else an attacker could influence.
//! * Times are shown in continental Ecuador time (`America/Guayaquil`: UTC−5 all year, no
//!   daylight saving), as `22/11/2026 19:25` followed by `(hora de Ecuador)` /
//!   `(Ecuador time)`. Link expiries are rounded *down* to the minute (the link still works
//!   at the time shown); automatic-unlock times are rounded *up* (the account is unlocked at
//!   the time shown).
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
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
}

impl LinkBase {
    /// Default path of activation links.
    pub const ACTIVATION_PATH: &'static str = "/activar";
    /// Default path of unlock links.
    pub const UNLOCK_PATH: &'static str = "/desbloquear";
    /// Default path of reset links.
    pub const RESET_PATH: &'static str = "/restablecer";

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

/// Renders `notice` into a mail with id `message_id` (the outbox idempotency key).
///
/// Link-bearing notices ([`NoticeKind::link_purpose`]) need the unsealed `secrets`; an
/// [`NoticeKind::Activation`] with `with_code` also needs `secrets.code`. Secrets given for a
/// notice without a link, or a code for an activation without `with_code`, are ignored.
///
/// # Errors
///
/// [`NoticeError::MissingSecrets`], [`NoticeError::MissingCode`], or
/// [`NoticeError::TimeOutOfRange`] for a time that cannot be shown in Ecuador time.
pub fn render(
    notice: &Notice,
    secrets: Option<&LinkSecrets>,
    links: &LinkBase,
    message_id: &str,
) -> Result<Mail, NoticeError> {
    let link = match notice.kind.link_purpose() {
        Some(purpose) => {
            let secrets = secrets.ok_or(NoticeError::MissingSecrets { purpose })?;
            Some(Zeroizing::new(links.link(purpose, &secrets.token)))
        }
        None => None,
    };
    let code = match (&notice.kind, secrets) {
        (
            NoticeKind::Activation {
                with_code: true, ..
            },
            Some(s),
        ) => Some(
            s.code
                .as_ref()
                .ok_or(NoticeError::MissingCode)?
                .expose_secret(),
        ),
        _ => None,
    };
    let facts = Facts {
        link: link.as_ref().map_or("", |l| l.as_str()),
        code,
    };
    // Sized so that the body is written without reallocating (no stray copies of the link).
    let mut body = String::with_capacity(4096);
    let subject = match notice.locale {
        Locale::EsEc => es_ec(&notice.kind, &facts, &mut body)?,
        Locale::En => en(&notice.kind, &facts, &mut body)?,
    };
    Ok(Mail::new(message_id, notice.to.clone(), subject, body))
}

/// The secrets of one mail, exposed only while it is written.
struct Facts<'a> {
    link: &'a str,
    code: Option<&'a str>,
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

/// Appends paragraphs separated by blank lines.
struct Body<'a>(&'a mut String);

impl Body<'_> {
    fn para(&mut self, text: &str) -> &mut Self {
        if !self.0.is_empty() {
            self.0.push_str("\n\n");
        }
        self.0.push_str(text);
        self
    }

    /// A link alone on its line, so mail clients make it clickable.
    fn link(&mut self, link: &str) -> &mut Self {
        self.para(link)
    }
}

// ---------------------------------------------------------------------------------------------
// Spanish (Ecuador)
// ---------------------------------------------------------------------------------------------

const ES_GREETING: &str = "Estimado(a) afiliado(a):";
const ES_FOOTER: &str = "Este es un mensaje automático; por favor, no responda a este correo.\n\
    Nunca le solicitaremos su contraseña ni sus códigos por correo electrónico ni por teléfono.";
const ES_TIME: &str = "(hora de Ecuador)";

/// Writes the Spanish body into `out` and returns the subject.
fn es_ec(kind: &NoticeKind, facts: &Facts<'_>, out: &mut String) -> Result<String, NoticeError> {
    let mut b = Body(out);
    b.para(ES_GREETING);
    let subject = match kind {
        NoticeKind::Activation {
            expires_at,
            with_code,
        } => {
            let at = ecuador_time(*expires_at, Round::Down)?;
            b.para("Recibimos su solicitud de registro. Para activar su cuenta, abra el siguiente enlace:")
                .link(facts.link);
            match (with_code, facts.code) {
                (true, Some(code)) => {
                    // Written in place: no intermediate copy of the code.
                    b.para("Su código de activación es ");
                    b.0.push_str(code);
                    b.0.push_str(". Ingréselo cuando el portal se lo solicite.");
                    b.para(&format!(
                        "El enlace y el código vencen el {at} {ES_TIME}. No los comparta con nadie."
                    ));
                }
                _ => {
                    b.para(&format!(
                        "Este enlace vence el {at} {ES_TIME}. No lo comparta con nadie."
                    ));
                }
            }
            b.para("Si usted no solicitó este registro, ignore este mensaje: la cuenta no se activará.");
            "Active su cuenta de afiliado"
        }
        NoticeKind::UnlockLink { expires_at } => {
            let at = ecuador_time(*expires_at, Round::Down)?;
            b.para("Recibimos una solicitud para desbloquear su cuenta. Para desbloquearla, abra el siguiente enlace:")
                .link(facts.link)
                .para(&format!(
                    "Este enlace vence el {at} {ES_TIME} y solo puede usarse una vez. No lo comparta con nadie."
                ))
                .para("Si usted no solicitó el desbloqueo, ignore este mensaje: su cuenta seguirá bloqueada.");
            "Desbloqueo de su cuenta"
        }
        NoticeKind::ResetLink { expires_at } => {
            let at = ecuador_time(*expires_at, Round::Down)?;
            b.para("Recibimos una solicitud para restablecer la contraseña de su cuenta. Para elegir una nueva contraseña, abra el siguiente enlace:")
                .link(facts.link)
                .para(&format!(
                    "Este enlace vence el {at} {ES_TIME} y solo puede usarse una vez. No lo comparta con nadie."
                ))
                .para("Si usted no solicitó este cambio, ignore este mensaje: su contraseña actual seguirá vigente.");
            "Restablecimiento de su contraseña"
        }
        NoticeKind::Locked { reason, until } => {
            b.para(match reason {
                LockReason::FailedLogins => {
                    "Su cuenta fue bloqueada porque se registraron varios intentos fallidos de inicio de sesión."
                }
                LockReason::FailedRecovery => {
                    "Su cuenta fue bloqueada porque se registraron varios intentos fallidos de verificación de identidad al recuperar la contraseña."
                }
                LockReason::Staff => "Su cuenta fue suspendida por la institución.",
            });
            match (until, reason) {
                (Some(until), _) => {
                    let at = ecuador_time(*until, Round::Up)?;
                    b.para(&format!(
                        "Se desbloqueará automáticamente el {at} {ES_TIME}; a partir de ese momento podrá iniciar sesión nuevamente."
                    ));
                }
                (None, LockReason::Staff) => {
                    b.para("Para conocer el motivo o solicitar la reactivación de su cuenta, comuníquese con la institución.");
                }
                (None, LockReason::FailedLogins | LockReason::FailedRecovery) => {
                    b.para("Para desbloquearla, solicite un enlace de desbloqueo o restablezca su contraseña desde el portal; el enlace llegará a este correo. También puede comunicarse con la institución.");
                }
            }
            if *reason != LockReason::Staff {
                b.para("Si usted no realizó estos intentos, es posible que otra persona esté intentando ingresar a su cuenta: le recomendamos cambiar su contraseña en cuanto recupere el acceso.");
            }
            "Su cuenta ha sido bloqueada"
        }
        NoticeKind::Unlocked => {
            b.para("Su cuenta fue desbloqueada y ya puede iniciar sesión.")
                .para("Si usted no solicitó el desbloqueo, comuníquese con la institución de inmediato.");
            "Su cuenta ha sido desbloqueada"
        }
        NoticeKind::PasswordChanged => {
            b.para("La contraseña de su cuenta fue cambiada. Si usted realizó este cambio, no necesita hacer nada más.")
                .para("Si usted no cambió su contraseña, restablézcala de inmediato desde el portal y comuníquese con la institución.");
            "Su contraseña ha sido cambiada"
        }
        NoticeKind::EmailChangedFrom { new_masked } => {
            b.para(&format!(
                "El correo electrónico de contacto de su cuenta fue cambiado a {new_masked}. Desde ahora, los avisos y enlaces de su cuenta se enviarán a esa dirección y no a esta."
            ))
            .para("Si usted no realizó este cambio, comuníquese con la institución de inmediato.");
            "Cambio del correo electrónico de su cuenta"
        }
        NoticeKind::EmailChangedTo => {
            b.para("Esta dirección es ahora el correo electrónico de contacto de su cuenta de afiliado. Aquí recibirá los avisos y enlaces de su cuenta.")
                .para("Si usted no solicitó este cambio, comuníquese con la institución de inmediato.");
            "Nuevo correo electrónico de contacto"
        }
        NoticeKind::RegistrationAttemptOnActive => {
            b.para("Recibimos una solicitud de registro para su cuenta, que ya está activa. Su cuenta no ha sido modificada.")
                .para("Si fue usted, no necesita registrarse otra vez: inicie sesión con su contraseña o, si no la recuerda, recupérela desde el portal.")
                .para("Si no fue usted, puede ignorar este mensaje.");
            "Intento de registro de su cuenta"
        }
    };
    b.para(ES_FOOTER);
    Ok(subject.to_owned())
}

// ---------------------------------------------------------------------------------------------
// English
// ---------------------------------------------------------------------------------------------

const EN_GREETING: &str = "Dear member,";
const EN_FOOTER: &str = "This is an automated message; please do not reply to it.\n\
    We will never ask for your password or codes by email or by phone.";
const EN_TIME: &str = "(Ecuador time)";

/// Writes the English body into `out` and returns the subject.
fn en(kind: &NoticeKind, facts: &Facts<'_>, out: &mut String) -> Result<String, NoticeError> {
    let mut b = Body(out);
    b.para(EN_GREETING);
    let subject = match kind {
        NoticeKind::Activation {
            expires_at,
            with_code,
        } => {
            let at = ecuador_time(*expires_at, Round::Down)?;
            b.para("We received your registration. To activate your account, open this link:")
                .link(facts.link);
            match (with_code, facts.code) {
                (true, Some(code)) => {
                    b.para("Your activation code is ");
                    b.0.push_str(code);
                    b.0.push_str(". Enter it when the portal asks for it.");
                    b.para(&format!(
                        "The link and the code expire on {at} {EN_TIME}. Do not share them with anyone."
                    ));
                }
                _ => {
                    b.para(&format!(
                        "This link expires on {at} {EN_TIME}. Do not share it with anyone."
                    ));
                }
            }
            b.para(
                "If you did not register, ignore this message: the account will not be activated.",
            );
            "Activate your member account"
        }
        NoticeKind::UnlockLink { expires_at } => {
            let at = ecuador_time(*expires_at, Round::Down)?;
            b.para("We received a request to unlock your account. To unlock it, open this link:")
                .link(facts.link)
                .para(&format!(
                    "This link expires on {at} {EN_TIME} and works only once. Do not share it with anyone."
                ))
                .para("If you did not ask to unlock your account, ignore this message: it will stay locked.");
            "Unlock your account"
        }
        NoticeKind::ResetLink { expires_at } => {
            let at = ecuador_time(*expires_at, Round::Down)?;
            b.para("We received a request to reset the password of your account. To choose a new password, open this link:")
                .link(facts.link)
                .para(&format!(
                    "This link expires on {at} {EN_TIME} and works only once. Do not share it with anyone."
                ))
                .para("If you did not ask for this, ignore this message: your current password stays valid.");
            "Reset your password"
        }
        NoticeKind::Locked { reason, until } => {
            b.para(match reason {
                LockReason::FailedLogins => {
                    "Your account was locked after several failed login attempts."
                }
                LockReason::FailedRecovery => {
                    "Your account was locked after several failed identity checks during password recovery."
                }
                LockReason::Staff => "Your account was suspended by the institution.",
            });
            match (until, reason) {
                (Some(until), _) => {
                    let at = ecuador_time(*until, Round::Up)?;
                    b.para(&format!(
                        "It will unlock automatically on {at} {EN_TIME}; from then on you can log in again."
                    ));
                }
                (None, LockReason::Staff) => {
                    b.para("To learn why or to ask for your account to be reinstated, contact the institution.");
                }
                (None, LockReason::FailedLogins | LockReason::FailedRecovery) => {
                    b.para("To unlock it, request an unlock link or reset your password on the portal; the link will be sent to this address. You can also contact the institution.");
                }
            }
            if *reason != LockReason::Staff {
                b.para("If these attempts were not yours, someone may be trying to access your account: we recommend changing your password as soon as you regain access.");
            }
            "Your account has been locked"
        }
        NoticeKind::Unlocked => {
            b.para("Your account was unlocked and you can log in again.")
                .para("If you did not ask for this, contact the institution immediately.");
            "Your account has been unlocked"
        }
        NoticeKind::PasswordChanged => {
            b.para("The password of your account was changed. If you made this change, there is nothing else to do.")
                .para("If you did not change your password, reset it on the portal immediately and contact the institution.");
            "Your password has been changed"
        }
        NoticeKind::EmailChangedFrom { new_masked } => {
            b.para(&format!(
                "The contact email address of your account was changed to {new_masked}. From now on, the notices and links of your account will be sent to that address, not to this one."
            ))
            .para("If you did not make this change, contact the institution immediately.");
            "The email address of your account was changed"
        }
        NoticeKind::EmailChangedTo => {
            b.para("This is now the contact email address of your member account. You will receive the notices and links of your account here.")
                .para("If you did not ask for this change, contact the institution immediately.");
            "New contact email address"
        }
        NoticeKind::RegistrationAttemptOnActive => {
            b.para("We received a registration request for your account, which is already active. Your account was not changed.")
                .para("If it was you, you do not need to register again: log in with your password or, if you do not remember it, recover it on the portal.")
                .para("If it was not you, you can ignore this message.");
            "Registration attempt for your account"
        }
    };
    b.para(EN_FOOTER);
    Ok(subject.to_owned())
}
