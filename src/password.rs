//! Passwords, password policies and the bundled common-password list.
//!
//! * [`Password`] wraps the secret text; the only way to read it is
//!   [`Password::expose_secret`]. It has no `Display` and no `Serialize`, and
//!   its `Debug` output is redacted.
//! * [`PasswordPolicy`] describes the rules a password must meet and reports
//!   **every** unmet rule at once through [`PasswordViolations`]. Presets exist
//!   for the ISSPOL portal ([`PasswordPolicy::isspol`]), the IESS portal
//!   ([`PasswordPolicy::iess`]) and current guidance
//!   ([`PasswordPolicy::recommended`], the default).
//! * [`PasswordContext`] carries the member's identifiers (member ID, email)
//!   so that passwords containing them can be rejected.
//!
//! ```
//! use afiliado::password::{Password, PasswordContext, PasswordPolicy, PasswordRule};
//!
//! let policy = PasswordPolicy::isspol();
//! let ctx = PasswordContext::new()
//!     .with_identifier("1712345678")
//!     .with_identifier("juan.perez@example.com");
//!
//! assert!(policy.check(&Password::new("Zq7wMx2pLk"), &ctx).is_ok());
//!
//! let err = policy
//!     .check(&Password::new("abc"), &ctx)
//!     .expect_err("too weak");
//! assert!(err.contains(PasswordRule::TooShort { min: 8 }));
//! assert!(err.contains(PasswordRule::MissingUppercase));
//! assert!(err.contains(PasswordRule::MissingDigit));
//! assert_eq!(
//!     PasswordRule::TooShort { min: 8 }.message_es(),
//!     "La clave debe tener al menos 8 caracteres"
//! );
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

// ---------------------------------------------------------------------------
// Password
// ---------------------------------------------------------------------------

/// A password in memory.
///
/// The text lives in a [`secrecy::SecretString`] and is zeroized when the
/// value is dropped. [`Password::expose_secret`] is the **only** way to read
/// it: there is no `Display`, no `Serialize`, no `PartialEq` (compare hashes,
/// not passwords), and `Debug` prints `Password([REDACTED])`.
///
/// `Deserialize` is implemented so that form input can be read directly into
/// a `Password`; it accepts a string only, and its error messages never echo
/// the input (a numeric password sent as a JSON number is rejected with a
/// generic message rather than quoted back). It relies on
/// `deserialize_any`, so it works with self-describing formats (JSON, URL
/// encoded forms, TOML) but not with formats such as bincode.
///
/// The text is stored exactly as given: no trimming and no Unicode
/// normalization is applied.
///
/// ```
/// use afiliado::password::Password;
///
/// let password = Password::new("correct horse battery staple");
/// assert_eq!(format!("{password:?}"), "Password([REDACTED])");
/// assert_eq!(password.char_count(), 28);
/// assert_eq!(password.expose_secret(), "correct horse battery staple");
/// ```
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// Wraps `password`.
    ///
    /// When given a `String`, its buffer (including spare capacity) is
    /// zeroized after the text has been copied into the secret.
    pub fn new(password: impl Into<String>) -> Self {
        let mut text: String = password.into();
        let secret = SecretString::from(text.as_str());
        text.zeroize();
        Self(secret)
    }

    /// Returns the password text.
    ///
    /// This is the only way to read the secret. Call it as late as possible
    /// (when hashing or verifying) and never log or store the result.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// Number of Unicode scalar values (`char`s) in the password, the unit
    /// in which [`PasswordPolicy`] lengths are expressed.
    #[must_use]
    pub fn char_count(&self) -> usize {
        self.expose_secret().chars().count()
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self::new(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Self(SecretString::from(password))
    }
}

impl From<SecretString> for Password {
    fn from(password: SecretString) -> Self {
        Self(password)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D>(deserializer: D) -> Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        // `deserialize_any` so that non-string input reaches the visitor,
        // whose errors do not quote it (serde_json's `deserialize_string`
        // would report e.g. "invalid type: integer `12345678`").
        deserializer.deserialize_any(PasswordVisitor)
    }
}

/// Visitor that accepts strings only and never quotes the input in errors.
struct PasswordVisitor;

const NOT_A_STRING: &str = "invalid type: expected a password string";

impl serde::de::Visitor<'_> for PasswordVisitor {
    type Value = Password;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a password string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Password, E> {
        Ok(Password::from(v))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Password, E> {
        Ok(Password::new(v))
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Password, E> {
        std::str::from_utf8(v)
            .map(Password::from)
            .map_err(|_| E::custom("a password must be valid UTF-8"))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Password, E> {
        match String::from_utf8(v) {
            Ok(text) => Ok(Password::new(text)),
            Err(err) => {
                let mut bytes = err.into_bytes();
                bytes.zeroize();
                Err(E::custom("a password must be valid UTF-8"))
            }
        }
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Password, E> {
        Err(E::custom(NOT_A_STRING))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Password, E> {
        Err(E::custom(NOT_A_STRING))
    }

    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<Password, E> {
        Err(E::custom(NOT_A_STRING))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Password, E> {
        Err(E::custom(NOT_A_STRING))
    }

    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<Password, E> {
        Err(E::custom(NOT_A_STRING))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Password, E> {
        Err(E::custom(NOT_A_STRING))
    }
}

// ---------------------------------------------------------------------------
// Character classes
// ---------------------------------------------------------------------------

/// Lowercase letter: any Unicode lowercase character (`ñ`, `á` included).
fn is_lowercase(c: char) -> bool {
    c.is_lowercase()
}

/// Uppercase letter: any Unicode uppercase character (`Ñ`, `Á` included).
fn is_uppercase(c: char) -> bool {
    c.is_uppercase()
}

/// Letter of any case (or caseless script): Unicode alphabetic.
fn is_letter(c: char) -> bool {
    c.is_alphabetic()
}

/// Digit: Unicode numeric, which includes ASCII `0`–`9`.
fn is_digit(c: char) -> bool {
    c.is_numeric()
}

/// Symbol: anything that is neither a letter nor a digit (punctuation,
/// spaces, emoji, ...).
fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric()
}

// ---------------------------------------------------------------------------
// Alphabet
// ---------------------------------------------------------------------------

/// The set of characters a password may be made of.
///
/// Serialized in `snake_case` (`"any"`, `"ascii_alphanumeric"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Alphabet {
    /// Any Unicode character, including spaces and emoji (NIST SP 800-63B).
    #[default]
    Any,
    /// ASCII letters and digits only (`A`–`Z`, `a`–`z`, `0`–`9`): "letras y
    /// números únicamente", as the IESS portal demands. Accented letters,
    /// `ñ`, spaces and symbols are rejected.
    AsciiAlphanumeric,
}

impl Alphabet {
    /// Whether `c` belongs to this alphabet.
    ///
    /// ```
    /// use afiliado::password::Alphabet;
    ///
    /// assert!(Alphabet::Any.allows('ñ'));
    /// assert!(Alphabet::AsciiAlphanumeric.allows('n'));
    /// assert!(!Alphabet::AsciiAlphanumeric.allows('ñ'));
    /// ```
    #[must_use]
    pub fn allows(self, c: char) -> bool {
        match self {
            Self::Any => true,
            Self::AsciiAlphanumeric => c.is_ascii_alphanumeric(),
        }
    }

    /// The `snake_case` name used in configuration files.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::AsciiAlphanumeric => "ascii_alphanumeric",
        }
    }

    /// Whether the alphabet contains at least one symbol character.
    fn has_symbols(self) -> bool {
        match self {
            Self::Any => true,
            Self::AsciiAlphanumeric => false,
        }
    }
}

impl fmt::Display for Alphabet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------
// Rules and violations
// ---------------------------------------------------------------------------

/// One rule of a [`PasswordPolicy`] that a password failed.
///
/// Rules never carry any part of the password. Serialized internally tagged
/// in `snake_case`, e.g. `{"rule":"too_short","min":8}` or
/// `{"rule":"missing_digit"}`. `Display` gives an English description;
/// [`PasswordRule::message_es`] gives the Spanish (es-EC) text for the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PasswordRule {
    /// Fewer than `min` characters.
    TooShort {
        /// The policy minimum, in characters.
        min: usize,
    },
    /// More than `max` characters. When reported, it is reported alone (see
    /// [`PasswordPolicy::check`]).
    TooLong {
        /// The policy maximum, in characters.
        max: usize,
    },
    /// No lowercase letter.
    MissingLowercase,
    /// No uppercase letter.
    MissingUppercase,
    /// No digit.
    MissingDigit,
    /// No symbol (a character that is neither a letter nor a digit).
    MissingSymbol,
    /// No letter of any case.
    MissingLetter,
    /// At least one character outside the policy's [`Alphabet`]. Which one is
    /// deliberately not reported: it would leak part of the secret.
    DisallowedCharacter,
    /// Equal to, or contains, one of the member's identifiers (member ID,
    /// email or its local part), compared case-insensitively.
    ContainsIdentifier,
    /// Appears in the bundled list of common passwords (possibly followed by
    /// a few digits or symbols).
    Common,
}

impl PasswordRule {
    /// The Spanish (es-EC) message a portal would show for this rule.
    ///
    /// ```
    /// use afiliado::password::PasswordRule;
    ///
    /// assert_eq!(
    ///     PasswordRule::MissingDigit.message_es(),
    ///     "La clave debe contener al menos un número"
    /// );
    /// ```
    #[must_use]
    pub fn message_es(&self) -> String {
        match *self {
            Self::TooShort { min: 1 } => "La clave debe tener al menos 1 carácter".to_owned(),
            Self::TooShort { min } => format!("La clave debe tener al menos {min} caracteres"),
            Self::TooLong { max: 1 } => "La clave debe tener como máximo 1 carácter".to_owned(),
            Self::TooLong { max } => format!("La clave debe tener como máximo {max} caracteres"),
            Self::MissingLowercase => {
                "La clave debe contener al menos una letra minúscula".to_owned()
            }
            Self::MissingUppercase => {
                "La clave debe contener al menos una letra mayúscula".to_owned()
            }
            Self::MissingDigit => "La clave debe contener al menos un número".to_owned(),
            Self::MissingSymbol => {
                "La clave debe contener al menos un carácter especial (por ejemplo ! @ # $ %)"
                    .to_owned()
            }
            Self::MissingLetter => "La clave debe contener al menos una letra".to_owned(),
            Self::DisallowedCharacter => "La clave solo puede contener letras y números \
                 (sin tildes, eñes, espacios ni caracteres especiales)"
                .to_owned(),
            Self::ContainsIdentifier => "La clave no puede contener su número de cédula \
                 o identificación ni su correo electrónico"
                .to_owned(),
            Self::Common => {
                "La clave es demasiado común o fácil de adivinar; elija otra".to_owned()
            }
        }
    }
}

impl fmt::Display for PasswordRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { min } => write!(f, "must be at least {min} characters long"),
            Self::TooLong { max } => write!(f, "must be at most {max} characters long"),
            Self::MissingLowercase => f.write_str("must contain a lowercase letter"),
            Self::MissingUppercase => f.write_str("must contain an uppercase letter"),
            Self::MissingDigit => f.write_str("must contain a digit"),
            Self::MissingSymbol => f.write_str("must contain a symbol"),
            Self::MissingLetter => f.write_str("must contain a letter"),
            Self::DisallowedCharacter => {
                f.write_str("contains a character outside the allowed alphabet")
            }
            Self::ContainsIdentifier => {
                f.write_str("must not contain the member's identifier or email")
            }
            Self::Common => f.write_str("is too common"),
        }
    }
}

/// The non-empty list of rules a password failed, in a stable order
/// (length, composition, alphabet, identifiers, common list).
///
/// Its `Display` lists the rules in English, separated by `; `, without a
/// prefix (wrap it as e.g. `"password rejected: {0}"`), and never includes
/// the password.
///
/// ```
/// use afiliado::password::{Password, PasswordContext, PasswordPolicy, PasswordRule};
///
/// let err = PasswordPolicy::isspol()
///     .check(&Password::new("abc"), &PasswordContext::new())
///     .expect_err("too weak");
/// assert_eq!(
///     err.rules(),
///     [
///         PasswordRule::TooShort { min: 8 },
///         PasswordRule::MissingUppercase,
///         PasswordRule::MissingDigit,
///     ]
/// );
/// assert_eq!(
///     err.to_string(),
///     "must be at least 8 characters long; \
///      must contain an uppercase letter; must contain a digit"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", RuleList(.rules))]
pub struct PasswordViolations {
    rules: Vec<PasswordRule>,
}

/// Formats rules separated by `"; "`.
struct RuleList<'a>(&'a [PasswordRule]);

impl fmt::Display for RuleList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            fmt::Display::fmt(rule, f)?;
        }
        Ok(())
    }
}

impl PasswordViolations {
    /// The failed rules (never empty).
    #[must_use]
    pub fn rules(&self) -> &[PasswordRule] {
        &self.rules
    }

    /// Whether `rule` (with the same parameters) is among the failed rules.
    #[must_use]
    pub fn contains(&self, rule: PasswordRule) -> bool {
        self.rules.contains(&rule)
    }

    /// The Spanish (es-EC) messages of all failed rules, in order.
    #[must_use]
    pub fn messages_es(&self) -> Vec<String> {
        self.rules.iter().map(PasswordRule::message_es).collect()
    }
}

// ---------------------------------------------------------------------------
// Context
// ---------------------------------------------------------------------------

/// The member-specific words a password must not contain.
///
/// The service passes the member ID text (cédula digits) and the email. Each
/// identifier is trimmed and compared case-insensitively; the password is
/// rejected when it contains any of these fragments of an identifier:
///
/// * the whole identifier (e.g. `1712345678`, `juan.perez@example.com`);
/// * for an email (anything containing `@`), its local part (`juan.perez`);
/// * the words of the identifier (or local part) split at non-alphanumeric
///   characters (`juan`, `perez`), and the identifier (or local part) with
///   those separators removed (`juanperez`, `1712345678` from `171234567-8`).
///
/// Fragments shorter than [`PasswordContext::MIN_FRAGMENT_CHARS`] characters
/// are ignored, so short words like `ana` or a domain never cause false
/// positives.
///
/// ```
/// use afiliado::password::{Password, PasswordContext, PasswordPolicy, PasswordRule};
///
/// let ctx = PasswordContext::new()
///     .with_identifier("1712345678")
///     .with_identifier("Juan.Perez@example.com");
/// let policy = PasswordPolicy::recommended();
/// let err = policy
///     .check(&Password::new("mi clave es JUANPEREZ y nada mas"), &ctx)
///     .expect_err("contains the email");
/// assert_eq!(err.rules(), [PasswordRule::ContainsIdentifier]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordContext<'a> {
    identifiers: Vec<&'a str>,
}

impl<'a> PasswordContext<'a> {
    /// Identifier fragments shorter than this many characters are ignored.
    pub const MIN_FRAGMENT_CHARS: usize = 4;

    /// An empty context (no identifiers to reject).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an identifier (member ID, email, ...).
    #[must_use]
    pub fn with_identifier(mut self, identifier: &'a str) -> Self {
        self.identifiers.push(identifier);
        self
    }

    /// The identifiers added so far.
    #[must_use]
    pub fn identifiers(&self) -> &[&'a str] {
        &self.identifiers
    }

    /// Whether the lower-cased password contains a fragment of an identifier.
    fn matches(&self, lowercase_password: &str) -> bool {
        self.identifiers
            .iter()
            .flat_map(|id| identifier_fragments(id))
            .any(|fragment| lowercase_password.contains(fragment.as_str()))
    }
}

/// Lower-cased fragments of `identifier` (see [`PasswordContext`]).
fn identifier_fragments(identifier: &str) -> Vec<String> {
    let whole = identifier.trim();
    let base = whole
        .rsplit_once('@')
        .map_or(whole, |(local, _)| local.trim());
    let compact: String = base.chars().filter(|c| c.is_alphanumeric()).collect();
    let mut fragments = vec![
        whole.to_lowercase(),
        base.to_lowercase(),
        compact.to_lowercase(),
    ];
    fragments.extend(
        base.split(|c: char| !c.is_alphanumeric())
            .map(str::to_lowercase),
    );
    fragments.retain(|f| f.chars().count() >= PasswordContext::MIN_FRAGMENT_CHARS);
    fragments.sort_unstable();
    fragments.dedup();
    fragments
}

// ---------------------------------------------------------------------------
// Common passwords
// ---------------------------------------------------------------------------

/// The bundled list (see `src/data/common-passwords.txt`).
const COMMON_PASSWORDS_TXT: &str = include_str!("data/common-passwords.txt");

/// Minimum length of a list entry for the trailing digits/symbols rule.
const COMMON_SUFFIX_BASE_MIN_CHARS: usize = 6;

/// Maximum number of trailing digits/symbols removed for the common check.
const COMMON_SUFFIX_MAX_CHARS: usize = 4;

/// The entries of the bundled common-password list, in file order.
///
/// Entries are lower-case and trimmed; comments and blank lines are skipped.
///
/// ```
/// assert!(afiliado::password::common_passwords().any(|p| p == "123456"));
/// ```
pub fn common_passwords() -> impl Iterator<Item = &'static str> {
    COMMON_PASSWORDS_TXT
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

fn common_set() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| common_passwords().collect())
}

/// Whether `password` counts as common for [`PasswordRule::Common`].
///
/// The password is trimmed and lower-cased; it is common when it equals a
/// list entry, or when removing up to 4 trailing digits or symbols yields an
/// entry of at least 6 characters (`"Password1!"` → `"password"`).
///
/// ```
/// use afiliado::password::{Password, is_common_password};
///
/// assert!(is_common_password(&Password::new("123456")));
/// assert!(is_common_password(&Password::new("Password1!")));
/// assert!(is_common_password(&Password::new("Ecuador2024")));
/// assert!(!is_common_password(&Password::new("violet-harbour-engine")));
/// ```
#[must_use]
pub fn is_common_password(password: &Password) -> bool {
    let lower = Zeroizing::new(password.expose_secret().to_lowercase());
    is_common_lowercase(lower.trim())
}

/// Common check on an already trimmed and lower-cased candidate.
fn is_common_lowercase(candidate: &str) -> bool {
    let set = common_set();
    if set.contains(candidate) {
        return true;
    }
    let mut rest = candidate;
    for _ in 0..COMMON_SUFFIX_MAX_CHARS {
        let mut chars = rest.chars();
        match chars.next_back() {
            Some(c) if c.is_ascii_digit() || is_symbol(c) => rest = chars.as_str(),
            _ => return false,
        }
        if rest.chars().count() >= COMMON_SUFFIX_BASE_MIN_CHARS && set.contains(rest) {
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------

/// Password rules, loadable from configuration.
///
/// Lengths count Unicode characters (`char`s), not bytes. Every field has a
/// default taken from [`PasswordPolicy::recommended`], so a partial
/// configuration only overrides what it names; unknown fields are rejected.
/// Deserialization does not validate: call [`PasswordPolicy::validate`] after
/// loading.
///
/// Character classes: lowercase / uppercase are Unicode case properties (so
/// `ñ` is lowercase and `Ñ` uppercase), a letter is any Unicode alphabetic
/// character, a digit any Unicode numeric character (ASCII `0`–`9`
/// included), and a symbol anything that is neither (punctuation, space,
/// emoji).
///
/// ```
/// use afiliado::password::{Alphabet, PasswordPolicy};
///
/// let policy: PasswordPolicy =
///     serde_json::from_str(r#"{ "min_length": 10, "alphabet": "ascii_alphanumeric" }"#)?;
/// assert_eq!(policy.min_length, 10);
/// assert_eq!(policy.alphabet, Alphabet::AsciiAlphanumeric);
/// assert_eq!(policy.max_length, PasswordPolicy::recommended().max_length);
/// policy.validate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PasswordPolicy {
    /// Minimum length in characters (at least 1).
    pub min_length: usize,
    /// Maximum length in characters (at most
    /// [`PasswordPolicy::MAX_LENGTH_LIMIT`]). Longer inputs are rejected
    /// before any other work, in particular before hashing.
    pub max_length: usize,
    /// Require at least one lowercase letter.
    pub require_lowercase: bool,
    /// Require at least one uppercase letter.
    pub require_uppercase: bool,
    /// Require at least one letter of any case.
    pub require_letter: bool,
    /// Require at least one digit.
    pub require_digit: bool,
    /// Require at least one symbol (neither letter nor digit).
    pub require_symbol: bool,
    /// The characters a password may contain.
    pub alphabet: Alphabet,
    /// Reject passwords equal to or containing a member identifier given in
    /// the [`PasswordContext`].
    pub reject_identifiers: bool,
    /// Reject passwords found in the bundled common-password list (see
    /// [`is_common_password`]).
    pub reject_common: bool,
}

impl Default for PasswordPolicy {
    /// [`PasswordPolicy::recommended`].
    fn default() -> Self {
        Self::recommended()
    }
}

impl PasswordPolicy {
    /// The largest `max_length` a valid policy may have.
    pub const MAX_LENGTH_LIMIT: usize = 4096;

    /// The ISSPOL portal rules: 8 to 128 characters with at least one
    /// lowercase letter, one uppercase letter and one digit; any character
    /// allowed; identifiers and common passwords rejected.
    #[must_use]
    pub fn isspol() -> Self {
        Self {
            min_length: 8,
            max_length: 128,
            require_lowercase: true,
            require_uppercase: true,
            require_letter: false,
            require_digit: true,
            require_symbol: false,
            alphabet: Alphabet::Any,
            reject_identifiers: true,
            reject_common: true,
        }
    }

    /// The IESS portal rules: 8 to 15 ASCII letters and digits.
    ///
    /// The sources disagree on the bounds: the IESS steps article says 6–15 characters,
    /// while the official text (the IESS procedure) says "mínimo 8 caracteres entre
    /// números y letras únicamente". This preset takes the stricter reading
    /// of both: minimum 8, maximum 15. "Entre números y letras únicamente" is
    /// read as a restriction of the alphabet
    /// ([`Alphabet::AsciiAlphanumeric`]), not as a requirement to include
    /// both, so `require_letter` and `require_digit` are `false` (set them to
    /// `true` for the other reading). Identifiers and common passwords are
    /// rejected on top of the portal rules; this never accepts a password
    /// the portal would refuse.
    #[must_use]
    pub fn iess() -> Self {
        Self {
            min_length: 8,
            max_length: 15,
            require_lowercase: false,
            require_uppercase: false,
            require_letter: false,
            require_digit: false,
            require_symbol: false,
            alphabet: Alphabet::AsciiAlphanumeric,
            reject_identifiers: true,
            reject_common: true,
        }
    }

    /// Current guidance (NIST SP 800-63B, OWASP ASVS 5.0): at least 15
    /// characters, at most 128, no composition rules, any character allowed,
    /// identifiers and common passwords rejected. This is the default.
    #[must_use]
    pub fn recommended() -> Self {
        Self {
            min_length: 15,
            max_length: 128,
            require_lowercase: false,
            require_uppercase: false,
            require_letter: false,
            require_digit: false,
            require_symbol: false,
            alphabet: Alphabet::Any,
            reject_identifiers: true,
            reject_common: true,
        }
    }

    /// Checks the policy itself.
    ///
    /// Requires `1 <= min_length <= max_length <= MAX_LENGTH_LIMIT`, every
    /// composition requirement to be satisfiable with the alphabet (no
    /// `require_symbol` with [`Alphabet::AsciiAlphanumeric`]), and
    /// `max_length` to leave room for one character of each required class.
    ///
    /// # Errors
    ///
    /// The first problem found, as a [`PasswordPolicyError`] naming the
    /// offending fields.
    ///
    /// ```
    /// use afiliado::password::{Alphabet, PasswordPolicy, PasswordPolicyError};
    ///
    /// let mut policy = PasswordPolicy::iess();
    /// policy.require_symbol = true;
    /// assert_eq!(
    ///     policy.validate(),
    ///     Err(PasswordPolicyError::RequirementUnsatisfiable {
    ///         field: "require_symbol",
    ///         alphabet: Alphabet::AsciiAlphanumeric,
    ///     })
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), PasswordPolicyError> {
        if self.min_length == 0 {
            return Err(PasswordPolicyError::MinLengthZero);
        }
        if self.min_length > self.max_length {
            return Err(PasswordPolicyError::MinExceedsMax {
                min_length: self.min_length,
                max_length: self.max_length,
            });
        }
        if self.max_length > Self::MAX_LENGTH_LIMIT {
            return Err(PasswordPolicyError::MaxLengthTooLarge {
                max_length: self.max_length,
                limit: Self::MAX_LENGTH_LIMIT,
            });
        }
        if self.require_symbol && !self.alphabet.has_symbols() {
            return Err(PasswordPolicyError::RequirementUnsatisfiable {
                field: "require_symbol",
                alphabet: self.alphabet,
            });
        }
        let required = self.required_class_count();
        if required > self.max_length {
            return Err(PasswordPolicyError::TooManyRequirements {
                required,
                max_length: self.max_length,
            });
        }
        Ok(())
    }

    /// Minimum number of characters needed to satisfy the composition rules.
    fn required_class_count(&self) -> usize {
        let letter_alone =
            self.require_letter && !self.require_lowercase && !self.require_uppercase;
        [
            self.require_lowercase,
            self.require_uppercase,
            letter_alone,
            self.require_digit,
            self.require_symbol,
        ]
        .into_iter()
        .filter(|&required| required)
        .count()
    }

    /// Whether `password` has more than `max_length` characters.
    ///
    /// Cheap whatever the input size: counting stops at `max_length + 1`
    /// characters.
    ///
    /// ```
    /// use afiliado::password::{Password, PasswordPolicy};
    ///
    /// let policy = PasswordPolicy::iess();
    /// assert!(!policy.exceeds_max_length(&Password::new("a".repeat(15))));
    /// assert!(policy.exceeds_max_length(&Password::new("a".repeat(1 << 20))));
    /// ```
    #[must_use]
    pub fn exceeds_max_length(&self, password: &Password) -> bool {
        let text = password.expose_secret();
        // A string never has more chars than bytes.
        if text.len() <= self.max_length {
            return false;
        }
        text.chars().take(self.max_length.saturating_add(1)).count() > self.max_length
    }

    /// Checks `password` against every rule and reports all that fail.
    ///
    /// Inputs longer than `max_length` are rejected first, with
    /// [`PasswordRule::TooLong`] alone: no other rule is evaluated, so an
    /// oversized input costs at most `max_length + 1` character reads (and
    /// must be rejected before hashing). Otherwise the result lists, in
    /// order, every failed rule among: too short, missing lowercase /
    /// uppercase / letter / digit / symbol, disallowed character, contains an
    /// identifier from `ctx` (when `reject_identifiers`), common (when
    /// `reject_common`).
    ///
    /// The policy is applied as is; call [`PasswordPolicy::validate`] when
    /// loading it.
    ///
    /// # Errors
    ///
    /// [`PasswordViolations`] listing every failed rule (never the password).
    pub fn check(
        &self,
        password: &Password,
        ctx: &PasswordContext<'_>,
    ) -> Result<(), PasswordViolations> {
        if self.exceeds_max_length(password) {
            return Err(PasswordViolations {
                rules: vec![PasswordRule::TooLong {
                    max: self.max_length,
                }],
            });
        }
        let text = password.expose_secret();

        let mut count = 0_usize;
        let (mut lower, mut upper, mut letter, mut digit, mut symbol) =
            (false, false, false, false, false);
        let mut disallowed = false;
        for c in text.chars() {
            count += 1;
            lower |= is_lowercase(c);
            upper |= is_uppercase(c);
            letter |= is_letter(c);
            digit |= is_digit(c);
            symbol |= is_symbol(c);
            disallowed |= !self.alphabet.allows(c);
        }

        let mut rules = Vec::new();
        if count < self.min_length {
            rules.push(PasswordRule::TooShort {
                min: self.min_length,
            });
        }
        let composition = [
            (
                self.require_lowercase,
                lower,
                PasswordRule::MissingLowercase,
            ),
            (
                self.require_uppercase,
                upper,
                PasswordRule::MissingUppercase,
            ),
            (self.require_letter, letter, PasswordRule::MissingLetter),
            (self.require_digit, digit, PasswordRule::MissingDigit),
            (self.require_symbol, symbol, PasswordRule::MissingSymbol),
        ];
        for (required, present, rule) in composition {
            if required && !present {
                rules.push(rule);
            }
        }
        if disallowed {
            rules.push(PasswordRule::DisallowedCharacter);
        }
        if self.reject_identifiers || self.reject_common {
            let lowercase = Zeroizing::new(text.to_lowercase());
            if self.reject_identifiers && ctx.matches(&lowercase) {
                rules.push(PasswordRule::ContainsIdentifier);
            }
            if self.reject_common && is_common_lowercase(lowercase.trim()) {
                rules.push(PasswordRule::Common);
            }
        }

        if rules.is_empty() {
            Ok(())
        } else {
            Err(PasswordViolations { rules })
        }
    }
}

/// A [`PasswordPolicy`] that cannot be used as is.
///
/// Messages name the offending configuration fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordPolicyError {
    /// `min_length` is 0.
    #[error("min_length must be at least 1")]
    MinLengthZero,
    /// `min_length` is greater than `max_length`.
    #[error("min_length ({min_length}) must not exceed max_length ({max_length})")]
    MinExceedsMax {
        /// The configured minimum.
        min_length: usize,
        /// The configured maximum.
        max_length: usize,
    },
    /// `max_length` is above [`PasswordPolicy::MAX_LENGTH_LIMIT`].
    #[error("max_length ({max_length}) must not exceed {limit}")]
    MaxLengthTooLarge {
        /// The configured maximum.
        max_length: usize,
        /// [`PasswordPolicy::MAX_LENGTH_LIMIT`].
        limit: usize,
    },
    /// A composition requirement cannot be met with the configured alphabet.
    #[error("{field} cannot be satisfied with alphabet {alphabet}")]
    RequirementUnsatisfiable {
        /// The requirement field, e.g. `"require_symbol"`.
        field: &'static str,
        /// The configured alphabet.
        alphabet: Alphabet,
    },
    /// `max_length` is smaller than the number of required character classes.
    #[error(
        "the require_* fields need at least {required} characters but max_length is {max_length}"
    )]
    TooManyRequirements {
        /// Characters needed to meet every composition requirement.
        required: usize,
        /// The configured maximum.
        max_length: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::password::{failing_password, passing_password, password_policy};
    use proptest::prelude::*;

    const NO_CTX: PasswordContext<'static> = PasswordContext {
        identifiers: Vec::new(),
    };

    fn pw(text: &str) -> Password {
        Password::new(text)
    }

    fn rules(policy: &PasswordPolicy, text: &str) -> Vec<PasswordRule> {
        match policy.check(&pw(text), &NO_CTX) {
            Ok(()) => Vec::new(),
            Err(err) => err.rules().to_vec(),
        }
    }

    fn passes(policy: &PasswordPolicy, text: &str) {
        assert_eq!(rules(policy, text), [], "expected {text:?} to pass");
    }

    fn fails_only(policy: &PasswordPolicy, text: &str, rule: PasswordRule) {
        assert_eq!(rules(policy, text), [rule], "for {text:?}");
    }

    /// A non-common string of `n` characters with lower, upper and digit.
    fn mixed(n: usize) -> String {
        "Zq7wMx2pLkVb9RtYh4Nc".chars().cycle().take(n).collect()
    }

    // --- Password -----------------------------------------------------------

    #[test]
    fn password_debug_is_redacted() {
        let password = pw("PLANTED-SECRET-4711");
        assert_eq!(format!("{password:?}"), "Password([REDACTED])");
        assert_eq!(format!("{password:#?}"), "Password([REDACTED])");
        assert_eq!(
            format!("{:?}", Some(password.clone())),
            "Some(Password([REDACTED]))"
        );
    }

    #[test]
    fn password_constructors_and_accessors() {
        assert_eq!(Password::new(String::from("abc")).expose_secret(), "abc");
        assert_eq!(Password::from("abc").expose_secret(), "abc");
        assert_eq!(Password::from(String::from("abc")).expose_secret(), "abc");
        assert_eq!(
            Password::from(SecretString::from("abc")).expose_secret(),
            "abc"
        );
        assert_eq!(pw("ñandú").char_count(), 5);
        assert_eq!(pw("ñandú").expose_secret().len(), 7);
        assert_eq!(pw("").char_count(), 0);
    }

    #[test]
    fn password_deserializes_from_string_only_without_echo() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Form {
            password: Password,
        }

        let password: Password = serde_json::from_str(r#""s3cr3t ñ""#).unwrap();
        assert_eq!(password.expose_secret(), "s3cr3t ñ");
        let form: Form = serde_json::from_str(r#"{"password":"Hunter2Hunter2"}"#).unwrap();
        assert!(!format!("{form:?}").contains("Hunter2"));

        for input in ["98765432123", "true", "12.75", "-987654321"] {
            let err = serde_json::from_str::<Password>(input)
                .unwrap_err()
                .to_string();
            assert!(!err.contains(input), "{err}");
            assert!(err.contains("password string"), "{err}");
        }
        for input in [
            r#"["QQQ"]"#,
            r#"{"QQQ":"QQQ"}"#,
            r#"b"QQQ""#,
            r#""QQQ\ud800""#,
        ] {
            let err = serde_json::from_str::<Password>(input)
                .unwrap_err()
                .to_string();
            assert!(!err.contains("QQQ"), "{err}");
        }
    }

    // --- Presets ------------------------------------------------------------

    #[test]
    fn presets_are_valid_and_as_specified() {
        let isspol = PasswordPolicy::isspol();
        assert_eq!((isspol.min_length, isspol.max_length), (8, 128));
        assert!(isspol.require_lowercase && isspol.require_uppercase && isspol.require_digit);
        assert!(!isspol.require_symbol && !isspol.require_letter);
        assert_eq!(isspol.alphabet, Alphabet::Any);
        assert!(isspol.reject_identifiers && isspol.reject_common);

        let iess = PasswordPolicy::iess();
        assert_eq!((iess.min_length, iess.max_length), (8, 15));
        assert_eq!(iess.alphabet, Alphabet::AsciiAlphanumeric);
        assert!(!iess.require_lowercase && !iess.require_uppercase && !iess.require_letter);
        assert!(!iess.require_digit && !iess.require_symbol);

        let rec = PasswordPolicy::recommended();
        assert_eq!((rec.min_length, rec.max_length), (15, 128));
        assert!(!rec.require_lowercase && !rec.require_uppercase && !rec.require_letter);
        assert!(!rec.require_digit && !rec.require_symbol);
        assert_eq!(rec.alphabet, Alphabet::Any);
        assert!(rec.reject_identifiers && rec.reject_common);
        assert_eq!(PasswordPolicy::default(), rec);

        for policy in [isspol, iess, rec] {
            assert_eq!(policy.validate(), Ok(()));
        }
    }

    #[test]
    fn isspol_length_boundaries() {
        let p = PasswordPolicy::isspol();
        fails_only(&p, &mixed(7), PasswordRule::TooShort { min: 8 });
        passes(&p, &mixed(8));
        passes(&p, &mixed(128));
        fails_only(&p, &mixed(129), PasswordRule::TooLong { max: 128 });
    }

    #[test]
    fn isspol_composition_rules() {
        let p = PasswordPolicy::isspol();
        fails_only(&p, "ZQ7WMX2PLK", PasswordRule::MissingLowercase);
        fails_only(&p, "zq7wmx2plk", PasswordRule::MissingUppercase);
        fails_only(&p, "ZqXwMxKpLk", PasswordRule::MissingDigit);
        // Unicode letters count for the case classes; spaces and emoji allowed.
        passes(&p, "ÑANDÚ ñandú 7 😀");
        fails_only(&p, "ÑANDÚ ÑANDÚ 7", PasswordRule::MissingLowercase);
    }

    #[test]
    fn iess_rules() {
        let p = PasswordPolicy::iess();
        fails_only(&p, "zq7wmx2", PasswordRule::TooShort { min: 8 });
        passes(&p, "zq7wmx2p");
        passes(&p, "zq7wmx2plkvb9rt");
        fails_only(&p, "zq7wmx2plkvb9rty", PasswordRule::TooLong { max: 15 });
        // Letters only and digits only are both accepted (alphabet reading).
        passes(&p, "zqxwmvkplk");
        passes(&p, "70419263");
        fails_only(&p, "zq7wmx2ñ", PasswordRule::DisallowedCharacter);
        fails_only(&p, "zq7w mx2p", PasswordRule::DisallowedCharacter);
        fails_only(&p, "zq7w-mx2p", PasswordRule::DisallowedCharacter);
        fails_only(&p, "zq7wmx2pá", PasswordRule::DisallowedCharacter);
    }

    #[test]
    fn recommended_rules() {
        let p = PasswordPolicy::recommended();
        fails_only(&p, "zqxwmvkplkvbrt", PasswordRule::TooShort { min: 15 });
        passes(&p, "zqxwmvkplkvbrty");
        passes(&p, &mixed(128));
        fails_only(&p, &mixed(129), PasswordRule::TooLong { max: 128 });
        passes(&p, "el veloz murciélago");
        fails_only(&p, "passwordpassword", PasswordRule::Common);
    }

    #[test]
    fn symbol_and_letter_rules() {
        let mut p = PasswordPolicy::recommended();
        p.min_length = 4;
        p.require_symbol = true;
        fails_only(&p, "zqxwmvk7", PasswordRule::MissingSymbol);
        passes(&p, "zqxw mvk7");
        passes(&p, "zqxw😀mvk7");
        let mut p = PasswordPolicy::recommended();
        p.min_length = 4;
        p.require_letter = true;
        fails_only(&p, "70419263", PasswordRule::MissingLetter);
        fails_only(&p, "7041 9263 !!", PasswordRule::MissingLetter);
        passes(&p, "7041926X");
        passes(&p, "7041926中");
        p.require_digit = true;
        assert_eq!(
            rules(&p, "!!!!"),
            [PasswordRule::MissingLetter, PasswordRule::MissingDigit]
        );
        passes(&p, "zqxw٣");
    }

    #[test]
    fn every_unmet_rule_is_reported() {
        let p = PasswordPolicy::isspol();
        assert_eq!(
            rules(&p, "abc"),
            [
                PasswordRule::TooShort { min: 8 },
                PasswordRule::MissingUppercase,
                PasswordRule::MissingDigit,
            ]
        );
        assert_eq!(
            rules(&p, ""),
            [
                PasswordRule::TooShort { min: 8 },
                PasswordRule::MissingLowercase,
                PasswordRule::MissingUppercase,
                PasswordRule::MissingDigit,
            ]
        );
        let mut all = PasswordPolicy::iess();
        all.require_lowercase = true;
        all.require_uppercase = true;
        all.require_digit = true;
        let ctx = PasswordContext::new().with_identifier("qwerty@example.com");
        let err = all.check(&pw("qwerty!"), &ctx).unwrap_err();
        assert_eq!(
            err.rules(),
            [
                PasswordRule::TooShort { min: 8 },
                PasswordRule::MissingUppercase,
                PasswordRule::MissingDigit,
                PasswordRule::DisallowedCharacter,
                PasswordRule::ContainsIdentifier,
                PasswordRule::Common,
            ]
        );
    }

    #[test]
    fn too_long_is_reported_alone() {
        let p = PasswordPolicy::isspol();
        // Would also miss upper/digit and be common, but only TooLong is reported.
        assert_eq!(
            rules(&p, &"password".repeat(17)),
            [PasswordRule::TooLong { max: 128 }]
        );
        let huge = "ñ".repeat(1 << 20);
        assert!(p.exceeds_max_length(&pw(&huge)));
        assert_eq!(rules(&p, &huge), [PasswordRule::TooLong { max: 128 }]);
    }

    #[test]
    fn exceeds_max_length_counts_chars_not_bytes() {
        let p = PasswordPolicy::iess();
        let fifteen = "ñ".repeat(15); // 30 bytes
        assert!(!p.exceeds_max_length(&pw(&fifteen)));
        assert!(p.exceeds_max_length(&pw(&"ñ".repeat(16))));
        assert!(!p.exceeds_max_length(&pw("")));
        assert_eq!(rules(&p, &fifteen), [PasswordRule::DisallowedCharacter]);
        let mut max = PasswordPolicy::recommended();
        max.max_length = usize::MAX;
        assert!(!max.exceeds_max_length(&pw("abc")));
    }

    #[test]
    fn non_ascii_counts_as_one_char_each() {
        let mut p = PasswordPolicy::recommended();
        p.min_length = 5;
        p.max_length = 5;
        passes(&p, "ñandú");
        fails_only(&p, "ñand", PasswordRule::TooShort { min: 5 });
        fails_only(&p, "ñandúñ", PasswordRule::TooLong { max: 5 });
        passes(&p, "😀😀😀😀😀");
        p.alphabet = Alphabet::AsciiAlphanumeric;
        fails_only(&p, "ñandú", PasswordRule::DisallowedCharacter);
        passes(&p, "nandu");
    }

    // --- Identifiers --------------------------------------------------------

    #[test]
    fn identifiers_are_rejected_case_insensitively() {
        let p = PasswordPolicy::recommended();
        let ctx = PasswordContext::new()
            .with_identifier("1712345678")
            .with_identifier("Juan.Perez@Example.com");
        let check = |text: &str| p.check(&pw(text), &ctx).map_err(|e| e.rules().to_vec());
        let hit = Err(vec![PasswordRule::ContainsIdentifier]);
        assert_eq!(
            check("1712345678"),
            Err(vec![
                PasswordRule::TooShort { min: 15 },
                PasswordRule::ContainsIdentifier,
            ])
        );
        assert_eq!(check("zqx1712345678zqx"), hit);
        assert_eq!(check("JUAN.PEREZ@EXAMPLE.COM"), hit);
        assert_eq!(check("my juan.perez secret"), hit);
        assert_eq!(check("XX JuanPerez XX XX"), hit);
        assert_eq!(check("violet perez harbour"), hit);
        assert_eq!(check("violet JUAN harbour"), hit);
        // Domain words and short fragments are not identifiers.
        assert_eq!(check("example harbour engine"), Ok(()));
        assert_eq!(check("171234567 harbour engine"), Ok(()));
        // Without reject_identifiers the context is ignored.
        let mut off = p.clone();
        off.reject_identifiers = false;
        assert!(off.check(&pw("zqx1712345678zqx"), &ctx).is_ok());
    }

    #[test]
    fn short_identifier_fragments_are_ignored() {
        let p = PasswordPolicy::recommended();
        let ctx = PasswordContext::new()
            .with_identifier("ana")
            .with_identifier("  ab@x.ec  ")
            .with_identifier("");
        assert!(p.check(&pw("banana ab cabal xec"), &ctx).is_ok());
        // The whole email (7 chars) still counts.
        assert!(
            p.check(&pw("banana ab@x.ec cabal"), &ctx)
                .unwrap_err()
                .contains(PasswordRule::ContainsIdentifier)
        );
        // Separators in the identifier are ignored.
        let ctx = PasswordContext::new().with_identifier("171234567-8");
        assert!(
            p.check(&pw("zz 1712345678 zz zz"), &ctx)
                .unwrap_err()
                .contains(PasswordRule::ContainsIdentifier)
        );
        assert_eq!(ctx.identifiers(), ["171234567-8"]);
        assert_eq!(PasswordContext::MIN_FRAGMENT_CHARS, 4);
    }

    // --- Common list --------------------------------------------------------

    #[test]
    fn common_list_is_well_formed() {
        let entries: Vec<&str> = common_passwords().collect();
        assert!((500..=1000).contains(&entries.len()), "{}", entries.len());
        let mut seen = HashSet::new();
        for entry in &entries {
            assert_eq!(*entry, entry.to_lowercase(), "not lower-case: {entry}");
            assert_eq!(*entry, entry.to_uppercase().to_lowercase(), "{entry}");
            assert!(!entry.chars().any(char::is_whitespace), "{entry}");
            assert!(seen.insert(*entry), "duplicate: {entry}");
        }
        assert_eq!(common_set().len(), entries.len());
        assert!(entries.iter().filter(|e| e.chars().count() >= 15).count() >= 30);
        for must in [
            "123456",
            "password",
            "qwerty",
            "iloveyou",
            "contraseña",
            "contrasena",
            "ecuador",
            "ecuador123",
            "quito",
            "guayaquil",
            "cuenca",
            "teamo",
            "tequiero",
            "barcelona",
            "emelec",
            "ldu",
            "isspol",
            "iess",
            "iess123",
            "policia",
            "clave123",
            "123456789012345",
            "qwertyuiopasdfg",
            "aaaaaaaaaaaaaaa",
            "passwordpassword",
            "contraseñacontraseña",
        ] {
            assert!(seen.contains(must), "missing {must}");
        }
    }

    #[test]
    fn common_passwords_are_detected() {
        let common = |text: &str| is_common_password(&pw(text));
        assert!(common("password"));
        assert!(common("PASSWORD"));
        assert!(common("  qwerty  "));
        assert!(common("Contraseña"));
        assert!(common("CONTRASEÑA"));
        assert!(common("iess123"));
        assert!(common("1234"));
        // Up to four trailing digits / symbols on an entry of 6+ chars.
        assert!(common("Password1!"));
        assert!(common("monkey2024"));
        assert!(common("Ecuador#1"));
        assert!(common("dragon!!!!"));
        assert!(!common("dragon!!!!!"));
        assert!(!common("monkey98765"));
        // Base entries shorter than 6 chars only match exactly.
        assert!(!common("iess99"));
        assert!(!common("quito7"));
        // Prefixes and inner words do not count.
        assert!(!common("123password"));
        assert!(!common("violet harbour engine"));
        assert!(!common(""));

        let p = PasswordPolicy::recommended();
        fails_only(&p, "PasswordPassword12!", PasswordRule::Common);
        fails_only(&p, "123456789012345", PasswordRule::Common);
        let mut off = p.clone();
        off.reject_common = false;
        passes(&off, "123456789012345");
    }

    // --- Messages -----------------------------------------------------------

    #[test]
    fn spanish_messages() {
        let cases = [
            (
                PasswordRule::TooShort { min: 8 },
                "La clave debe tener al menos 8 caracteres",
            ),
            (
                PasswordRule::TooShort { min: 1 },
                "La clave debe tener al menos 1 carácter",
            ),
            (
                PasswordRule::TooLong { max: 15 },
                "La clave debe tener como máximo 15 caracteres",
            ),
            (
                PasswordRule::TooLong { max: 1 },
                "La clave debe tener como máximo 1 carácter",
            ),
            (
                PasswordRule::MissingLowercase,
                "La clave debe contener al menos una letra minúscula",
            ),
            (
                PasswordRule::MissingUppercase,
                "La clave debe contener al menos una letra mayúscula",
            ),
            (
                PasswordRule::MissingDigit,
                "La clave debe contener al menos un número",
            ),
            (
                PasswordRule::MissingSymbol,
                "La clave debe contener al menos un carácter especial (por ejemplo ! @ # $ %)",
            ),
            (
                PasswordRule::MissingLetter,
                "La clave debe contener al menos una letra",
            ),
            (
                PasswordRule::DisallowedCharacter,
                "La clave solo puede contener letras y números \
                 (sin tildes, eñes, espacios ni caracteres especiales)",
            ),
            (
                PasswordRule::ContainsIdentifier,
                "La clave no puede contener su número de cédula o identificación \
                 ni su correo electrónico",
            ),
            (
                PasswordRule::Common,
                "La clave es demasiado común o fácil de adivinar; elija otra",
            ),
        ];
        for (rule, expected) in cases {
            assert_eq!(rule.message_es(), expected);
        }
        let err = PasswordPolicy::isspol()
            .check(&pw("abc"), &NO_CTX)
            .unwrap_err();
        assert_eq!(
            err.messages_es(),
            [
                "La clave debe tener al menos 8 caracteres",
                "La clave debe contener al menos una letra mayúscula",
                "La clave debe contener al menos un número",
            ]
        );
    }

    #[test]
    fn english_display() {
        let err = PasswordPolicy::isspol()
            .check(&pw("abc"), &NO_CTX)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "must be at least 8 characters long; \
             must contain an uppercase letter; must contain a digit"
        );
        let _: &dyn std::error::Error = &err;
        assert_eq!(PasswordRule::Common.to_string(), "is too common");
    }

    #[test]
    fn planted_secret_never_leaks() {
        const SECRET: &str = "PLANTED SECRET 4711 Ñ";
        let password = pw(SECRET);
        let mut policy = PasswordPolicy::isspol();
        policy.alphabet = Alphabet::AsciiAlphanumeric;
        let ctx = PasswordContext::new().with_identifier("4711");
        let err = policy.check(&password, &ctx).unwrap_err();
        assert_eq!(
            err.rules(),
            [
                PasswordRule::MissingLowercase,
                PasswordRule::DisallowedCharacter,
                PasswordRule::ContainsIdentifier,
            ]
        );
        let outputs = [
            format!("{password:?}"),
            format!("{err}"),
            format!("{err:?}"),
            format!("{:?}", policy.check(&password, &ctx)),
            err.messages_es().join("\n"),
            serde_json::to_string(err.rules()).unwrap(),
        ];
        for output in outputs {
            for needle in [SECRET, "PLANTED", "SECRET", "4711"] {
                assert!(!output.contains(needle), "{needle} leaked in {output}");
            }
        }
    }

    // --- Policy validation --------------------------------------------------

    #[test]
    fn policy_validation_errors() {
        let base = PasswordPolicy::recommended();

        let mut p = base.clone();
        p.min_length = 0;
        assert_eq!(p.validate(), Err(PasswordPolicyError::MinLengthZero));
        assert_eq!(
            PasswordPolicyError::MinLengthZero.to_string(),
            "min_length must be at least 1"
        );

        let mut p = base.clone();
        p.min_length = 20;
        p.max_length = 19;
        let err = p.validate().unwrap_err();
        assert_eq!(
            err,
            PasswordPolicyError::MinExceedsMax {
                min_length: 20,
                max_length: 19
            }
        );
        assert_eq!(
            err.to_string(),
            "min_length (20) must not exceed max_length (19)"
        );

        let mut p = base.clone();
        p.max_length = 4096;
        assert_eq!(p.validate(), Ok(()));
        p.max_length = 4097;
        let err = p.validate().unwrap_err();
        assert_eq!(
            err,
            PasswordPolicyError::MaxLengthTooLarge {
                max_length: 4097,
                limit: 4096
            }
        );
        assert_eq!(err.to_string(), "max_length (4097) must not exceed 4096");

        let mut p = PasswordPolicy::iess();
        p.require_symbol = true;
        let err = p.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "require_symbol cannot be satisfied with alphabet ascii_alphanumeric"
        );

        let mut p = base.clone();
        p.min_length = 1;
        p.max_length = 3;
        p.require_lowercase = true;
        p.require_uppercase = true;
        p.require_letter = true;
        p.require_digit = true;
        assert_eq!(p.validate(), Ok(()));
        p.require_symbol = true;
        let err = p.validate().unwrap_err();
        assert_eq!(
            err,
            PasswordPolicyError::TooManyRequirements {
                required: 4,
                max_length: 3
            }
        );
        assert!(err.to_string().contains("max_length is 3"));

        let mut p = base;
        p.min_length = 1;
        p.max_length = 1;
        p.require_letter = true;
        assert_eq!(p.validate(), Ok(()));
        p.require_digit = true;
        assert!(matches!(
            p.validate(),
            Err(PasswordPolicyError::TooManyRequirements { required: 2, .. })
        ));
    }

    // --- Serde --------------------------------------------------------------

    #[test]
    fn policy_serde_round_trip() {
        for policy in [
            PasswordPolicy::isspol(),
            PasswordPolicy::iess(),
            PasswordPolicy::recommended(),
        ] {
            let json = serde_json::to_string(&policy).unwrap();
            let back: PasswordPolicy = serde_json::from_str(&json).unwrap();
            assert_eq!(back, policy);
        }
        let json = serde_json::to_value(PasswordPolicy::iess()).unwrap();
        assert_eq!(json["alphabet"], "ascii_alphanumeric");
        assert_eq!(json["max_length"], 15);
        assert_eq!(json["require_letter"], false);
    }

    #[test]
    fn partial_policy_uses_defaults() {
        let policy: PasswordPolicy =
            serde_json::from_str(r#"{"min_length": 10, "require_digit": true}"#).unwrap();
        let mut expected = PasswordPolicy::recommended();
        expected.min_length = 10;
        expected.require_digit = true;
        assert_eq!(policy, expected);
        let empty: PasswordPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, PasswordPolicy::recommended());
    }

    #[test]
    fn unknown_policy_fields_and_alphabets_are_rejected() {
        let err = serde_json::from_str::<PasswordPolicy>(r#"{"min_lenght": 10}"#).unwrap_err();
        assert!(err.to_string().contains("min_lenght"), "{err}");
        assert!(serde_json::from_str::<PasswordPolicy>(r#"{"alphabet": "ascii"}"#).is_err());
        assert!(serde_json::from_str::<PasswordPolicy>(r#"{"alphabet": "Any"}"#).is_err());
    }

    #[test]
    fn rule_serde_is_snake_case() {
        assert_eq!(
            serde_json::to_string(&PasswordRule::TooShort { min: 8 }).unwrap(),
            r#"{"rule":"too_short","min":8}"#
        );
        assert_eq!(
            serde_json::to_string(&PasswordRule::DisallowedCharacter).unwrap(),
            r#"{"rule":"disallowed_character"}"#
        );
        let back: PasswordRule = serde_json::from_str(r#"{"rule":"missing_digit"}"#).unwrap();
        assert_eq!(back, PasswordRule::MissingDigit);
        assert_eq!(
            Alphabet::AsciiAlphanumeric.to_string(),
            "ascii_alphanumeric"
        );
        assert_eq!(Alphabet::default(), Alphabet::Any);
    }

    // --- Properties ---------------------------------------------------------

    fn preset() -> impl Strategy<Value = PasswordPolicy> {
        prop_oneof![
            Just(PasswordPolicy::isspol()),
            Just(PasswordPolicy::iess()),
            Just(PasswordPolicy::recommended()),
        ]
    }

    fn any_policy() -> impl Strategy<Value = PasswordPolicy> {
        prop_oneof![1 => preset(), 3 => password_policy()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn generated_policies_are_valid(policy in password_policy()) {
            prop_assert_eq!(policy.validate(), Ok(()));
        }

        #[test]
        fn passing_passwords_pass(
            (policy, password) in any_policy()
                .prop_flat_map(|p| (Just(p.clone()), passing_password(&p)))
        ) {
            prop_assert_eq!(policy.check(&password, &NO_CTX), Ok(()));
        }

        #[test]
        fn failing_passwords_report_their_rule(
            (policy, (password, rule)) in any_policy()
                .prop_flat_map(|p| (Just(p.clone()), failing_password(&p)))
        ) {
            let err = policy.check(&password, &NO_CTX);
            prop_assert!(err.is_err());
            if let Err(err) = err {
                prop_assert!(err.contains(rule), "{:?} not in {:?}", rule, err.rules());
            }
        }

        #[test]
        fn debug_never_shows_the_secret(text in any::<String>()) {
            let password = Password::new(text.clone());
            prop_assert_eq!(format!("{password:?}"), "Password([REDACTED])");
            prop_assert_eq!(password.expose_secret(), text.as_str());
        }

        #[test]
        fn check_never_panics_or_leaks(
            policy in any_policy(),
            text in prop_oneof![
                any::<String>(),
                ".{0,300}",
                proptest::collection::vec(any::<char>(), 0..6000)
                    .prop_map(|v| v.into_iter().collect::<String>()),
            ],
            id in ".{0,20}",
        ) {
            let ctx = PasswordContext::new().with_identifier(&id);
            let planted = format!("\u{1F511}PLANTED{text}");
            for candidate in [text.as_str(), planted.as_str()] {
                let password = Password::new(candidate);
                let result = policy.check(&password, &ctx);
                if let Err(err) = result {
                    prop_assert!(!err.rules().is_empty());
                    let display = err.to_string();
                    let debug = format!("{err:?}");
                    let spanish = err.messages_es().concat();
                    prop_assert!(!display.contains("PLANTED"));
                    prop_assert!(!debug.contains("PLANTED"));
                    prop_assert!(!spanish.contains("PLANTED"));
                    if policy.exceeds_max_length(&password) {
                        prop_assert_eq!(
                            err.rules(),
                            [PasswordRule::TooLong { max: policy.max_length }]
                        );
                    }
                }
            }
        }

        #[test]
        fn length_rules_match_char_count(policy in any_policy(), text in ".{0,200}") {
            let password = Password::new(text.as_str());
            let count = password.char_count();
            prop_assert_eq!(policy.exceeds_max_length(&password), count > policy.max_length);
            if let Err(err) = policy.check(&password, &NO_CTX) {
                prop_assert_eq!(
                    err.contains(PasswordRule::TooShort { min: policy.min_length }),
                    count < policy.min_length
                );
            } else {
                prop_assert!((policy.min_length..=policy.max_length).contains(&count));
            }
        }
    }
}
