//! Validated identity values of a member: national ID ([`Cedula`]), IESS code
//! for foreigners ([`ForeignerCode`]), either of them ([`MemberId`]), e-mail
//! address ([`Email`]) and Ecuadorian phone numbers ([`MobilePhone`],
//! [`Landline`]).
//!
//! Every type is parsed once at the boundary (through [`FromStr`] or
//! `TryFrom<String>`), is immutable afterwards, and serialises as its
//! canonical string. Deserialising runs the same validation as parsing, so an
//! invalid value can never be read back from storage or from a request.
//!
//! Positions reported in `InvalidCharacter` errors are 1-based and count
//! characters (not bytes) of the input exactly as it was given, including any
//! leading whitespace.
//!
//! ## What is shown where
//!
//! These values are personal data, and `Debug` output ends up in logs (a
//! `{:?}` of a record, an outcome or an error): **`Debug` prints the masked
//! form** (`Cedula("17******65")`, `Email("a***@example.ec")`), and so does the
//! `Debug` of everything that contains them. The canonical form is only
//! reached explicitly — `as_str` / `as_e164`, [`Display`](fmt::Display) and
//! serde — for storage keys, forms and mail headers; never put those in a log
//! line or an error message, use `masked()` there.
//!
//! ```
//! use afiliado::identity::{Email, MemberId};
//!
//! let id: MemberId = "1710034065".parse()?;
//! assert_eq!(format!("{id:?}"), r#"Cedula(Cedula("17******65"))"#);
//! assert_eq!(id.masked(), "17******65");
//! assert_eq!(id.as_str(), "1710034065");
//! let email: Email = "ana.quishpe@example.ec".parse()?;
//! assert_eq!(format!("{email:?}"), r#"Email("a***@example.ec")"#);
//! assert_eq!(email.to_string(), "ana.quishpe@example.ec");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use email_address::{EmailAddress, Options};
use serde::{Deserialize, Serialize};

/// Number of digits of a cédula.
const CEDULA_LEN: usize = 10;
/// Coefficients of the módulo 10 check applied to the first nine digits.
const CEDULA_COEFFICIENTS: [u8; 9] = [2, 1, 2, 1, 2, 1, 2, 1, 2];
/// Province code of Ecuadorians registered abroad.
const PROVINCE_ABROAD: u8 = 30;
/// Highest third digit found on cédulas (6 appears since 2017).
const MAX_THIRD_DIGIT: u8 = 6;

/// Shortest accepted foreigner code.
const FOREIGNER_MIN_LEN: usize = 3;
/// Longest accepted foreigner code.
const FOREIGNER_MAX_LEN: usize = 20;

/// Longest accepted e-mail address, in octets (RFC 5321).
const EMAIL_MAX_LEN: usize = 254;
/// Longest accepted local part of an e-mail address, in octets (RFC 5321).
const EMAIL_LOCAL_MAX_LEN: usize = 64;

/// Ecuador's country calling code.
const COUNTRY_CODE: &str = "593";
/// Digits of a mobile national significant number (`9XXXXXXXX`).
const MOBILE_NSN_LEN: usize = 9;
/// Digits of a landline national significant number (`DNNNNNNN`).
const LANDLINE_NSN_LEN: usize = 8;

/// Number of characters that [`str::trim_start`] removes from `input`.
fn leading_whitespace_chars(input: &str) -> usize {
    input
        .chars()
        .count()
        .saturating_sub(input.trim_start().chars().count())
}

/// Numeric value of an ASCII digit byte (only called on `b'0'..=b'9'`).
fn digit_value(byte: u8) -> u8 {
    byte.wrapping_sub(b'0')
}

/// Returns `true` if `code` is a valid province code of a cédula (01–24 or 30).
fn is_valid_province(code: u8) -> bool {
    (1..=24).contains(&code) || code == PROVINCE_ABROAD
}

/// Computes the check digit (10th digit) of a cédula from its first nine
/// digits with the módulo 10 algorithm.
///
/// Each digit is multiplied by the coefficients `2,1,2,1,2,1,2,1,2`; a product
/// greater than 9 has 9 subtracted; the check digit is
/// `(10 - sum % 10) % 10`. Every element is reduced modulo 10 first, so the
/// function never panics even on out-of-range input.
///
/// ```
/// use afiliado::identity::check_digit;
///
/// assert_eq!(check_digit(&[1, 7, 1, 0, 0, 3, 4, 0, 6]), 5); // 1710034065
/// ```
#[must_use]
pub fn check_digit(first_nine: &[u8; 9]) -> u8 {
    let sum: u8 = first_nine
        .iter()
        .zip(CEDULA_COEFFICIENTS)
        .map(|(&digit, coefficient)| {
            let product = (digit % 10) * coefficient;
            if product > 9 { product - 9 } else { product }
        })
        .sum();
    (10 - sum % 10) % 10
}

// ---------------------------------------------------------------------------
// Cédula
// ---------------------------------------------------------------------------

/// Ecuadorian national identity number (cédula de identidad), 10 digits.
///
/// Parsing accepts surrounding whitespace and inner spaces and hyphens as users
/// type them, then checks the length, the province code (01–24, or 30 for
/// Ecuadorians registered abroad), the third digit (0–6) and the módulo 10
/// check digit. [`Display`](fmt::Display) and serde use the canonical 10
/// digits; `Debug` and [`Cedula::masked`] show it masked (see the
/// [module docs](self#what-is-shown-where)).
///
/// ```
/// use afiliado::identity::{Cedula, CedulaError};
///
/// let cedula: Cedula = " 171003406-5 ".parse()?;
/// assert_eq!(cedula.as_str(), "1710034065");
/// assert_eq!(cedula.province(), 17);
/// assert_eq!(cedula.masked(), "17******65");
/// assert_eq!(format!("{cedula:?}"), r#"Cedula("17******65")"#);
/// assert_eq!(
///     "1710034064".parse::<Cedula>(),
///     Err(CedulaError::CheckDigitMismatch { expected: 5, found: 4 })
/// );
/// # Ok::<(), CedulaError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cedula {
    /// Canonical form: exactly ten ASCII digits.
    text: String,
    /// Numeric values of the ten digits (same information as `text`).
    digits: [u8; CEDULA_LEN],
}

impl Cedula {
    /// Canonical form: exactly ten ASCII digits, without separators.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Province code (first two digits): 1–24, or 30 for Ecuadorians
    /// registered abroad.
    #[must_use]
    pub fn province(&self) -> u8 {
        let [tens, units, ..] = self.digits;
        tens * 10 + units
    }

    /// Masked form for logs and screens: first two and last two digits kept,
    /// the rest replaced by `*` (e.g. `"17******65"`).
    #[must_use]
    pub fn masked(&self) -> String {
        let [first, second, .., ninth, tenth] = self.digits;
        format!("{first}{second}******{ninth}{tenth}")
    }
}

/// Masked (`Cedula("17******65")`): `Debug` output ends up in logs.
impl fmt::Debug for Cedula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cedula").field(&self.masked()).finish()
    }
}

impl fmt::Display for Cedula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Cedula {
    type Err = CedulaError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let offset = leading_whitespace_chars(input);
        let mut text = String::with_capacity(CEDULA_LEN);
        for (index, character) in input.trim().chars().enumerate() {
            match character {
                '0'..='9' => text.push(character),
                ' ' | '-' => {}
                _ => {
                    return Err(CedulaError::InvalidCharacter {
                        character,
                        position: offset + index + 1,
                    });
                }
            }
        }
        if text.is_empty() {
            return Err(CedulaError::Empty);
        }
        let values: Vec<u8> = text.bytes().map(digit_value).collect();
        let Ok(digits) = <[u8; CEDULA_LEN]>::try_from(values.as_slice()) else {
            return Err(CedulaError::WrongLength {
                found: values.len(),
            });
        };
        let [d0, d1, d2, d3, d4, d5, d6, d7, d8, d9] = digits;
        let code = d0 * 10 + d1;
        if !is_valid_province(code) {
            return Err(CedulaError::InvalidProvince { code });
        }
        if d2 > MAX_THIRD_DIGIT {
            return Err(CedulaError::InvalidThirdDigit { digit: d2 });
        }
        let expected = check_digit(&[d0, d1, d2, d3, d4, d5, d6, d7, d8]);
        if expected != d9 {
            return Err(CedulaError::CheckDigitMismatch {
                expected,
                found: d9,
            });
        }
        Ok(Self { text, digits })
    }
}

impl TryFrom<String> for Cedula {
    type Error = CedulaError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Cedula> for String {
    fn from(value: Cedula) -> Self {
        value.text
    }
}

/// Why a text is not a valid [`Cedula`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CedulaError {
    /// The input is empty or contains only whitespace and separators.
    #[error("cédula is empty")]
    Empty,
    /// A character other than a digit, space or hyphen was found.
    #[error("invalid character {character:?} at position {position} in cédula")]
    InvalidCharacter {
        /// The offending character.
        character: char,
        /// 1-based character position in the input as given.
        position: usize,
    },
    /// The number of digits is not 10.
    #[error("cédula must have 10 digits, found {found}")]
    WrongLength {
        /// Number of digits found.
        found: usize,
    },
    /// The first two digits are not 01–24 or 30.
    #[error("invalid province code {code:02} in cédula (expected 01-24 or 30)")]
    InvalidProvince {
        /// The province code found.
        code: u8,
    },
    /// The third digit is greater than 6.
    #[error("invalid third digit {digit} in cédula (expected 0-6)")]
    InvalidThirdDigit {
        /// The third digit found.
        digit: u8,
    },
    /// The tenth digit does not match the módulo 10 check digit.
    #[error("cédula check digit is {found}, expected {expected}")]
    CheckDigitMismatch {
        /// Check digit computed from the first nine digits.
        expected: u8,
        /// Tenth digit found in the input.
        found: u8,
    },
}

impl CedulaError {
    /// The failed rule, without its details (useful to compare in tests).
    #[must_use]
    pub fn kind(&self) -> CedulaErrorKind {
        match self {
            Self::Empty => CedulaErrorKind::Empty,
            Self::InvalidCharacter { .. } => CedulaErrorKind::InvalidCharacter,
            Self::WrongLength { .. } => CedulaErrorKind::WrongLength,
            Self::InvalidProvince { .. } => CedulaErrorKind::InvalidProvince,
            Self::InvalidThirdDigit { .. } => CedulaErrorKind::InvalidThirdDigit,
            Self::CheckDigitMismatch { .. } => CedulaErrorKind::CheckDigitMismatch,
        }
    }
}

/// The rule a [`CedulaError`] reports, without its details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CedulaErrorKind {
    /// See [`CedulaError::Empty`].
    Empty,
    /// See [`CedulaError::InvalidCharacter`].
    InvalidCharacter,
    /// See [`CedulaError::WrongLength`].
    WrongLength,
    /// See [`CedulaError::InvalidProvince`].
    InvalidProvince,
    /// See [`CedulaError::InvalidThirdDigit`].
    InvalidThirdDigit,
    /// See [`CedulaError::CheckDigitMismatch`].
    CheckDigitMismatch,
}

// ---------------------------------------------------------------------------
// Foreigner code
// ---------------------------------------------------------------------------

/// Code issued by IESS staff to a foreigner who has no cédula.
///
/// Opaque but validated: after trimming and upper-casing it is 3–20 ASCII
/// letters and digits with at least one letter, so it can never be mistaken
/// for a cédula. `Debug` shows it masked.
///
/// ```
/// use afiliado::identity::{ForeignerCode, ForeignerCodeError};
///
/// let code: ForeignerCode = " ext12345 ".parse()?;
/// assert_eq!(code.as_str(), "EXT12345");
/// assert_eq!(code.masked(), "E*****45");
/// assert_eq!("12345".parse::<ForeignerCode>(), Err(ForeignerCodeError::NoLetter));
/// # Ok::<(), ForeignerCodeError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ForeignerCode(String);

impl ForeignerCode {
    /// Canonical form: upper-case ASCII letters and digits.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Masked form: the first character, and the last two when the code is
    /// longer than five characters, kept; the rest replaced by `*`
    /// (e.g. `"E*****45"`, `"A**"`).
    #[must_use]
    pub fn masked(&self) -> String {
        let len = self.0.len();
        let tail_start = if len > 5 { len.saturating_sub(2) } else { len };
        self.0
            .chars()
            .enumerate()
            .map(|(index, c)| {
                if index == 0 || index >= tail_start {
                    c
                } else {
                    '*'
                }
            })
            .collect()
    }
}

/// Masked (`ForeignerCode("E*****45")`): `Debug` output ends up in logs.
impl fmt::Debug for ForeignerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ForeignerCode")
            .field(&self.masked())
            .finish()
    }
}

impl fmt::Display for ForeignerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ForeignerCode {
    type Err = ForeignerCodeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let offset = leading_whitespace_chars(input);
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(ForeignerCodeError::Empty);
        }
        if let Some((index, character)) = trimmed
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_alphanumeric())
        {
            return Err(ForeignerCodeError::InvalidCharacter {
                character,
                position: offset + index + 1,
            });
        }
        // Only ASCII remains, so bytes and characters coincide.
        let length = trimmed.len();
        if length < FOREIGNER_MIN_LEN {
            return Err(ForeignerCodeError::TooShort { length });
        }
        if length > FOREIGNER_MAX_LEN {
            return Err(ForeignerCodeError::TooLong { length });
        }
        if !trimmed.bytes().any(|b| b.is_ascii_alphabetic()) {
            return Err(ForeignerCodeError::NoLetter);
        }
        Ok(Self(trimmed.to_ascii_uppercase()))
    }
}

impl TryFrom<String> for ForeignerCode {
    type Error = ForeignerCodeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ForeignerCode> for String {
    fn from(value: ForeignerCode) -> Self {
        value.0
    }
}

/// Why a text is not a valid [`ForeignerCode`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForeignerCodeError {
    /// The input is empty or only whitespace.
    #[error("foreigner code is empty")]
    Empty,
    /// Fewer than 3 characters.
    #[error("foreigner code must have at least 3 characters, found {length}")]
    TooShort {
        /// Number of characters found.
        length: usize,
    },
    /// More than 20 characters.
    #[error("foreigner code must have at most 20 characters, found {length}")]
    TooLong {
        /// Number of characters found.
        length: usize,
    },
    /// A character other than an ASCII letter or digit was found.
    #[error("invalid character {character:?} at position {position} in foreigner code")]
    InvalidCharacter {
        /// The offending character.
        character: char,
        /// 1-based character position in the input as given.
        position: usize,
    },
    /// The code has no letter (it would be confused with a cédula).
    #[error("foreigner code must contain at least one letter")]
    NoLetter,
}

// ---------------------------------------------------------------------------
// Member identifier
// ---------------------------------------------------------------------------

/// Identifier of a member: a [`Cedula`] or, for foreigners without one, a
/// [`ForeignerCode`].
///
/// Parsing dispatches on the trimmed input: if it consists only of digits,
/// spaces and hyphens it is parsed as a cédula, otherwise as a foreigner code.
/// Serialises as the canonical string of the inner value; since foreigner
/// codes always contain a letter the round trip is unambiguous. `Debug` shows
/// the inner value masked.
///
/// ```
/// use afiliado::identity::{MemberId, MemberIdError, MemberIdKind};
///
/// let id: MemberId = "1710034065".parse()?;
/// assert_eq!(id.kind(), MemberIdKind::Cedula);
/// let id: MemberId = "ext12345".parse()?;
/// assert_eq!(id.kind(), MemberIdKind::Foreigner);
/// assert_eq!(id.as_str(), "EXT12345");
/// assert!(matches!("1710034064".parse::<MemberId>(), Err(MemberIdError::Cedula(_))));
/// # Ok::<(), MemberIdError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum MemberId {
    /// An Ecuadorian national identity number.
    Cedula(Cedula),
    /// An IESS code for a foreigner without cédula.
    Foreigner(ForeignerCode),
}

impl MemberId {
    /// Canonical string of the inner value.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Cedula(cedula) => cedula.as_str(),
            Self::Foreigner(code) => code.as_str(),
        }
    }

    /// Which kind of identifier this is.
    #[must_use]
    pub fn kind(&self) -> MemberIdKind {
        match self {
            Self::Cedula(_) => MemberIdKind::Cedula,
            Self::Foreigner(_) => MemberIdKind::Foreigner,
        }
    }

    /// Masked form of the inner value (see [`Cedula::masked`] and
    /// [`ForeignerCode::masked`]).
    #[must_use]
    pub fn masked(&self) -> String {
        match self {
            Self::Cedula(cedula) => cedula.masked(),
            Self::Foreigner(code) => code.masked(),
        }
    }

    /// The cédula, if this identifier is one.
    #[must_use]
    pub fn as_cedula(&self) -> Option<&Cedula> {
        match self {
            Self::Cedula(cedula) => Some(cedula),
            Self::Foreigner(_) => None,
        }
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MemberId {
    type Err = MemberIdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let looks_like_cedula = input
            .trim()
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
        if looks_like_cedula {
            Ok(Self::Cedula(input.parse()?))
        } else {
            Ok(Self::Foreigner(input.parse()?))
        }
    }
}

impl TryFrom<String> for MemberId {
    type Error = MemberIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<MemberId> for String {
    fn from(value: MemberId) -> Self {
        match value {
            MemberId::Cedula(cedula) => cedula.into(),
            MemberId::Foreigner(code) => code.into(),
        }
    }
}

impl From<Cedula> for MemberId {
    fn from(value: Cedula) -> Self {
        Self::Cedula(value)
    }
}

impl From<ForeignerCode> for MemberId {
    fn from(value: ForeignerCode) -> Self {
        Self::Foreigner(value)
    }
}

/// The kind of a [`MemberId`]. Serialises as `"cedula"` or `"foreigner"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MemberIdKind {
    /// A [`Cedula`].
    Cedula,
    /// A [`ForeignerCode`].
    Foreigner,
}

/// Why a text is not a valid [`MemberId`]; wraps the error of the kind the
/// input was dispatched to. Its message is the wrapped error's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemberIdError {
    /// The input looked like a cédula (only digits, spaces, hyphens) but is
    /// not a valid one.
    #[error(transparent)]
    Cedula(#[from] CedulaError),
    /// The input looked like a foreigner code but is not a valid one.
    #[error(transparent)]
    Foreigner(#[from] ForeignerCodeError),
}

// ---------------------------------------------------------------------------
// E-mail
// ---------------------------------------------------------------------------

/// An e-mail address.
///
/// Parsed with the `email_address` crate (display names and domain literals
/// rejected) plus these rules: surrounding whitespace trimmed, at most 254
/// octets, local part 1–64 octets, domain containing a dot and not an IP
/// address. The domain is lower-cased; the local part is kept as typed, so
/// `==` is case-sensitive on it. Use [`Email::matches`] to compare the way
/// mail servers usually do. `Debug` shows it masked ([`Email::masked`]).
///
/// ```
/// use afiliado::identity::{Email, EmailError};
///
/// let email: Email = " Juan.Perez@GMail.com ".parse()?;
/// assert_eq!(email.as_str(), "Juan.Perez@gmail.com");
/// assert_eq!(email.domain(), "gmail.com");
/// assert_eq!(email.masked(), "J***@gmail.com");
/// assert!(email.matches(&"juan.perez@gmail.com".parse()?));
/// assert_eq!("juan@localhost".parse::<Email>(), Err(EmailError::DomainWithoutDot));
/// # Ok::<(), EmailError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Canonical form: local part as typed, `@`, lower-cased domain.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The local part (before the last `@`), as typed.
    #[must_use]
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(local, _)| local)
    }

    /// The lower-cased domain (after the last `@`).
    #[must_use]
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }

    /// Masked form: first character of the local part, `***`, `@` and the
    /// domain (e.g. `"j***@gmail.com"`).
    #[must_use]
    pub fn masked(&self) -> String {
        let first = self.local_part().chars().next().unwrap_or('*');
        format!("{first}***@{}", self.domain())
    }

    /// Returns `true` if both addresses are the same ignoring the case of the
    /// local part as well (the domain is always lower-cased). Use it when
    /// checking an address typed by a member against the registered one.
    #[must_use]
    pub fn matches(&self, other: &Email) -> bool {
        self.domain() == other.domain()
            && self.local_part().to_lowercase() == other.local_part().to_lowercase()
    }
}

/// Masked (`Email("j***@gmail.com")`): `Debug` output ends up in logs.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.masked()).finish()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Returns `true` if `domain` is a dotted IPv4-like address (its last label,
/// the top-level domain, is numeric; real top-level domains never are).
fn is_numeric_domain(domain: &str) -> bool {
    domain
        .rsplit('.')
        .next()
        .is_some_and(|tld| !tld.is_empty() && tld.bytes().all(|b| b.is_ascii_digit()))
}

impl FromStr for Email {
    type Err = EmailError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(EmailError::MissingAt);
        };
        let domain = domain.to_lowercase();
        let canonical = format!("{local}@{domain}");
        if canonical.len() > EMAIL_MAX_LEN {
            return Err(EmailError::TooLong {
                length: canonical.len(),
            });
        }
        if local.is_empty() {
            return Err(EmailError::LocalPartEmpty);
        }
        if local.len() > EMAIL_LOCAL_MAX_LEN {
            return Err(EmailError::LocalPartTooLong {
                length: local.len(),
            });
        }
        if domain.is_empty() {
            return Err(EmailError::DomainEmpty);
        }
        if domain.starts_with('[') || is_numeric_domain(&domain) {
            return Err(EmailError::IpAddress);
        }
        if !domain.contains('.') {
            return Err(EmailError::DomainWithoutDot);
        }
        let options = Options::default()
            .without_display_text()
            .without_domain_literal();
        EmailAddress::parse_with_options(&canonical, options).map_err(|error| {
            EmailError::Syntax {
                reason: error.to_string(),
            }
        })?;
        Ok(Self(canonical))
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// Why a text is not a valid [`Email`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// The input is empty or only whitespace.
    #[error("e-mail address is empty")]
    Empty,
    /// Longer than 254 octets.
    #[error("e-mail address must have at most 254 characters, found {length}")]
    TooLong {
        /// Length found, in octets.
        length: usize,
    },
    /// There is no `@`.
    #[error("e-mail address has no '@'")]
    MissingAt,
    /// Nothing before the `@`.
    #[error("e-mail address has an empty local part")]
    LocalPartEmpty,
    /// The part before the `@` is longer than 64 octets.
    #[error("e-mail local part must have at most 64 characters, found {length}")]
    LocalPartTooLong {
        /// Length found, in octets.
        length: usize,
    },
    /// Nothing after the `@`.
    #[error("e-mail address has an empty domain")]
    DomainEmpty,
    /// The domain has no dot (e.g. `localhost`).
    #[error("e-mail domain must contain a dot")]
    DomainWithoutDot,
    /// The domain is an IP address or an address literal (`[...]`).
    #[error("e-mail domain must be a name, not an IP address")]
    IpAddress,
    /// Rejected by the address syntax rules (RFC 5322 subset).
    #[error("invalid e-mail syntax: {reason}")]
    Syntax {
        /// What the syntax check reported.
        reason: String,
    },
}

// ---------------------------------------------------------------------------
// Phones
// ---------------------------------------------------------------------------

/// Strips separators and the international or national prefix from an
/// Ecuadorian phone number and returns its national significant number.
fn national_significant_number(input: &str) -> Result<String, PhoneError> {
    let offset = leading_whitespace_chars(input);
    let mut digits = String::new();
    let mut plus = false;
    for (index, character) in input.trim().chars().enumerate() {
        match character {
            '0'..='9' => digits.push(character),
            ' ' | '-' | '.' | '(' | ')' => {}
            '+' if !plus && digits.is_empty() => plus = true,
            _ => {
                return Err(PhoneError::InvalidCharacter {
                    character,
                    position: offset + index + 1,
                });
            }
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }
    let nsn = if plus {
        digits.strip_prefix(COUNTRY_CODE)
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.strip_prefix(COUNTRY_CODE)
    } else if let Some(rest) = digits.strip_prefix('0') {
        Some(rest)
    } else if let Some(rest) = digits.strip_prefix(COUNTRY_CODE) {
        Some(rest)
    } else {
        return Err(PhoneError::MissingTrunkPrefix);
    };
    nsn.map(str::to_owned)
        .ok_or(PhoneError::UnsupportedCountryCode)
}

/// The last four characters of `s` (or all of it if shorter).
fn last_four(s: &str) -> &str {
    s.get(s.len().saturating_sub(4)..).unwrap_or("")
}

/// An Ecuadorian mobile phone number.
///
/// Accepted forms: `09XXXXXXXX`, `+5939XXXXXXXX`, `5939XXXXXXXX` and
/// `005939XXXXXXXX`, with spaces, hyphens, dots and parentheses allowed as
/// separators. Stored, displayed and serialised in E.164 (`+5939XXXXXXXX`);
/// `Debug` shows it masked.
///
/// ```
/// use afiliado::identity::{MobilePhone, PhoneError};
///
/// let phone: MobilePhone = "(099) 123-4567".parse()?;
/// assert_eq!(phone.as_e164(), "+593991234567");
/// assert_eq!(phone.national(), "0991234567");
/// assert_eq!(phone.masked(), "09****4567");
/// assert_eq!("02 234 5678".parse::<MobilePhone>(), Err(PhoneError::NotMobile));
/// # Ok::<(), PhoneError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MobilePhone(String);

impl MobilePhone {
    /// E.164 form, `+5939XXXXXXXX`.
    #[must_use]
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// National form, `09XXXXXXXX`.
    #[must_use]
    pub fn national(&self) -> String {
        format!("0{}", self.nsn())
    }

    /// Masked form: `09`, four `*` and the last four digits
    /// (e.g. `"09****4567"`).
    #[must_use]
    pub fn masked(&self) -> String {
        format!("09****{}", last_four(&self.0))
    }

    /// National significant number, `9XXXXXXXX`.
    fn nsn(&self) -> &str {
        self.0.strip_prefix("+593").unwrap_or("")
    }
}

/// Masked (`MobilePhone("09****4567")`): `Debug` output ends up in logs.
impl fmt::Debug for MobilePhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MobilePhone").field(&self.masked()).finish()
    }
}

impl fmt::Display for MobilePhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MobilePhone {
    type Err = PhoneError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let nsn = national_significant_number(input)?;
        match nsn.bytes().next() {
            Some(b'9') | None => {}
            Some(_) => return Err(PhoneError::NotMobile),
        }
        if nsn.len() != MOBILE_NSN_LEN {
            return Err(PhoneError::WrongLength {
                found: nsn.len(),
                expected: MOBILE_NSN_LEN,
            });
        }
        Ok(Self(format!("+{COUNTRY_CODE}{nsn}")))
    }
}

impl TryFrom<String> for MobilePhone {
    type Error = PhoneError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<MobilePhone> for String {
    fn from(value: MobilePhone) -> Self {
        value.0
    }
}

/// An Ecuadorian landline (fixed) phone number.
///
/// National form `0D NNNNNNN`, where the area code `D` is 2–7 and the
/// subscriber number has 7 digits, the first one 2–7; the international forms
/// `+593D NNNNNNN`, `593D NNNNNNN` and `00593D NNNNNNN` are accepted too, with
/// the same separators as [`MobilePhone`]. Stored, displayed and serialised in
/// E.164 (`+593DNNNNNNN`); `Debug` shows it masked.
///
/// ```
/// use afiliado::identity::{Landline, PhoneError};
///
/// let phone: Landline = "02 234-5678".parse()?;
/// assert_eq!(phone.as_e164(), "+59322345678");
/// assert_eq!(phone.national(), "022345678");
/// assert_eq!(phone.area_code(), 2);
/// assert_eq!(phone.masked(), "02***5678");
/// # Ok::<(), PhoneError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Landline(String);

impl Landline {
    /// E.164 form, `+593DNNNNNNN`.
    #[must_use]
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// National form, `0DNNNNNNN`.
    #[must_use]
    pub fn national(&self) -> String {
        format!("0{}", self.nsn())
    }

    /// Area code digit `D` (2–7); the national area code is `0D`.
    #[must_use]
    pub fn area_code(&self) -> u8 {
        self.nsn().bytes().next().map_or(0, digit_value)
    }

    /// Masked form: area code `0D`, three `*` and the last four digits
    /// (e.g. `"02***5678"`).
    #[must_use]
    pub fn masked(&self) -> String {
        format!("0{}***{}", self.area_code(), last_four(&self.0))
    }

    /// National significant number, `DNNNNNNN`.
    fn nsn(&self) -> &str {
        self.0.strip_prefix("+593").unwrap_or("")
    }
}

/// Masked (`Landline("02***5678")`): `Debug` output ends up in logs.
impl fmt::Debug for Landline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Landline").field(&self.masked()).finish()
    }
}

impl fmt::Display for Landline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Landline {
    type Err = PhoneError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let nsn = national_significant_number(input)?;
        let mut digits = nsn.bytes().map(digit_value);
        match digits.next() {
            None | Some(2..=7) => {}
            Some(9) => return Err(PhoneError::NotLandline),
            Some(digit) => return Err(PhoneError::InvalidAreaCode { digit }),
        }
        if nsn.len() != LANDLINE_NSN_LEN {
            return Err(PhoneError::WrongLength {
                found: nsn.len(),
                expected: LANDLINE_NSN_LEN,
            });
        }
        match digits.next() {
            Some(2..=7) => {}
            Some(digit) => return Err(PhoneError::InvalidSubscriberNumber { digit }),
            None => {
                return Err(PhoneError::WrongLength {
                    found: nsn.len(),
                    expected: LANDLINE_NSN_LEN,
                });
            }
        }
        Ok(Self(format!("+{COUNTRY_CODE}{nsn}")))
    }
}

impl TryFrom<String> for Landline {
    type Error = PhoneError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Landline> for String {
    fn from(value: Landline) -> Self {
        value.0
    }
}

/// Why a text is not a valid [`MobilePhone`] or [`Landline`].
///
/// Lengths count the digits of the national significant number, i.e. after
/// removing the `0`, `+593`, `593` or `00593` prefix (9 for mobiles, 8 for
/// landlines).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// The input has no digits.
    #[error("phone number is empty")]
    Empty,
    /// A character other than a digit, separator (space, `-`, `.`, `(`, `)`)
    /// or a single leading `+` was found.
    #[error("invalid character {character:?} at position {position} in phone number")]
    InvalidCharacter {
        /// The offending character.
        character: char,
        /// 1-based character position in the input as given.
        position: usize,
    },
    /// An international number whose country code is not +593.
    #[error("only Ecuadorian numbers (+593) are accepted")]
    UnsupportedCountryCode,
    /// A national number that does not start with 0.
    #[error("phone number must start with 0, +593 or 593")]
    MissingTrunkPrefix,
    /// Wrong number of digits after the prefix.
    #[error("phone number must have {expected} digits after the prefix, found {found}")]
    WrongLength {
        /// Digits found after the prefix.
        found: usize,
        /// Digits expected after the prefix.
        expected: usize,
    },
    /// Expected a mobile number (`09...`), found another kind.
    #[error("not a mobile number (mobile numbers start with 09)")]
    NotMobile,
    /// Expected a landline number, found a mobile one (`09...`).
    #[error("not a landline number (numbers starting with 09 are mobiles)")]
    NotLandline,
    /// The landline area code is not 02–07.
    #[error("invalid area code 0{digit} (expected 02-07)")]
    InvalidAreaCode {
        /// The digit after the leading 0.
        digit: u8,
    },
    /// The landline subscriber number does not start with 2–7.
    #[error("landline number cannot start with {digit} after the area code (expected 2-7)")]
    InvalidSubscriberNumber {
        /// First digit of the subscriber number.
        digit: u8,
    },
}

// ---------------------------------------------------------------------------
// Redaction of free text
// ---------------------------------------------------------------------------

/// Shortest run of digits that [`redact_personal_data`] masks: a landline in national
/// form has 9 digits, a cédula or a mobile in national form 10, E.164 numbers without the
/// `+` 11–12.
const REDACTED_DIGIT_RUN: usize = 9;

/// Characters that may appear in an address-shaped token: the local part's `atext` and
/// `.`, the domain's letters, digits, `-` and `.`, and the `@` itself.
fn is_address_char(c: char) -> bool {
    c.is_alphanumeric() || c == '@' || c == '.' || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// Masks an address-shaped token (`local@domain`) like [`Email::masked`]: the first
/// character of the local part, `***`, `@` and the domain. A token without an `@`, or
/// with nothing on either side of its last `@`, is kept as it is.
fn push_token(out: &mut String, token: &str) {
    let Some((local, domain)) = token.rsplit_once('@') else {
        out.push_str(token);
        return;
    };
    // A sentence's full stop is not part of the domain.
    let domain_end = domain.trim_end_matches('.');
    let mut local_chars = local.chars();
    match (local_chars.next(), domain_end.is_empty()) {
        (Some(first), false) => {
            out.push(first);
            out.push_str("***@");
            out.push_str(domain);
        }
        _ => out.push_str(token),
    }
}

/// Masks a run of digits of [`REDACTED_DIGIT_RUN`] or more: the first two and last two
/// digits kept, the others replaced by `*` (a cédula becomes `17******65`, as
/// [`Cedula::masked`] shows it).
fn push_digits(out: &mut String, run: &str) {
    let len = run.len(); // ASCII digits only: bytes and characters coincide
    if len < REDACTED_DIGIT_RUN {
        out.push_str(run);
        return;
    }
    for (index, digit) in run.chars().enumerate() {
        let keep = index < 2 || index >= len.saturating_sub(2);
        out.push(if keep { digit } else { '*' });
    }
}

/// Control characters (NUL included, which PostgreSQL cannot store in text or JSON) and the
/// bidirectional-override characters, which have no place in stored free text (staff text,
/// question ids, roster fields).
pub(crate) fn is_forbidden_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Masks personal data in free text that is about to become an error message, a
/// dead-letter reason or audit text (a mail server's reply, a driver's message):
///
/// * every address-shaped token `local@domain` (also inside `<…>`) becomes
///   `l***@domain`, like [`Email::masked`];
/// * every run of 9 or more ASCII digits (a cédula, a phone number in national or
///   international form) keeps its first two and last two digits, the rest become `*`
///   (`1710034065` → `17******65`, like [`Cedula::masked`]).
///
/// The result is otherwise the input; applying it twice changes nothing more. Foreigner
/// codes cannot be told apart from ordinary words, so callers never put a
/// [`MemberId`] in such text in the first place: they use [`MemberId::masked`].
pub(crate) fn redact_personal_data(text: &str) -> String {
    let mut addresses_masked = String::with_capacity(text.len());
    let mut token = String::new();
    for c in text.chars() {
        if is_address_char(c) {
            token.push(c);
        } else {
            push_token(&mut addresses_masked, &token);
            token.clear();
            addresses_masked.push(c);
        }
    }
    push_token(&mut addresses_masked, &token);

    let mut out = String::with_capacity(addresses_masked.len());
    let mut run = String::new();
    for c in addresses_masked.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            push_digits(&mut out, &run);
            run.clear();
            out.push(c);
        }
    }
    push_digits(&mut out, &run);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::identity as strategies;
    use proptest::prelude::*;

    /// Builds a valid cédula text from its first nine digits.
    fn cedula_text(first_nine: [u8; 9]) -> String {
        let check = check_digit(&first_nine);
        first_nine
            .iter()
            .chain(std::iter::once(&check))
            .map(|d| char::from(b'0' + d))
            .collect()
    }

    fn cedula(text: &str) -> Cedula {
        text.parse().unwrap()
    }

    // --- Cédula -----------------------------------------------------------

    #[test]
    fn known_cedula_is_valid() {
        // Hand computation: 1*2 + 7 + 1*2 + 0 + 0 + 3 + 4*2 + 0 + (6*2-9)
        // = 2+7+2+0+0+3+8+0+3 = 25; check = (10 - 5) % 10 = 5.
        assert_eq!(check_digit(&[1, 7, 1, 0, 0, 3, 4, 0, 6]), 5);
        let c = cedula("1710034065");
        assert_eq!(c.as_str(), "1710034065");
        assert_eq!(c.province(), 17);
        assert_eq!(c.to_string(), "1710034065");
    }

    #[test]
    fn check_digit_matches_hand_computations() {
        // 0 9 2 6 6 8 7 8 5 -> 0 + 9 + 4 + 6 + (12-9) + 8 + (14-9) + 8 + (10-9)
        // = 44; check = (10 - 4) % 10 = 6.
        assert_eq!(check_digit(&[0, 9, 2, 6, 6, 8, 7, 8, 5]), 6);
        // Sum 1 -> 9.
        assert_eq!(check_digit(&[0, 1, 0, 0, 0, 0, 0, 0, 0]), 9);
        // Sum 0 -> (10 - 0) % 10 = 0.
        assert_eq!(check_digit(&[0, 0, 0, 0, 0, 0, 0, 0, 0]), 0);
        // 5*2 = 10 -> 1; sum 1 -> 9.
        assert_eq!(check_digit(&[5, 0, 0, 0, 0, 0, 0, 0, 0]), 9);
        // 9 9 ... -> 9 + 9 + 9 + 9 + 9 + 9 + 9 + 9 + 9 = 81 -> 9.
        assert_eq!(check_digit(&[9; 9]), 9);
        // 2 4 6 0 0 0 0 0 1 -> 4 + 4 + (12-9) + 0 + 0 + 0 + 0 + 0 + 2 = 13 -> 7.
        assert_eq!(check_digit(&[2, 4, 6, 0, 0, 0, 0, 0, 1]), 7);
    }

    #[test]
    fn constructed_cedulas_are_valid() {
        let prefixes: [[u8; 9]; 6] = [
            [0, 1, 0, 2, 0, 3, 0, 4, 0],
            [0, 9, 1, 2, 3, 4, 5, 6, 7],
            [1, 7, 5, 8, 9, 0, 1, 2, 3],
            [2, 4, 6, 0, 0, 0, 0, 0, 1],
            [3, 0, 0, 9, 8, 7, 6, 5, 4],
            [1, 3, 2, 2, 2, 2, 2, 2, 2],
        ];
        for prefix in prefixes {
            let text = cedula_text(prefix);
            let c: Cedula = text.parse().unwrap();
            assert_eq!(c.as_str(), text);
            assert_eq!(c.province(), prefix[0] * 10 + prefix[1]);
        }
    }

    #[test]
    fn province_boundaries() {
        let with_province = |code: u8| {
            cedula_text([code / 10, code % 10, 1, 2, 3, 4, 5, 6, 7])
                .parse::<Cedula>()
                .map(|c| c.province())
        };
        assert_eq!(
            with_province(0),
            Err(CedulaError::InvalidProvince { code: 0 })
        );
        assert_eq!(with_province(1), Ok(1));
        assert_eq!(with_province(24), Ok(24));
        for code in 25..=29 {
            assert_eq!(
                with_province(code),
                Err(CedulaError::InvalidProvince { code })
            );
        }
        assert_eq!(with_province(30), Ok(30));
        assert_eq!(
            with_province(31),
            Err(CedulaError::InvalidProvince { code: 31 })
        );
        assert_eq!(
            with_province(99),
            Err(CedulaError::InvalidProvince { code: 99 })
        );
        for code in 1..=24 {
            assert_eq!(with_province(code), Ok(code));
        }
    }

    #[test]
    fn third_digit_rules() {
        for third in 0..=6 {
            let text = cedula_text([1, 7, third, 0, 0, 3, 4, 0, 6]);
            assert!(text.parse::<Cedula>().is_ok(), "{text}");
        }
        for third in 7..=9 {
            let text = cedula_text([1, 7, third, 0, 0, 3, 4, 0, 6]);
            assert_eq!(
                text.parse::<Cedula>(),
                Err(CedulaError::InvalidThirdDigit { digit: third })
            );
        }
    }

    #[test]
    fn every_wrong_check_digit_is_rejected() {
        for found in 0..=9u8 {
            let text = format!("171003406{found}");
            let result = text.parse::<Cedula>();
            if found == 5 {
                assert!(result.is_ok());
            } else {
                assert_eq!(
                    result,
                    Err(CedulaError::CheckDigitMismatch { expected: 5, found })
                );
                assert_eq!(
                    result.unwrap_err().kind(),
                    CedulaErrorKind::CheckDigitMismatch
                );
            }
        }
    }

    #[test]
    fn separators_and_whitespace_are_accepted() {
        for text in [
            " 171003406-5 ",
            "1710 034 065",
            "17-1003-4065",
            "\t1710034065\n",
            "1 7 1 0 0 3 4 0 6 5",
        ] {
            assert_eq!(cedula(text).as_str(), "1710034065", "{text:?}");
        }
    }

    #[test]
    fn invalid_characters_are_reported_with_position() {
        assert_eq!(
            "17a0034065".parse::<Cedula>(),
            Err(CedulaError::InvalidCharacter {
                character: 'a',
                position: 3
            })
        );
        assert_eq!(
            "  1710.034065".parse::<Cedula>(),
            Err(CedulaError::InvalidCharacter {
                character: '.',
                position: 7
            })
        );
        assert_eq!(
            "1710\t034065".parse::<Cedula>(),
            Err(CedulaError::InvalidCharacter {
                character: '\t',
                position: 5
            })
        );
        assert_eq!(
            "ñ710034065".parse::<Cedula>(),
            Err(CedulaError::InvalidCharacter {
                character: 'ñ',
                position: 1
            })
        );
    }

    #[test]
    fn wrong_lengths_and_empty_input() {
        assert_eq!(
            "171003406".parse::<Cedula>(),
            Err(CedulaError::WrongLength { found: 9 })
        );
        assert_eq!(
            "17100340650".parse::<Cedula>(),
            Err(CedulaError::WrongLength { found: 11 })
        );
        for text in ["", "   ", "\t\n", " - "] {
            assert_eq!(text.parse::<Cedula>(), Err(CedulaError::Empty), "{text:?}");
        }
    }

    #[test]
    fn cedula_error_messages_name_the_rule() {
        assert_eq!(
            CedulaError::InvalidProvince { code: 5 }.to_string(),
            "invalid province code 05 in cédula (expected 01-24 or 30)"
        );
        assert!(
            CedulaError::CheckDigitMismatch {
                expected: 5,
                found: 4
            }
            .to_string()
            .contains("check digit")
        );
    }

    #[test]
    fn cedula_mask() {
        assert_eq!(cedula("1710034065").masked(), "17******65");
    }

    // --- Foreigner code ---------------------------------------------------

    #[test]
    fn foreigner_codes() {
        let code: ForeignerCode = "  ab1 ".parse().unwrap();
        assert_eq!(code.as_str(), "AB1");
        assert_eq!(code.masked(), "A**");
        assert_eq!(
            "EXT123".parse::<ForeignerCode>().unwrap().masked(),
            "E***23"
        );
        assert!("ABCDEFGHIJ0123456789".parse::<ForeignerCode>().is_ok());
        assert_eq!(
            "   ".parse::<ForeignerCode>(),
            Err(ForeignerCodeError::Empty)
        );
        assert_eq!(
            "A1".parse::<ForeignerCode>(),
            Err(ForeignerCodeError::TooShort { length: 2 })
        );
        assert_eq!(
            "ABCDEFGHIJ01234567890".parse::<ForeignerCode>(),
            Err(ForeignerCodeError::TooLong { length: 21 })
        );
        assert_eq!(
            " AB-12".parse::<ForeignerCode>(),
            Err(ForeignerCodeError::InvalidCharacter {
                character: '-',
                position: 4
            })
        );
        assert_eq!(
            "ÑAB12".parse::<ForeignerCode>(),
            Err(ForeignerCodeError::InvalidCharacter {
                character: 'Ñ',
                position: 1
            })
        );
        assert_eq!(
            "123456".parse::<ForeignerCode>(),
            Err(ForeignerCodeError::NoLetter)
        );
    }

    // --- MemberId ---------------------------------------------------------

    #[test]
    fn member_id_dispatch() {
        let id: MemberId = " 171003406-5 ".parse().unwrap();
        assert_eq!(id.kind(), MemberIdKind::Cedula);
        assert_eq!(id, MemberId::Cedula(cedula("1710034065")));
        assert_eq!(id.as_cedula(), Some(&cedula("1710034065")));
        assert_eq!(id.masked(), "17******65");

        let id: MemberId = "pas12345".parse().unwrap();
        assert_eq!(id.kind(), MemberIdKind::Foreigner);
        assert_eq!(id.as_str(), "PAS12345");
        assert_eq!(id.as_cedula(), None);
        assert_eq!(id.to_string(), "PAS12345");

        assert_eq!(
            "1710034064".parse::<MemberId>(),
            Err(MemberIdError::Cedula(CedulaError::CheckDigitMismatch {
                expected: 5,
                found: 4
            }))
        );
        assert_eq!(
            "".parse::<MemberId>(),
            Err(MemberIdError::Cedula(CedulaError::Empty))
        );
        // A letter sends the input to the foreigner-code rules.
        assert_eq!(
            "17100340a5".parse::<MemberId>().map(|id| id.kind()),
            Ok(MemberIdKind::Foreigner)
        );
        assert_eq!(
            "AB-12".parse::<MemberId>(),
            Err(MemberIdError::Foreigner(
                ForeignerCodeError::InvalidCharacter {
                    character: '-',
                    position: 3
                }
            ))
        );
        // The wrapped error is exposed as the message.
        assert_eq!(
            "171003406".parse::<MemberId>().unwrap_err().to_string(),
            "cédula must have 10 digits, found 9"
        );
    }

    #[test]
    fn member_id_kind_serde() {
        assert_eq!(
            serde_json::to_string(&MemberIdKind::Cedula).unwrap(),
            "\"cedula\""
        );
        assert_eq!(
            serde_json::from_str::<MemberIdKind>("\"foreigner\"").unwrap(),
            MemberIdKind::Foreigner
        );
    }

    // --- Email ------------------------------------------------------------

    #[test]
    fn email_accepts_and_normalises() {
        let email: Email = "  Juan.Perez@GMail.COM ".parse().unwrap();
        assert_eq!(email.as_str(), "Juan.Perez@gmail.com");
        assert_eq!(email.local_part(), "Juan.Perez");
        assert_eq!(email.domain(), "gmail.com");
        assert_eq!(email.masked(), "J***@gmail.com");
        assert!(email.matches(&"juan.perez@gmail.com".parse().unwrap()));
        assert!(!email.matches(&"juan.perez2@gmail.com".parse().unwrap()));
        assert_ne!(email, "juan.perez@gmail.com".parse().unwrap());
        assert!("a+tag@sub.example.ec".parse::<Email>().is_ok());
    }

    #[test]
    fn email_rules() {
        let parse = |s: &str| s.parse::<Email>();
        assert_eq!(parse("  "), Err(EmailError::Empty));
        assert_eq!(parse("juan.gmail.com"), Err(EmailError::MissingAt));
        assert_eq!(parse("@gmail.com"), Err(EmailError::LocalPartEmpty));
        assert_eq!(parse("juan@"), Err(EmailError::DomainEmpty));
        assert_eq!(
            parse(&format!("{}@gmail.com", "a".repeat(65))),
            Err(EmailError::LocalPartTooLong { length: 65 })
        );
        assert!(parse(&format!("{}@gmail.com", "a".repeat(64))).is_ok());
        // 64 + 1 + (62 + 1 + 62 + 1 + 60 + 4) = 255 octets.
        let long_domain = format!(
            "{}.{}.{}.com",
            "b".repeat(62),
            "c".repeat(62),
            "d".repeat(60)
        );
        assert_eq!(
            parse(&format!("{}@{long_domain}", "a".repeat(64))),
            Err(EmailError::TooLong { length: 255 })
        );
        assert!(parse(&format!("{}@{long_domain}", "a".repeat(63))).is_ok());
        assert_eq!(parse("juan@localhost"), Err(EmailError::DomainWithoutDot));
        assert_eq!(parse("juan@[127.0.0.1]"), Err(EmailError::IpAddress));
        assert_eq!(parse("juan@[IPv6:::1]"), Err(EmailError::IpAddress));
        assert_eq!(parse("juan@192.168.1.1"), Err(EmailError::IpAddress));
        assert!(matches!(
            parse("juan perez@gmail.com"),
            Err(EmailError::Syntax { .. })
        ));
        assert!(matches!(
            parse("juan@gmail..com"),
            Err(EmailError::Syntax { .. })
        ));
        assert!(matches!(
            parse("Juan <juan@gmail.com>"),
            Err(EmailError::Syntax { .. })
        ));
        assert!(matches!(
            parse("juan@-gmail.com"),
            Err(EmailError::Syntax { .. })
        ));
    }

    // --- Phones -----------------------------------------------------------

    #[test]
    fn mobile_forms() {
        for text in [
            "0991234567",
            "099 123 4567",
            "(099) 123-4567",
            "099.123.4567",
            "+593991234567",
            "+593 99 123 4567",
            "(+593) 99-123-4567",
            "593991234567",
            "00593991234567",
            " 00 593 99 123 4567 ",
        ] {
            let phone: MobilePhone = text.parse().unwrap();
            assert_eq!(phone.as_e164(), "+593991234567", "{text:?}");
            assert_eq!(phone.national(), "0991234567");
            assert_eq!(phone.masked(), "09****4567");
            assert_eq!(phone.to_string(), "+593991234567");
        }
    }

    #[test]
    fn mobile_rejections() {
        let parse = |s: &str| s.parse::<MobilePhone>();
        assert_eq!(parse(" "), Err(PhoneError::Empty));
        assert_eq!(parse("022345678"), Err(PhoneError::NotMobile));
        assert_eq!(parse("+59322345678"), Err(PhoneError::NotMobile));
        assert_eq!(
            parse("099123456"),
            Err(PhoneError::WrongLength {
                found: 8,
                expected: 9
            })
        );
        assert_eq!(
            parse("09912345678"),
            Err(PhoneError::WrongLength {
                found: 10,
                expected: 9
            })
        );
        assert_eq!(
            parse("0"),
            Err(PhoneError::WrongLength {
                found: 0,
                expected: 9
            })
        );
        assert_eq!(parse("991234567"), Err(PhoneError::MissingTrunkPrefix));
        assert_eq!(
            parse("+57991234567"),
            Err(PhoneError::UnsupportedCountryCode)
        );
        assert_eq!(
            parse("0057991234567"),
            Err(PhoneError::UnsupportedCountryCode)
        );
        assert_eq!(
            parse("099x234567"),
            Err(PhoneError::InvalidCharacter {
                character: 'x',
                position: 4
            })
        );
        assert_eq!(
            parse("099+1234567"),
            Err(PhoneError::InvalidCharacter {
                character: '+',
                position: 4
            })
        );
        assert_eq!(
            parse("++593991234567"),
            Err(PhoneError::InvalidCharacter {
                character: '+',
                position: 2
            })
        );
    }

    #[test]
    fn landline_forms_and_rejections() {
        for text in [
            "022345678",
            "02 234 5678",
            "(02) 234-5678",
            "+593 2 234 5678",
            "59322345678",
            "0059322345678",
        ] {
            let phone: Landline = text.parse().unwrap();
            assert_eq!(phone.as_e164(), "+59322345678", "{text:?}");
            assert_eq!(phone.national(), "022345678");
            assert_eq!(phone.area_code(), 2);
            assert_eq!(phone.masked(), "02***5678");
        }
        assert_eq!("07 7654321".parse::<Landline>().unwrap().area_code(), 7);
        let parse = |s: &str| s.parse::<Landline>();
        assert_eq!(parse("0991234567"), Err(PhoneError::NotLandline));
        assert_eq!(
            parse("012345678"),
            Err(PhoneError::InvalidAreaCode { digit: 1 })
        );
        assert_eq!(
            parse("082345678"),
            Err(PhoneError::InvalidAreaCode { digit: 8 })
        );
        assert_eq!(
            parse("02234567"),
            Err(PhoneError::WrongLength {
                found: 7,
                expected: 8
            })
        );
        assert_eq!(
            parse("021234567"),
            Err(PhoneError::InvalidSubscriberNumber { digit: 1 })
        );
        assert_eq!(
            parse("028234567"),
            Err(PhoneError::InvalidSubscriberNumber { digit: 8 })
        );
        assert_eq!(parse(""), Err(PhoneError::Empty));
    }

    // --- Serde ------------------------------------------------------------

    #[test]
    fn serde_round_trips_and_rejections() {
        let c = cedula("1710034065");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"1710034065\"");
        assert_eq!(serde_json::from_str::<Cedula>(&json).unwrap(), c);
        // Deserialising normalises like parsing.
        assert_eq!(
            serde_json::from_str::<Cedula>("\"171003406-5\"").unwrap(),
            c
        );
        assert!(serde_json::from_str::<Cedula>("\"1710034064\"").is_err());
        assert!(serde_json::from_str::<ForeignerCode>("\"12\"").is_err());
        assert!(serde_json::from_str::<MemberId>("\"1710034064\"").is_err());
        assert!(serde_json::from_str::<Email>("\"juan@localhost\"").is_err());
        assert!(serde_json::from_str::<MobilePhone>("\"022345678\"").is_err());
        assert!(serde_json::from_str::<Landline>("\"0991234567\"").is_err());

        let id = MemberId::Foreigner("ext123".parse().unwrap());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"EXT123\"");
        assert_eq!(serde_json::from_str::<MemberId>(&json).unwrap(), id);

        let email: Email = "Juan@Gmail.com".parse().unwrap();
        let json = serde_json::to_string(&email).unwrap();
        assert_eq!(json, "\"Juan@gmail.com\"");
        assert_eq!(serde_json::from_str::<Email>(&json).unwrap(), email);

        let phone: MobilePhone = "0991234567".parse().unwrap();
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"+593991234567\"");
        let landline: Landline = "022345678".parse().unwrap();
        assert_eq!(
            serde_json::to_string(&landline).unwrap(),
            "\"+59322345678\""
        );
    }

    // --- Debug and redaction -----------------------------------------------

    #[test]
    fn debug_is_masked() {
        assert_eq!(
            format!("{:?}", cedula("1710034065")),
            r#"Cedula("17******65")"#
        );
        assert_eq!(
            format!("{:?}", "ext12345".parse::<ForeignerCode>().unwrap()),
            r#"ForeignerCode("E*****45")"#
        );
        assert_eq!(
            format!("{:?}", "Juan.Perez@gmail.com".parse::<Email>().unwrap()),
            r#"Email("J***@gmail.com")"#
        );
        assert_eq!(
            format!("{:?}", "0991234567".parse::<MobilePhone>().unwrap()),
            r#"MobilePhone("09****4567")"#
        );
        assert_eq!(
            format!("{:?}", "022345678".parse::<Landline>().unwrap()),
            r#"Landline("02***5678")"#
        );
        assert_eq!(
            format!("{:#?}", MemberId::from(cedula("1710034065"))),
            "Cedula(\n    Cedula(\n        \"17******65\",\n    ),\n)"
        );
    }

    #[test]
    fn redaction_of_free_text() {
        let r = redact_personal_data;
        assert_eq!(
            r("550 5.1.1 <ana.quishpe@example.ec>: Recipient address rejected"),
            "550 5.1.1 <a***@example.ec>: Recipient address rejected"
        );
        assert_eq!(
            r("to=ana@example.ec, from=<x+tag@isspol.gob.ec>."),
            "t***@example.ec, from=<x***@isspol.gob.ec>."
        );
        assert_eq!(r("user JOSÉ@correo.ec."), "user J***@correo.ec.");
        assert_eq!(r("1710034065@example.ec"), "1***@example.ec");
        // Cédulas and phone numbers, whatever surrounds them.
        assert_eq!(
            r("cédula 1710034065 rechazada"),
            "cédula 17******65 rechazada"
        );
        assert_eq!(r("id=1710034065;"), "id=17******65;");
        assert_eq!(r("+593991234567"), "+59********67");
        assert_eq!(r("(022345678)"), "(02*****78)");
        // What is not personal data stays.
        for kept in [
            "SMTP 451 from 127.0.0.1: 4.3.0 try again at 12345678",
            "nobody@ and @nobody and @",
            "version conflict for member 17******65: expected 3, found 4",
            "",
        ] {
            assert_eq!(r(kept), kept);
        }
        // Idempotent.
        let once = r("a <ana@example.ec> 1710034065");
        assert_eq!(r(&once), once);
    }

    fn round_trip<T>(value: &T) -> T
    where
        T: Serialize + serde::de::DeserializeOwned,
    {
        serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
    }

    proptest! {
        #[test]
        fn valid_cedula_text_parses_to_canonical((text, expected) in strategies::valid_cedula_text()) {
            let parsed: Cedula = text.parse().unwrap();
            prop_assert_eq!(&parsed, &expected);
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            prop_assert_eq!(parsed.as_str(), digits.as_str());
            prop_assert_eq!(parsed.as_str().parse::<Cedula>().unwrap(), parsed.clone());
            prop_assert_eq!(parsed.to_string().parse::<Cedula>().unwrap(), parsed);
        }

        #[test]
        fn invalid_cedula_fails_with_its_kind((text, kind) in strategies::invalid_cedula()) {
            let error = text.parse::<Cedula>().unwrap_err();
            prop_assert_eq!(error.kind(), kind, "{:?} -> {}", text, error);
        }

        #[test]
        fn valid_cedula_is_valid(c in strategies::valid_cedula()) {
            let p = c.province();
            prop_assert!((1..=24).contains(&p) || p == 30);
            prop_assert_eq!(c.as_str().len(), 10);
            prop_assert_eq!(MemberId::from(c.clone()).kind(), MemberIdKind::Cedula);
        }

        #[test]
        fn masks_never_contain_the_full_value(
            c in strategies::valid_cedula(),
            f in strategies::foreigner_code(),
            id in strategies::member_id(),
            e in strategies::email(),
            m in strategies::mobile_phone(),
            l in strategies::landline(),
        ) {
            prop_assert!(!c.masked().contains(c.as_str()));
            prop_assert_eq!(c.masked().len(), 10);
            prop_assert!(!f.masked().contains(f.as_str()));
            prop_assert!(!id.masked().contains(id.as_str()));
            prop_assert!(!e.masked().contains(e.as_str()));
            prop_assert!(e.masked().ends_with(e.domain()));
            prop_assert!(!m.masked().contains(m.as_e164()));
            prop_assert!(!m.masked().contains(&m.national()));
            prop_assert!(!l.masked().contains(l.as_e164()));
            prop_assert!(!l.masked().contains(&l.national()));
        }

        #[test]
        fn redaction_hides_every_id_and_address(
            c in strategies::valid_cedula(),
            e in strategies::email(),
            m in strategies::mobile_phone(),
            l in strategies::landline(),
            before in "\\PC{0,12}",
            after in "\\PC{0,12}",
        ) {
            let text = format!(
                "{before} <{}> {} {}{after} {} {}",
                e.as_str(),
                c.as_str(),
                m.as_e164(),
                l.national(),
                m.national()
            );
            let redacted = redact_personal_data(&text);
            prop_assert!(!redacted.contains(e.as_str()), "{}", redacted);
            let whole_local_part = format!("{}@", e.local_part());
            prop_assert!(!redacted.contains(&whole_local_part), "{}", redacted);
            prop_assert!(!redacted.contains(c.as_str()), "{}", redacted);
            prop_assert!(!redacted.contains(&m.as_e164()[1..]), "{}", redacted);
            prop_assert!(!redacted.contains(&m.national()), "{}", redacted);
            prop_assert!(!redacted.contains(&l.national()), "{}", redacted);
            prop_assert_eq!(redact_personal_data(&redacted), redacted);
        }

        #[test]
        fn redaction_never_panics_and_keeps_text_without_digits_or_at(s in "\\PC{0,60}") {
            let redacted = redact_personal_data(&s);
            if !s.contains('@') && !s.chars().any(|c| c.is_ascii_digit()) {
                prop_assert_eq!(redacted, s);
            }
        }

        #[test]
        fn serde_round_trips(
            c in strategies::valid_cedula(),
            f in strategies::foreigner_code(),
            id in strategies::member_id(),
            e in strategies::email(),
            m in strategies::mobile_phone(),
            l in strategies::landline(),
        ) {
            prop_assert_eq!(&round_trip(&c), &c);
            prop_assert_eq!(&round_trip(&f), &f);
            prop_assert_eq!(&round_trip(&id), &id);
            prop_assert_eq!(&round_trip(&id.kind()), &id.kind());
            prop_assert_eq!(&round_trip(&e), &e);
            prop_assert_eq!(&round_trip(&m), &m);
            prop_assert_eq!(&round_trip(&l), &l);
        }

        #[test]
        fn member_id_parses_its_canonical_form(id in strategies::member_id()) {
            prop_assert_eq!(id.as_str().parse::<MemberId>().unwrap(), id.clone());
            prop_assert_eq!(String::from(id.clone()).parse::<MemberId>().unwrap(), id);
        }

        #[test]
        fn mobile_text_parses((text, expected) in strategies::mobile_phone_text()) {
            let phone: MobilePhone = text.parse().unwrap();
            prop_assert_eq!(&phone, &expected);
            prop_assert_eq!(phone.national().parse::<MobilePhone>().unwrap(), phone.clone());
            prop_assert!(phone.as_e164().parse::<Landline>().is_err());
        }

        #[test]
        fn landline_is_not_mobile(l in strategies::landline()) {
            prop_assert_eq!(l.as_e164().parse::<MobilePhone>(), Err(PhoneError::NotMobile));
            prop_assert_eq!(l.national().parse::<Landline>().unwrap(), l);
        }

        #[test]
        fn email_parses_canonical(e in strategies::email()) {
            prop_assert_eq!(e.as_str().parse::<Email>().unwrap(), e.clone());
            prop_assert!(e.matches(&e.as_str().to_uppercase().parse::<Email>().unwrap()));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,30}") {
            let _ = s.parse::<Cedula>();
            let _ = s.parse::<ForeignerCode>();
            let _ = s.parse::<MemberId>();
            let _ = s.parse::<Email>();
            let _ = s.parse::<MobilePhone>();
            let _ = s.parse::<Landline>();
        }
    }
}
