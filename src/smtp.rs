//! SMTP delivery: [`SmtpMailer`], a [`Mailer`] over an SMTP relay (lettre, rustls).
//!
//! Configured from a URL and a sender address:
//!
//! ```
//! use afiliado::smtp::SmtpMailer;
//!
//! let mailer = SmtpMailer::from_url("smtp://avisos:s%40cr3t@smtp.isspol.example.ec:587?tls=starttls&timeout=10")?
//!     .from("ISSPOL <no-responder@isspol.example.ec>")?
//!     .build()?;
//! // `Debug` never shows the password.
//! assert!(!format!("{mailer:?}").contains("cr3t"));
//! # Ok::<(), afiliado::smtp::SmtpError>(())
//! ```
//!
//! ## The URL
//!
//! `smtp://[user:password@]host[:port][?tls=starttls|implicit|none][&timeout=seconds]`
//!
//! * `tls=starttls` (the default for `smtp://`): plain connection upgraded with `STARTTLS`,
//!   which is **required** (a server that does not offer it is an error, never a silent
//!   downgrade). Default port 587.
//! * `tls=implicit` (the default for `smtps://`): TLS from the first byte. Default port 465.
//! * `tls=none`: plaintext, only to `localhost`, `127.0.0.1` or `[::1]` (a local relay or a
//!   development catcher); any other host is refused with [`SmtpError::PlaintextNotLocal`].
//! * Certificates are verified against the Mozilla roots (`webpki-roots`, compiled in: no
//!   system certificate store is needed); a private CA is added with
//!   [`SmtpMailerBuilder::root_certificate_pem`].
//! * `user:password` (percent-encoded, e.g. `@` as `%40`) authenticates with `PLAIN` or
//!   `LOGIN`, after TLS is up.
//! * `timeout` (seconds, 1–3600, default 30) bounds the TCP connect and, separately, each
//!   whole delivery (greeting, TLS, authentication, envelope and data).
//! * Unknown parameters are errors, so a typo (`tsl=none`) cannot silently change security.
//!
//! Configuration errors ([`SmtpError`]) never repeat the URL or the password.
//!
//! ## Delivery
//!
//! Each [`Mailer::send`] opens one connection, delivers one message and closes it (no pool:
//! the outbox dispatcher sends little, and a cancelled or timed-out delivery cannot leave a
//! half-used connection behind). Failures map onto [`MailError`]:
//!
//! * connection refused, DNS, TLS, timeouts, `4xx` replies → [`MailError::Transient`] (the
//!   dispatcher retries with backoff);
//! * `5xx` replies → [`MailError::Permanent`] (dead-lettered at once), **except** the
//!   authentication failures `530`, `534`, `535` and `538`: those are the relay's
//!   configuration, not the message's fault, so they are transient and the messages go out
//!   once the credentials are fixed (or dead-letter after the dispatcher's attempts);
//! * a recipient address the message builder cannot encode → [`MailError::Permanent`].
//!
//! Failure reasons hold the reply code and the server's text (control characters removed,
//! at most 200 characters); never the mail's body. The configured user name and password
//! are masked should a server echo them, and so are e-mail addresses (`a***@example.ec`)
//! and runs of 9 or more digits (`17******65`): servers often repeat the recipient, and
//! the reason ends up in the dead-letter status and the audit log.
//!
//! ## The message
//!
//! `From` (the configured sender), `To`, `Subject` (RFC 2047-encoded when not ASCII),
//! `Date` (the time of the attempt), `Message-ID: <{id}@{sender's domain}>` where `{id}` is
//! the [`Mail::message_id`] (the outbox idempotency key, so a retried message keeps its id
//! and receivers can deduplicate) with every character outside `[A-Za-z0-9._-]` replaced by
//! `_`, and `MIME-Version: 1.0`. The body is `text/plain; charset=utf-8`, or, when
//! [`Mail::html`] is set, `multipart/alternative` of that plain part and a
//! `text/html; charset=utf-8` part. Bodies are `7bit` or `quoted-printable` (chosen by
//! size), so the message is pure ASCII and needs no `8BITMIME`.
//!
//! The tokio runtime running [`Mailer::send`] needs its time driver enabled
//! (`Builder::enable_all`, or `#[tokio::main]`).

use std::error::Error as _;
use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use lettre::Address;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use crate::identity::redact_personal_data;
use crate::ports::{Mail, MailError, Mailer};

/// Why an SMTP configuration was refused. Messages never carry the URL or a password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// The URL is malformed or uses an unsupported option.
    #[error("invalid SMTP URL: {reason}")]
    InvalidUrl {
        /// Which rule it broke.
        reason: &'static str,
    },
    /// `tls=none` towards a host that is not the local machine.
    #[error(
        "plaintext SMTP (tls=none) is only allowed to localhost, 127.0.0.1 or [::1], not to {host}"
    )]
    PlaintextNotLocal {
        /// The refused host.
        host: String,
    },
    /// The sender address (`From`) cannot be used.
    #[error("invalid sender address: {reason}")]
    InvalidSender {
        /// Which rule it broke.
        reason: &'static str,
    },
    /// [`SmtpMailerBuilder::build`] was called without [`SmtpMailerBuilder::from`].
    #[error("no sender address: call .from(\"Name <address@domain>\") before .build()")]
    MissingSender,
    /// A root certificate given with [`SmtpMailerBuilder::root_certificate_pem`] is not a
    /// PEM certificate.
    #[error("invalid root certificate: not a PEM-encoded X.509 certificate")]
    InvalidCertificate,
    /// The TLS client could not be set up.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// How the connection is protected (the URL's `tls` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsMode {
    StartTls,
    Implicit,
    None,
}

impl TlsMode {
    fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::Implicit => 465,
            Self::None => 25,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Implicit => "implicit",
            Self::None => "none",
        }
    }
}

/// The parsed URL.
struct Endpoint {
    host: String,
    port: u16,
    tls: TlsMode,
    timeout: Duration,
    credentials: Option<(String, SecretString)>,
}

/// Default for the URL's `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest accepted `timeout`, in seconds.
const MAX_TIMEOUT_SECS: u64 = 3600;

fn invalid(reason: &'static str) -> SmtpError {
    SmtpError::InvalidUrl { reason }
}

/// Parses `smtp[s]://[user:password@]host[:port][/][?params]`.
fn parse_url(url: &str) -> Result<Endpoint, SmtpError> {
    let (rest, implicit_scheme) = if let Some(rest) = strip_prefix_ignore_case(url, "smtp://") {
        (rest, false)
    } else if let Some(rest) = strip_prefix_ignore_case(url, "smtps://") {
        (rest, true)
    } else {
        return Err(invalid("must start with smtp:// or smtps://"));
    };
    if rest.contains('#') {
        return Err(invalid("must not have a fragment"));
    }
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = match before_query.split_once('/') {
        Some((authority, "")) => authority,
        Some(_) => return Err(invalid("must not have a path")),
        None => before_query,
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };

    let credentials = match userinfo {
        None => None,
        Some(userinfo) => {
            let (user, password) = userinfo
                .split_once(':')
                .ok_or(invalid("user info needs both a user and a password"))?;
            let user = percent_decode(user)?;
            let password = SecretString::from(percent_decode(password)?);
            if user.is_empty() || password.expose_secret().is_empty() {
                return Err(invalid("user info needs both a user and a password"));
            }
            Some((user, password))
        }
    };

    let (host, port) = split_host_port(hostport)?;

    let mut tls = None;
    let mut timeout = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or(invalid("query parameters must be key=value"))?;
        match key {
            "tls" if tls.is_some() => return Err(invalid("tls is given twice")),
            "tls" => {
                tls = Some(match value {
                    "starttls" => TlsMode::StartTls,
                    "implicit" => TlsMode::Implicit,
                    "none" => TlsMode::None,
                    _ => return Err(invalid("tls must be starttls, implicit or none")),
                });
            }
            "timeout" if timeout.is_some() => return Err(invalid("timeout is given twice")),
            "timeout" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| invalid("timeout must be a whole number of seconds"))?;
                if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
                    return Err(invalid("timeout must be between 1 and 3600 seconds"));
                }
                timeout = Some(Duration::from_secs(secs));
            }
            _ => return Err(invalid("unknown query parameter (known: tls, timeout)")),
        }
    }
    let tls = match (tls, implicit_scheme) {
        (Some(TlsMode::Implicit) | None, true) => TlsMode::Implicit,
        (Some(_), true) => return Err(invalid("smtps:// always uses tls=implicit")),
        (Some(mode), false) => mode,
        (None, false) => TlsMode::StartTls,
    };
    if tls == TlsMode::None && !is_loopback(&host) {
        return Err(SmtpError::PlaintextNotLocal { host });
    }
    Ok(Endpoint {
        port: port.unwrap_or(tls.default_port()),
        host,
        tls,
        timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        credentials,
    })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Splits `host[:port]` / `[v6][:port]`; the host comes back without brackets.
fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), SmtpError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or(invalid("unclosed '[' in the host"))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid("the bracketed host is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(invalid("unexpected characters after the IPv6 host"))?,
            ),
        };
        (v6.to_owned(), port)
    } else {
        let (host, port) = match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(invalid(
                "the host must be ASCII letters, digits, '-' and '.' (punycode for IDNs)",
            ));
        }
        (host.to_ascii_lowercase(), port)
    };
    if host.is_empty() {
        return Err(invalid("has no host"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(invalid("the port must be a number from 1 to 65535")),
            Ok(p) => Some(p),
        },
    };
    Ok((host, port))
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, SmtpError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(invalid("bad %-escape in the user info"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("the user info is not UTF-8 once decoded"))
}

// ---------------------------------------------------------------------------------------------
// Message building (shared with the .eml mailer)
// ---------------------------------------------------------------------------------------------

/// The configured sender: its mailbox and the domain used in `Message-ID`s.
#[derive(Clone, Debug)]
pub(crate) struct Sender {
    mailbox: Mailbox,
    domain: String,
}

impl Sender {
    /// Parses `"Name <local@domain>"` or `"local@domain"`.
    pub(crate) fn parse(from: &str) -> Result<Self, SmtpError> {
        let mailbox: Mailbox = from.trim().parse().map_err(|_| SmtpError::InvalidSender {
            reason: "expected \"Name <local@domain>\" or \"local@domain\"",
        })?;
        let domain = mailbox.email.domain().to_ascii_lowercase();
        if domain.is_empty()
            || domain.starts_with('.')
            || domain.ends_with('.')
            || !domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(SmtpError::InvalidSender {
                reason: "the domain must be ASCII (punycode for IDNs)",
            });
        }
        Ok(Self { mailbox, domain })
    }

    /// `Afiliado (desarrollo) <no-responder@afiliado.invalid>` (a reserved domain), the
    /// development mailers' default.
    pub(crate) fn development() -> Self {
        Self {
            mailbox: Mailbox::new(
                Some("Afiliado (desarrollo)".to_owned()),
                Address::new_dangerous("no-responder", "afiliado.invalid"),
            ),
            domain: "afiliado.invalid".to_owned(),
        }
    }
}

/// Turns a [`Mail::message_id`] into a valid `id-left` (RFC 5322 dot-atom-text), and a safe
/// file name: `[A-Za-z0-9._-]` are kept, everything else becomes `_`, and so does a dot
/// at the start, at the end or after another dot. Never empty; at most 200 characters.
pub(crate) fn sanitize_message_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len().min(200));
    let mut chars = id.chars().take(200).peekable();
    let mut prev_dot = true; // a dot at the start is replaced
    while let Some(c) = chars.next() {
        let keep = match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '-' => true,
            '.' => !prev_dot && chars.peek().is_some(),
            _ => false,
        };
        out.push(if keep { c } else { '_' });
        prev_dot = keep && c == '.';
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The full `Message-ID` value of `mail` sent by `sender`: `<{sanitised id}@{domain}>`.
pub(crate) fn message_id_header(mail: &Mail, sender: &Sender) -> String {
    format!(
        "<{}@{}>",
        sanitize_message_id(&mail.message_id),
        sender.domain
    )
}

/// Builds the RFC 5322 message for `mail` (see the [module docs](self)).
///
/// # Errors
///
/// [`MailError::Permanent`] when the recipient cannot be encoded (the address is not in the
/// message: it would land in the audit log).
pub(crate) fn build_message(
    mail: &Mail,
    sender: &Sender,
    date: SystemTime,
) -> Result<Message, MailError> {
    let to: Mailbox = mail.to.as_str().parse().map_err(|_| {
        MailError::Permanent("the recipient address cannot be used in a mail header".into())
    })?;
    let builder = Message::builder()
        .from(sender.mailbox.clone())
        .to(to)
        .subject(mail.subject.as_str())
        .date(date)
        .message_id(Some(message_id_header(mail, sender)));
    let built = match &mail.html {
        None => builder.singlepart(SinglePart::plain(mail.text.clone())),
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            html.clone(),
        )),
    };
    built.map_err(|e| {
        MailError::Permanent(redact_personal_data(&format!(
            "the message cannot be built: {e}"
        )))
    })
}

// ---------------------------------------------------------------------------------------------
// SmtpMailer
// ---------------------------------------------------------------------------------------------

/// Builds an [`SmtpMailer`]: [`SmtpMailer::from_url`], then [`from`](Self::from), then
/// [`build`](Self::build).
pub struct SmtpMailerBuilder {
    endpoint: Endpoint,
    sender: Option<Sender>,
    roots: Vec<Certificate>,
}

impl fmt::Debug for SmtpMailerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailerBuilder")
            .field("host", &self.endpoint.host)
            .field("port", &self.endpoint.port)
            .field("tls", &self.endpoint.tls.name())
            .field("auth", &self.endpoint.credentials.is_some())
            .field(
                "sender",
                &self.sender.as_ref().map(|s| s.mailbox.to_string()),
            )
            .field("extra_roots", &self.roots.len())
            .finish()
    }
}

impl SmtpMailerBuilder {
    /// Sets the sender (`From`, and the envelope sender): `"Name <local@domain>"` or
    /// `"local@domain"`; the display name may be UTF-8, the domain must be ASCII. Its domain
    /// is the right-hand side of every `Message-ID`.
    ///
    /// # Errors
    ///
    /// [`SmtpError::InvalidSender`].
    pub fn from(mut self, sender: &str) -> Result<Self, SmtpError> {
        self.sender = Some(Sender::parse(sender)?);
        Ok(self)
    }

    /// Trusts `pem` (one or more PEM certificates) as a root, besides the Mozilla roots: for
    /// a relay with a certificate from a private CA.
    ///
    /// # Errors
    ///
    /// [`SmtpError::InvalidCertificate`].
    pub fn root_certificate_pem(mut self, pem: &[u8]) -> Result<Self, SmtpError> {
        let cert = Certificate::from_pem(pem).map_err(|_| SmtpError::InvalidCertificate)?;
        self.roots.push(cert);
        Ok(self)
    }

    /// The mailer.
    ///
    /// # Errors
    ///
    /// [`SmtpError::MissingSender`] without [`from`](Self::from); [`SmtpError::Tls`] if the
    /// TLS client cannot be set up.
    pub fn build(self) -> Result<SmtpMailer, SmtpError> {
        let sender = self.sender.ok_or(SmtpError::MissingSender)?;
        let Endpoint {
            host,
            port,
            tls,
            timeout,
            credentials,
        } = self.endpoint;
        let tls_setting = match tls {
            TlsMode::None => Tls::None,
            TlsMode::StartTls | TlsMode::Implicit => {
                let params = self
                    .roots
                    .into_iter()
                    .fold(TlsParameters::builder(host.clone()), |b, cert| {
                        b.add_root_certificate(cert)
                    })
                    .build()
                    .map_err(|e| SmtpError::Tls(e.to_string()))?;
                if tls == TlsMode::Implicit {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls_setting)
            .timeout(Some(timeout))
            .hello_name(ClientId::Domain(sender.domain.clone()));
        let mut redact = Vec::new();
        if let Some((user, password)) = credentials {
            builder = builder
                .credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_owned(),
                ))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
            redact.push(SecretString::from(user));
            redact.push(password);
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            sender,
            host,
            port,
            tls,
            timeout,
            redact,
        })
    }
}

/// A [`Mailer`] delivering through an SMTP relay. See the [module docs](self) for the URL,
/// the error mapping and the message format.
///
/// `Debug` shows the host, port, TLS mode and sender, never the credentials.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    sender: Sender,
    host: String,
    port: u16,
    tls: TlsMode,
    timeout: Duration,
    /// The user name and password, masked in failure reasons.
    redact: Vec<SecretString>,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.name())
            .field("timeout", &self.timeout)
            .field("auth", &!self.redact.is_empty())
            .field("from", &self.sender.mailbox.to_string())
            .finish()
    }
}

impl SmtpMailer {
    /// Parses the relay URL (see the [module docs](self)); finish with
    /// [`SmtpMailerBuilder::from`] and [`SmtpMailerBuilder::build`].
    ///
    /// ```
    /// use afiliado::smtp::{SmtpError, SmtpMailer};
    ///
    /// // Plaintext is for the local machine only.
    /// assert!(SmtpMailer::from_url("smtp://127.0.0.1:2525?tls=none").is_ok());
    /// assert!(matches!(
    ///     SmtpMailer::from_url("smtp://smtp.example.ec?tls=none"),
    ///     Err(SmtpError::PlaintextNotLocal { .. })
    /// ));
    /// // Errors never repeat the password.
    /// let err = SmtpMailer::from_url("smtp://u:hunter2@smtp.example.ec?tsl=none").unwrap_err();
    /// assert!(!err.to_string().contains("hunter2"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`SmtpError::InvalidUrl`] naming the broken rule, or
    /// [`SmtpError::PlaintextNotLocal`].
    pub fn from_url(url: &str) -> Result<SmtpMailerBuilder, SmtpError> {
        Ok(SmtpMailerBuilder {
            endpoint: parse_url(url)?,
            sender: None,
            roots: Vec::new(),
        })
    }

    /// Masks the configured user name and password in `text`, masks e-mail addresses
    /// and cédula-like digit runs (a server's reply often repeats the recipient), removes
    /// control characters and keeps at most 200 characters.
    fn scrub(&self, text: &str) -> String {
        let mut text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        for secret in &self.redact {
            let secret = secret.expose_secret();
            if !secret.is_empty() {
                text = text.replace(secret, "***");
            }
        }
        // Before the cut, so that an address cut in half is still recognised.
        let mut text = redact_personal_data(&text);
        if let Some((cut, _)) = text.char_indices().nth(200) {
            text.truncate(cut);
            text.push('…');
        }
        text
    }

    /// Maps a lettre error onto the port's transient/permanent split.
    fn classify(&self, err: &lettre::transport::smtp::Error) -> MailError {
        if let Some(code) = err.status() {
            let code = u16::from(code);
            // The server's reply text (lettre's own prefix repeats the code).
            let detail = self.scrub(&err.source().map(source_chain).unwrap_or_default());
            let reason = format!("SMTP {code} from {}: {detail}", self.host);
            return match code {
                // Authentication refused: the relay's configuration, not this message.
                530 | 534 | 535 | 538 => MailError::Transient(reason),
                500..=599 => MailError::Permanent(reason),
                _ => MailError::Transient(reason),
            };
        }
        let detail = self.scrub(&source_chain(err));
        let what = if err.is_timeout() {
            "timed out"
        } else if err.is_tls() {
            "TLS failure"
        } else if err.is_client() {
            "client error"
        } else if err.is_response() {
            "unreadable reply"
        } else {
            "connection failure"
        };
        MailError::Transient(format!(
            "SMTP {what} with {}:{}: {detail}",
            self.host, self.port
        ))
    }
}

/// The error's text and its sources' (each only when it adds something: lettre's own
/// `Display` already includes its source).
fn source_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        #[allow(clippy::disallowed_methods)] // adapter: the Date header is the time of sending
        let now = SystemTime::now();
        let message = build_message(mail, &self.sender, now)?;
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(self.classify(&e)),
            Err(_elapsed) => Err(MailError::Transient(format!(
                "SMTP delivery to {}:{} timed out after {} s",
                self.host,
                self.port,
                self.timeout.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e =
            parse_url("smtp://u%40x:p%3Aw@Mail.Example.EC:2525?tls=implicit&timeout=10").unwrap();
        assert_eq!(e.host, "mail.example.ec");
        assert_eq!(e.port, 2525);
        assert_eq!(e.tls, TlsMode::Implicit);
        assert_eq!(e.timeout, Duration::from_secs(10));
        let (user, pw) = e.credentials.unwrap();
        assert_eq!(user, "u@x");
        assert_eq!(pw.expose_secret(), "p:w");

        let e = parse_url("smtp://relay.example.ec").unwrap();
        assert_eq!((e.port, e.tls), (587, TlsMode::StartTls));
        let e = parse_url("smtps://relay.example.ec/").unwrap();
        assert_eq!((e.port, e.tls), (465, TlsMode::Implicit));
        let e = parse_url("smtp://[::1]:25?tls=none").unwrap();
        assert_eq!(e.host, "::1");
        assert!(parse_url("smtp://localhost?tls=none").is_ok());

        for bad in [
            "http://relay.example.ec",
            "smtp://",
            "smtp://relay.example.ec:0",
            "smtp://relay.example.ec:99999",
            "smtp://relay.example.ec/path",
            "smtp://relay.example.ec?tls=maybe",
            "smtp://relay.example.ec?tsl=none",
            "smtp://relay.example.ec?timeout=0",
            "smtp://relay.example.ec?timeout=abc",
            "smtp://relay.example.ec?tls=none&tls=none",
            "smtp://user@relay.example.ec",
            "smtp://user:%zz@relay.example.ec",
            "smtp://rel ay.example.ec",
            "smtps://relay.example.ec?tls=starttls",
        ] {
            assert!(
                matches!(parse_url(bad), Err(SmtpError::InvalidUrl { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            parse_url("smtp://u:secret@10.0.0.5?tls=none").err(),
            Some(SmtpError::PlaintextNotLocal {
                host: "10.0.0.5".into()
            })
        );
        assert!(
            parse_url("smtp://localhost.evil.example?tls=none").is_err(),
            "only the loopback names"
        );
    }

    #[test]
    fn message_ids() {
        assert_eq!(sanitize_message_id("1710034065/3/0"), "1710034065_3_0");
        assert_eq!(sanitize_message_id("a.b-c_D9"), "a.b-c_D9");
        assert_eq!(sanitize_message_id(".a..b."), "_a._b_");
        assert_eq!(sanitize_message_id("../etc/passwd"), "_._etc_passwd");
        assert_eq!(sanitize_message_id("ñ <x>@y"), "___x__y");
        assert_eq!(sanitize_message_id(""), "_");
        assert_eq!(sanitize_message_id(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn scrubbing() {
        let mailer = SmtpMailer::from_url("smtp://avisos:Tr0mp3ta@relay.example.ec")
            .unwrap()
            .from("no-responder@isspol.example.ec")
            .unwrap()
            .build()
            .unwrap();
        let s = mailer.scrub("535 5.7.8 user avisos password Tr0mp3ta rejected\r\nmore");
        assert_eq!(s, "535 5.7.8 user *** password *** rejected  more");
        assert!(!format!("{mailer:?}").contains("Tr0mp3ta"));
        assert_eq!(mailer.scrub(&"é".repeat(300)).chars().count(), 201);
    }

    #[test]
    fn scrubbing_masks_addresses_and_id_numbers() {
        let mailer = SmtpMailer::from_url("smtp://avisos:Tr0mp3ta@relay.example.ec")
            .unwrap()
            .from("no-responder@isspol.example.ec")
            .unwrap()
            .build()
            .unwrap();
        let s = mailer.scrub(
            "5.1.1 <ana.quishpe@example.ec>: Recipient address rejected: \
             User unknown (ref 1710034065)",
        );
        assert_eq!(
            s,
            "5.1.1 <a***@example.ec>: Recipient address rejected: \
             User unknown (ref 17******65)"
        );
        // Scrubbed before the cut: an address at the cut is masked too.
        let long = format!("{} ana.quishpe@example.ec", "x".repeat(190));
        let s = mailer.scrub(&long);
        assert!(!s.contains("ana.q"), "{s}");
    }
}
