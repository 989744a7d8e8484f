//! Cryptographic building blocks: password hashing, one-time secrets and keyed digests.
//!
//! * **Passwords** are hashed with Argon2id (version 0x13) into self-describing
//!   [PHC strings](https://github.com/P-H-C/phc-string-format/blob/master/phc-sf-spec.md)
//!   ([`PasswordHash`]). Verification always uses the parameters stored in the hash,
//!   so raising [`HashParams`] never locks anybody out; [`needs_rehash`] tells the
//!   caller when to re-hash after a successful login.
//! * **Legacy hashes** imported from the previous portals (bcrypt, Django
//!   `pbkdf2_sha256`, salted SHA-256; see [`PasswordHash`]) verify through the same
//!   [`verify_password`], always [`needs_rehash`], and are replaced by Argon2id on
//!   the first successful login.
//! * **Unknown identifiers** are answered with [`DummyHash::verify`], so a login for
//!   an account that does not exist costs the same Argon2 work as one that does.
//! * **Link tokens** ([`Token`]: 256 random bits, base64url) and **numeric codes**
//!   ([`NumericCode`]: 4 to 10 uniform decimal digits) are the secrets sent by e-mail.
//!   They are never stored: the store keeps a keyed [`Digest`] computed with the
//!   server's [`DigestKey`], and verification recomputes the digest and compares
//!   in constant time.
//!
//! Randomness is always supplied by the caller as `&mut R` where
//! `R: rand::CryptoRng`: tests pass a seeded `rand::rngs::StdRng`, the service
//! passes `rand::rng()` (or `rand::rngs::OsRng.unwrap_err()`).
//!
//! No secret (password, token, code, key, salt or hash output) is ever written by a
//! `Debug`/`Display` implementation, by serde, or into an error message.

use std::fmt;
use std::hash::{Hash, Hasher};

use argon2::password_hash::{
    self as phc, Decimal, PasswordHash as PhcHash, PasswordHasher as _, PasswordVerifier as _,
    SaltString,
};
use argon2::{Algorithm, Argon2, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use rand::{CryptoRng, Rng as _};
use secrecy::{ExposeSecret as _, ExposeSecretMut as _, SecretBox, SecretString};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize as _, Zeroizing};

/// Errors of the cryptographic layer.
///
/// Messages never contain a password, token, code, key or hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Argon2 parameters outside the limits accepted by the `argon2` crate.
    #[error("invalid Argon2 parameters: {0}")]
    InvalidParams(&'static str),
    /// The stored password hash is not a well-formed PHC string, or its
    /// parameters, salt or output are unusable.
    #[error("malformed password hash")]
    MalformedHash,
    /// The stored password hash uses an algorithm or version this crate cannot verify
    /// (anything but Argon2 `argon2id`/`argon2i`/`argon2d`, versions 0x10 and 0x13,
    /// and the legacy formats listed on [`PasswordHash`]; e.g. bcrypt `$2x$`).
    #[error("unsupported password-hash algorithm or version")]
    UnsupportedAlgorithm,
    /// A legacy password hash carries a work factor outside the range this crate
    /// will spend on one login (bcrypt cost `4..=20`, PBKDF2 iterations
    /// `1..=10_000_000`): a stored value must not be able to burn minutes of CPU.
    #[error("{algorithm} work factor {found} is outside the accepted range {min}..={max}")]
    CostOutOfRange {
        /// The legacy algorithm, as returned by [`PasswordHash::algorithm`].
        algorithm: &'static str,
        /// The work factor found in the hash (saturated at `u64::MAX`).
        found: u64,
        /// Smallest accepted work factor.
        min: u64,
        /// Largest accepted work factor.
        max: u64,
    },
    /// A stored password hash asks for more work than the configured
    /// [`HashCostBounds`] allow. Refused before any memory is allocated or any
    /// iteration is run; names the algorithm and the parameter, never the hash.
    #[error("stored {algorithm} hash refused: {parameter} = {found} is above the bound {max}")]
    CostAboveBound {
        /// The algorithm, as returned by [`PasswordHash::algorithm`].
        algorithm: &'static str,
        /// The parameter over its bound: `"m_cost_kib"`, `"t_cost"`, `"p_cost"`,
        /// `"cost"` (bcrypt) or `"iterations"` (PBKDF2).
        parameter: &'static str,
        /// The value stored in the hash.
        found: u64,
        /// The bound in force.
        max: u64,
    },
    /// The Argon2 computation itself failed. The message comes from the hashing
    /// library and describes a violated constraint, never the input.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A [`DigestKey`] was built from too little key material.
    #[error("digest key too short: at least {min} bytes are required, {found} were given")]
    KeyTooShort {
        /// Minimum length in bytes.
        min: usize,
        /// Length supplied, in bytes.
        found: usize,
    },
    /// A numeric code length outside `4..=10` digits was requested.
    #[error("numeric codes must have between 4 and 10 digits, not {digits}")]
    InvalidCodeLength {
        /// The rejected number of digits.
        digits: u8,
    },
    /// A [`Digest`] was not exactly 64 hexadecimal characters.
    #[error("malformed digest: expected 64 hexadecimal characters")]
    MalformedDigest,
    /// A token or code string was rejected.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Why a [`Token`] or [`NumericCode`] string was rejected.
///
/// The variants say which rule failed, never what the input was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Wrong number of characters (after trimming, and for codes after removing spaces).
    #[error("expected {expected} characters, found {found}")]
    Length {
        /// Required number of characters.
        expected: usize,
        /// Number of characters supplied.
        found: usize,
    },
    /// A character outside the allowed alphabet (base64url for tokens, ASCII
    /// digits for codes).
    #[error("contains a character outside the allowed alphabet")]
    InvalidCharacter,
    /// The token is not the canonical base64url encoding of 32 bytes (its last
    /// character carries non-zero padding bits).
    #[error("not a canonical encoding of a 256-bit token")]
    NonCanonical,
    /// A code length outside `4..=10` digits was requested when parsing.
    #[error("numeric codes must have between 4 and 10 digits, not {digits}")]
    UnsupportedDigits {
        /// The rejected number of digits.
        digits: u8,
    },
}

// ---------------------------------------------------------------------------
// Argon2 parameters
// ---------------------------------------------------------------------------

/// Argon2id cost parameters.
///
/// Production code should use [`HashParams::OWASP`] (the [`Default`]) or something
/// stronger. Deserialisation validates the values with [`HashParams::validate`] and
/// rejects unknown fields.
///
/// Besides the `argon2` crate's own limits, the parameters are capped at
/// [`MAX_M_COST_KIB`](HashParams::MAX_M_COST_KIB) (1 GiB),
/// [`MAX_T_COST`](HashParams::MAX_T_COST) (100 passes) and
/// [`MAX_P_COST`](HashParams::MAX_P_COST) (64 lanes), so that no configuration can
/// make one hash allocate more than 1 GiB (Argon2 allocates `m_cost_kib` KiB and
/// aborts the process when the allocation fails).
///
/// ```
/// use afiliado::crypto::HashParams;
///
/// let params: HashParams =
///     serde_json::from_str(r#"{"m_cost_kib":19456,"t_cost":2,"p_cost":1}"#).unwrap();
/// assert_eq!(params, HashParams::OWASP);
/// assert!(HashParams { m_cost_kib: 4, t_cost: 1, p_cost: 1 }.validate().is_err());
/// // 4 GiB, or four billion passes, are refused (also when deserialising).
/// assert!(HashParams { m_cost_kib: u32::MAX, t_cost: 2, p_cost: 1 }.validate().is_err());
/// assert!(serde_json::from_str::<HashParams>(
///     r#"{"m_cost_kib":19456,"t_cost":4000000000,"p_cost":1}"#
/// ).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "HashParamsRepr")]
pub struct HashParams {
    /// Memory cost in KiB (`m`). At least `8 * p_cost`.
    pub m_cost_kib: u32,
    /// Number of passes (`t`). At least 1.
    pub t_cost: u32,
    /// Degree of parallelism (`p`). Between 1 and 2²⁴ − 1.
    pub p_cost: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HashParamsRepr {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
}

impl TryFrom<HashParamsRepr> for HashParams {
    type Error = CryptoError;

    fn try_from(r: HashParamsRepr) -> Result<Self, Self::Error> {
        let params = HashParams {
            m_cost_kib: r.m_cost_kib,
            t_cost: r.t_cost,
            p_cost: r.p_cost,
        };
        params.validate()?;
        Ok(params)
    }
}

impl HashParams {
    /// Largest accepted memory cost: 1 GiB (1 048 576 KiB).
    pub const MAX_M_COST_KIB: u32 = 1_048_576;
    /// Largest accepted number of passes.
    pub const MAX_T_COST: u32 = 100;
    /// Largest accepted degree of parallelism.
    pub const MAX_P_COST: u32 = 64;

    /// The OWASP Password Storage Cheat Sheet minimum for Argon2id:
    /// 19 MiB (19456 KiB), 2 iterations, parallelism 1.
    pub const OWASP: HashParams = HashParams {
        m_cost_kib: 19_456,
        t_cost: 2,
        p_cost: 1,
    };

    /// The cheapest parameters Argon2 accepts (8 KiB, 1 pass, 1 lane).
    ///
    /// **Only for tests.** Hashes made with these parameters offer essentially no
    /// resistance to offline guessing. The `danger_` prefix is there so that any
    /// use outside test code stands out in review.
    #[must_use]
    pub const fn danger_insecure_for_tests() -> HashParams {
        HashParams {
            m_cost_kib: argon2::Params::MIN_M_COST,
            t_cost: argon2::Params::MIN_T_COST,
            p_cost: argon2::Params::MIN_P_COST,
        }
    }

    /// Checks the parameters against the limits of `argon2::Params::new` and the
    /// ceilings [`MAX_M_COST_KIB`](Self::MAX_M_COST_KIB),
    /// [`MAX_T_COST`](Self::MAX_T_COST) and [`MAX_P_COST`](Self::MAX_P_COST).
    ///
    /// # Errors
    ///
    /// [`CryptoError::InvalidParams`] naming the violated limit.
    pub fn validate(&self) -> Result<(), CryptoError> {
        self.to_argon2().map(|_| ())
    }

    fn to_argon2(self) -> Result<argon2::Params, CryptoError> {
        // Checked first: `argon2::Params::new` computes `p_cost * 8`, which
        // overflows for huge `p_cost`, and accepts any `m_cost` up to 4 TiB.
        if self.m_cost_kib > Self::MAX_M_COST_KIB {
            return Err(CryptoError::InvalidParams(
                "m_cost_kib must be at most 1048576 (1 GiB)",
            ));
        }
        if self.t_cost > Self::MAX_T_COST {
            return Err(CryptoError::InvalidParams("t_cost must be at most 100"));
        }
        if self.p_cost > Self::MAX_P_COST {
            return Err(CryptoError::InvalidParams("p_cost must be at most 64"));
        }
        argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None).map_err(|e| {
            CryptoError::InvalidParams(match e {
                argon2::Error::MemoryTooLittle => {
                    "m_cost_kib must be at least 8 and at least 8 * p_cost"
                }
                argon2::Error::MemoryTooMuch => "m_cost_kib is too large",
                argon2::Error::TimeTooSmall => "t_cost must be at least 1",
                argon2::Error::ThreadsTooFew => "p_cost must be at least 1",
                argon2::Error::ThreadsTooMany => "p_cost must be at most 64",
                _ => "rejected by argon2",
            })
        })
    }
}

impl Default for HashParams {
    /// [`HashParams::OWASP`].
    fn default() -> Self {
        HashParams::OWASP
    }
}

// ---------------------------------------------------------------------------
// Bounds on stored hashes
// ---------------------------------------------------------------------------

/// The most work a *stored* hash may ask for when it is verified.
///
/// Verification uses the parameters written in the hash, so whoever can edit a stored
/// hash (a tampered row, a bad import) chooses the cost of the next login for that
/// account: `m=4294967295` would make Argon2 try to allocate 4 TiB and abort the process,
/// a PBKDF2 count of ten million burns a minute of CPU. [`HashCostBounds::check`] (and
/// [`verify_password_bounded`]) refuse such a hash with
/// [`CryptoError::CostAboveBound`] before any memory is allocated or any iteration run.
///
/// [`HashCostBounds::for_params`] derives the default from the parameters new hashes are
/// made with: four times their Argon2 `m`, `t` and `p` (capped at the [`HashParams`]
/// ceilings), bcrypt cost [`DEFAULT_BCRYPT_COST`](Self::DEFAULT_BCRYPT_COST) and
/// [`DEFAULT_PBKDF2_ITERATIONS`](Self::DEFAULT_PBKDF2_ITERATIONS) PBKDF2 iterations.
/// Salted SHA-256 has no work factor and is never refused here.
///
/// ```
/// use afiliado::crypto::{CryptoError, HashCostBounds, HashParams, PasswordHash};
///
/// let bounds = HashCostBounds::for_params(&HashParams::OWASP);
/// assert_eq!(bounds.argon2_m_cost_kib, 4 * 19_456);
/// let tampered = PasswordHash::parse(
///     "$argon2id$v=19$m=4294967295,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE",
/// )?;
/// assert_eq!(
///     bounds.check(&tampered),
///     Err(CryptoError::CostAboveBound {
///         algorithm: "argon2id",
///         parameter: "m_cost_kib",
///         found: 4_294_967_295,
///         max: 77_824,
///     })
/// );
/// # Ok::<(), CryptoError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HashCostBounds {
    /// Largest Argon2 memory cost accepted in a stored hash, in KiB.
    pub argon2_m_cost_kib: u32,
    /// Largest Argon2 number of passes accepted in a stored hash.
    pub argon2_t_cost: u32,
    /// Largest Argon2 degree of parallelism accepted in a stored hash.
    pub argon2_p_cost: u32,
    /// Largest bcrypt cost accepted (at most 20, the largest that parses at all).
    pub bcrypt_cost: u32,
    /// Largest PBKDF2 iteration count accepted (at most 10 000 000, the largest that
    /// parses at all).
    pub pbkdf2_iterations: u32,
}

impl HashCostBounds {
    /// How many times the configured Argon2 `m`, `t` and `p` a stored hash may ask for.
    pub const ARGON2_FACTOR: u32 = 4;
    /// Default bcrypt bound: cost 14 (2¹⁴ key expansions, about a second of CPU), four
    /// times the work of the common cost 12.
    pub const DEFAULT_BCRYPT_COST: u32 = 14;
    /// Default PBKDF2 bound: 2 000 000 iterations, twice Django 5.2's default.
    pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 2_000_000;

    /// The default bounds for a service whose new hashes use `params`.
    #[must_use]
    pub fn for_params(params: &HashParams) -> Self {
        let times = |v: u32, max: u32| v.saturating_mul(Self::ARGON2_FACTOR).min(max);
        Self {
            argon2_m_cost_kib: times(params.m_cost_kib, HashParams::MAX_M_COST_KIB),
            argon2_t_cost: times(params.t_cost, HashParams::MAX_T_COST),
            argon2_p_cost: times(params.p_cost, HashParams::MAX_P_COST),
            bcrypt_cost: Self::DEFAULT_BCRYPT_COST,
            pbkdf2_iterations: Self::DEFAULT_PBKDF2_ITERATIONS,
        }
    }

    /// Checks the bounds themselves: Argon2 bounds at most the [`HashParams`] ceilings,
    /// bcrypt cost in `4..=20`, PBKDF2 iterations in `1..=10_000_000`, and every bound at
    /// least 1.
    ///
    /// # Errors
    ///
    /// [`CryptoError::InvalidParams`] naming the field.
    pub fn validate(&self) -> Result<(), CryptoError> {
        let rules: [(u32, u32, u32, &'static str); 5] = [
            (
                self.argon2_m_cost_kib,
                argon2::Params::MIN_M_COST,
                HashParams::MAX_M_COST_KIB,
                "argon2_m_cost_kib must be between 8 and 1048576",
            ),
            (
                self.argon2_t_cost,
                1,
                HashParams::MAX_T_COST,
                "argon2_t_cost must be between 1 and 100",
            ),
            (
                self.argon2_p_cost,
                1,
                HashParams::MAX_P_COST,
                "argon2_p_cost must be between 1 and 64",
            ),
            (
                self.bcrypt_cost,
                BCRYPT_MIN_COST,
                BCRYPT_MAX_COST,
                "bcrypt_cost must be between 4 and 20",
            ),
            (
                self.pbkdf2_iterations,
                1,
                PBKDF2_MAX_ITERATIONS,
                "pbkdf2_iterations must be between 1 and 10000000",
            ),
        ];
        for (value, min, max, message) in rules {
            if !(min..=max).contains(&value) {
                return Err(CryptoError::InvalidParams(message));
            }
        }
        Ok(())
    }

    /// Whether new hashes made with `params` would pass these bounds.
    #[must_use]
    pub fn admits(&self, params: &HashParams) -> bool {
        params.m_cost_kib <= self.argon2_m_cost_kib
            && params.t_cost <= self.argon2_t_cost
            && params.p_cost <= self.argon2_p_cost
    }

    /// Refuses `hash` if it asks for more work than these bounds. Reads only the
    /// parameters: nothing is allocated and nothing is computed.
    ///
    /// Hashes this crate cannot verify at all (other PHC algorithms, malformed strings)
    /// pass: [`verify_password`] refuses them without doing any work.
    ///
    /// # Errors
    ///
    /// [`CryptoError::CostAboveBound`] naming the algorithm and the parameter.
    pub fn check(&self, hash: &PasswordHash) -> Result<(), CryptoError> {
        let above = |algorithm: &'static str, parameter: &'static str, found: u32, max: u32| {
            if found > max {
                Err(CryptoError::CostAboveBound {
                    algorithm,
                    parameter,
                    found: u64::from(found),
                    max: u64::from(max),
                })
            } else {
                Ok(())
            }
        };
        match Legacy::parse(hash.as_str()) {
            Some(Ok(Legacy::Bcrypt { cost, .. })) => {
                return above("bcrypt", "cost", cost, self.bcrypt_cost);
            }
            Some(Ok(Legacy::Pbkdf2Sha256 { iterations, .. })) => {
                return above(
                    "pbkdf2_sha256",
                    "iterations",
                    iterations,
                    self.pbkdf2_iterations,
                );
            }
            Some(_) => return Ok(()),
            None => {}
        }
        let Ok(parsed) = PhcHash::new(hash.as_str()) else {
            return Ok(());
        };
        let Ok(setup) = Argon2Setup::from_phc(&parsed) else {
            return Ok(());
        };
        let algorithm = match setup.algorithm {
            Algorithm::Argon2d => "argon2d",
            Algorithm::Argon2i => "argon2i",
            Algorithm::Argon2id => "argon2id",
        };
        let p = &setup.params;
        above(algorithm, "m_cost_kib", p.m_cost(), self.argon2_m_cost_kib)?;
        above(algorithm, "t_cost", p.t_cost(), self.argon2_t_cost)?;
        above(algorithm, "p_cost", p.p_cost(), self.argon2_p_cost)
    }
}

impl Default for HashCostBounds {
    /// [`HashCostBounds::for_params`]`(&HashParams::OWASP)`.
    fn default() -> Self {
        Self::for_params(&HashParams::OWASP)
    }
}

// ---------------------------------------------------------------------------
// Password hashes
// ---------------------------------------------------------------------------

/// Salt length used by [`hash_password`], in bytes.
const SALT_LEN: usize = 16;
/// Argon2 output length used by [`hash_password`], in bytes.
const OUTPUT_LEN: usize = argon2::Params::DEFAULT_OUTPUT_LEN;

/// A password hash in PHC string format, e.g.
/// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
///
/// Construction ([`PasswordHash::parse`], [`FromStr`](std::str::FromStr),
/// `TryFrom<String>`, serde) validates the PHC syntax and requires a salt and an
/// output; for Argon2 hashes it also validates the parameters, version and salt.
/// Hashes of other PHC algorithms (e.g. `$scrypt$`) are accepted (so the record
/// still loads) but [`verify_password`] rejects them with
/// [`CryptoError::UnsupportedAlgorithm`].
///
/// # Legacy formats
///
/// Hashes exported by the previous portals are accepted too, so imported accounts
/// keep their password. [`verify_password`] verifies them, [`needs_rehash`] is always
/// true for them and [`PasswordHash::is_legacy`] tells them apart:
///
/// | [`algorithm`](PasswordHash::algorithm) | Format |
/// |---|---|
/// | `"bcrypt"` | `$2a$`, `$2b$` or `$2y$`, a two-digit cost in `04..=20`, `$`, then 53 characters of bcrypt base64 (22 of salt, 31 of output). Passwords are truncated to 72 bytes, as bcrypt always did. `$2$` and `$2x$` are refused. |
/// | `"pbkdf2_sha256"` | Django's `pbkdf2_sha256$<iterations>$<salt>$<hash>`: decimal iterations in `1..=10_000_000`; the salt used as its UTF-8 bytes; the hash the standard (padded) base64 of the 32-byte PBKDF2-HMAC-SHA-256 output. |
/// | `"sha256_salted"` | `sha256$<salt>$<hex>`: `<hex>` is the 64 hexadecimal digits (either case) of `SHA-256(salt ‖ password)`, the salt used as its bytes. |
///
/// Legacy salts are 1 to 128 printable ASCII characters other than `$`. Work
/// factors outside the ranges above are refused with [`CryptoError::CostOutOfRange`]
/// (at parse and again before verifying). Legacy hashes are compared in constant
/// time, but cost what their format costs, not what Argon2 costs.
///
/// ```
/// use afiliado::crypto::{needs_rehash, verify_password, HashParams, PasswordHash};
///
/// // RFC 7914's PBKDF2-HMAC-SHA-256 vector (P = "password", S = "salt", c = 1).
/// let h = PasswordHash::parse(
///     "pbkdf2_sha256$1$salt$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=",
/// )?;
/// assert_eq!(h.algorithm(), "pbkdf2_sha256");
/// assert!(h.is_legacy());
/// assert!(verify_password(b"password", &h)?);
/// assert!(needs_rehash(&h, &HashParams::OWASP));
/// assert_eq!(format!("{h:?}"), r#"PasswordHash { alg: "pbkdf2_sha256", params: "iterations=1" }"#);
/// # Ok::<(), afiliado::crypto::CryptoError>(())
/// ```
///
/// Serde represents it as the plain string; use [`PasswordHash::as_str`] for
/// storage. `Debug` shows only the algorithm and parameters, never salt or output.
/// Equality is constant time.
#[derive(Clone)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Parses and validates a stored PHC string or legacy hash (see the
    /// [legacy formats](PasswordHash#legacy-formats)).
    ///
    /// # Errors
    ///
    /// [`CryptoError::MalformedHash`] for invalid PHC syntax, a missing salt or
    /// output, unusable Argon2 parameters or a malformed legacy hash;
    /// [`CryptoError::UnsupportedAlgorithm`] for an Argon2 hash with an unknown
    /// version or a bcrypt `$2$`/`$2x$` hash; [`CryptoError::CostOutOfRange`] for a
    /// legacy hash with an absurd work factor.
    pub fn parse(s: &str) -> Result<Self, CryptoError> {
        if let Some(legacy) = Legacy::parse(s) {
            legacy?;
            return Ok(PasswordHash(s.to_owned()));
        }
        let parsed = PhcHash::new(s).map_err(|_| CryptoError::MalformedHash)?;
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err(CryptoError::MalformedHash);
        }
        if Algorithm::try_from(parsed.algorithm).is_ok() {
            Argon2Setup::from_phc(&parsed)?;
        }
        Ok(PasswordHash(s.to_owned()))
    }

    /// The PHC string, for storage.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the hash and returns the PHC string.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }

    /// The PHC algorithm identifier, e.g. `"argon2id"`, or for a legacy hash
    /// `"bcrypt"`, `"pbkdf2_sha256"` or `"sha256_salted"`.
    #[must_use]
    pub fn algorithm(&self) -> &str {
        if let Some(kind) = LegacyKind::detect(&self.0) {
            return kind.name();
        }
        // A validated PHC string is `$<id>[$...]`.
        self.0.split('$').nth(1).unwrap_or("")
    }

    /// Whether this is one of the [legacy formats](PasswordHash#legacy-formats)
    /// imported from a previous portal (always to be re-hashed after a successful
    /// login).
    #[must_use]
    pub fn is_legacy(&self) -> bool {
        LegacyKind::detect(&self.0).is_some()
    }

    /// The Argon2 cost parameters stored in the hash, or `None` if it is not an
    /// Argon2 hash.
    #[must_use]
    pub fn params(&self) -> Option<HashParams> {
        let parsed = PhcHash::new(&self.0).ok()?;
        let setup = Argon2Setup::from_phc(&parsed).ok()?;
        Some(HashParams {
            m_cost_kib: setup.params.m_cost(),
            t_cost: setup.params.t_cost(),
            p_cost: setup.params.p_cost(),
        })
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = match Legacy::parse(&self.0) {
            Some(legacy) => legacy.map(|l| l.public_params()),
            None => PhcHash::new(&self.0)
                .map(|p| p.params.to_string())
                .map_err(|_| CryptoError::MalformedHash),
        };
        let mut d = f.debug_struct("PasswordHash");
        d.field("alg", &self.algorithm());
        match &params {
            Ok(p) => d.field("params", &p.as_str()),
            Err(_) => d.field("params", &"?"),
        };
        d.finish()
    }
}

impl PartialEq for PasswordHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for PasswordHash {}

impl std::str::FromStr for PasswordHash {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PasswordHash::parse(s)
    }
}

impl TryFrom<String> for PasswordHash {
    type Error = CryptoError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        PasswordHash::parse(&s)
    }
}

impl TryFrom<&str> for PasswordHash {
    type Error = CryptoError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        PasswordHash::parse(s)
    }
}

impl Serialize for PasswordHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PasswordHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PasswordHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a PHC password-hash string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PasswordHash, E> {
                PasswordHash::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// Everything needed to recompute an Argon2 hash, extracted from a PHC string.
struct Argon2Setup {
    algorithm: Algorithm,
    version: Version,
    params: argon2::Params,
    salt_len: usize,
}

impl Argon2Setup {
    fn from_phc(parsed: &PhcHash<'_>) -> Result<Self, CryptoError> {
        let algorithm =
            Algorithm::try_from(parsed.algorithm).map_err(|_| CryptoError::UnsupportedAlgorithm)?;
        // As in the reference implementation, a missing `v=` means version 0x10.
        let version = match parsed.version {
            None => Version::V0x10,
            Some(v) => Version::try_from(v).map_err(|_| CryptoError::UnsupportedAlgorithm)?,
        };
        // `argon2::Params::new` computes `p * 8` and would overflow on huge `p`.
        if let Some(p) = parsed.params.get_decimal("p") {
            if p > argon2::Params::MAX_P_COST {
                return Err(CryptoError::MalformedHash);
            }
        }
        for key in ["m", "t", "p"] {
            if parsed.params.get_decimal(key).is_none() {
                return Err(CryptoError::MalformedHash);
            }
        }
        let params = argon2::Params::try_from(parsed).map_err(|_| CryptoError::MalformedHash)?;
        let salt = parsed.salt.ok_or(CryptoError::MalformedHash)?;
        let mut buf = [0u8; 64];
        let salt_len = salt
            .decode_b64(&mut buf)
            .map_err(|_| CryptoError::MalformedHash)?
            .len();
        if salt_len < argon2::MIN_SALT_LEN {
            return Err(CryptoError::MalformedHash);
        }
        Ok(Argon2Setup {
            algorithm,
            version,
            params,
            salt_len,
        })
    }
}

// ---------------------------------------------------------------------------
// Legacy password hashes
// ---------------------------------------------------------------------------

/// Prefix of Django's PBKDF2-HMAC-SHA-256 hashes.
const PBKDF2_PREFIX: &str = "pbkdf2_sha256$";
/// Prefix of the previous portal's salted SHA-256 hashes.
const SHA256_PREFIX: &str = "sha256$";
/// bcrypt prefixes this crate verifies.
const BCRYPT_PREFIXES: [&str; 3] = ["$2a$", "$2b$", "$2y$"];
/// bcrypt prefixes that are recognised but refused: `$2$` predates the `$2a$`
/// fixes and `$2x$` marks hashes made by the buggy crypt_blowfish of 2011.
const BCRYPT_REFUSED_PREFIXES: [&str; 2] = ["$2$", "$2x$"];
/// Cheapest bcrypt cost (the format's own minimum).
const BCRYPT_MIN_COST: u32 = 4;
/// Dearest bcrypt cost accepted: 2²⁰ key expansions, about a minute of CPU.
const BCRYPT_MAX_COST: u32 = 20;
/// Length of a bcrypt hash after the cost: 22 characters of salt, 31 of output.
const BCRYPT_BODY_LEN: usize = 53;
/// Characters of bcrypt base64 encoding the salt.
const BCRYPT_SALT_CHARS: usize = 22;
/// Dearest PBKDF2 iteration count accepted.
const PBKDF2_MAX_ITERATIONS: u32 = 10_000_000;
/// PBKDF2-HMAC-SHA-256 output length in Django hashes, in bytes.
const PBKDF2_OUTPUT_LEN: usize = 32;
/// Longest legacy salt accepted, in bytes.
const LEGACY_SALT_MAX: usize = 128;

/// The legacy format of a hash string, recognised by its prefix alone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LegacyKind {
    Bcrypt,
    Pbkdf2Sha256,
    Sha256Salted,
}

impl LegacyKind {
    /// The format `s` claims to be in, whether or not it is well formed.
    fn detect(s: &str) -> Option<LegacyKind> {
        if s.starts_with(PBKDF2_PREFIX) {
            Some(LegacyKind::Pbkdf2Sha256)
        } else if s.starts_with(SHA256_PREFIX) {
            Some(LegacyKind::Sha256Salted)
        } else if BCRYPT_PREFIXES
            .iter()
            .chain(&BCRYPT_REFUSED_PREFIXES)
            .any(|p| s.starts_with(p))
        {
            Some(LegacyKind::Bcrypt)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            LegacyKind::Bcrypt => "bcrypt",
            LegacyKind::Pbkdf2Sha256 => "pbkdf2_sha256",
            LegacyKind::Sha256Salted => "sha256_salted",
        }
    }
}

/// A parsed legacy hash, borrowing from the stored string. Deliberately not
/// `Debug`: it holds the salt and the output.
enum Legacy<'a> {
    Bcrypt {
        /// The whole stored string, as the `bcrypt` crate wants it.
        encoded: &'a str,
        /// `2a`, `2b` or `2y`.
        version: &'a str,
        cost: u32,
    },
    Pbkdf2Sha256 {
        iterations: u32,
        salt: &'a str,
        hash: [u8; PBKDF2_OUTPUT_LEN],
    },
    Sha256Salted {
        salt: &'a str,
        hash: Digest,
    },
}

impl<'a> Legacy<'a> {
    /// `None` if `s` is not in a legacy format (it may be a PHC string), otherwise
    /// the parsed hash or why it is unusable.
    fn parse(s: &'a str) -> Option<Result<Legacy<'a>, CryptoError>> {
        Some(match LegacyKind::detect(s)? {
            LegacyKind::Bcrypt => Self::parse_bcrypt(s),
            LegacyKind::Pbkdf2Sha256 => Self::parse_pbkdf2(s),
            LegacyKind::Sha256Salted => Self::parse_sha256(s),
        })
    }

    /// `$<version>$<cost>$<salt><output>`.
    fn parse_bcrypt(s: &'a str) -> Result<Legacy<'a>, CryptoError> {
        let fields: Vec<&str> = s.split('$').collect();
        let [empty, version, cost, body] = fields.as_slice() else {
            return Err(CryptoError::MalformedHash);
        };
        if !empty.is_empty() {
            return Err(CryptoError::MalformedHash);
        }
        if !matches!(*version, "2a" | "2b" | "2y") {
            return Err(CryptoError::UnsupportedAlgorithm);
        }
        if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CryptoError::MalformedHash);
        }
        let cost: u32 = cost.parse().map_err(|_| CryptoError::MalformedHash)?;
        check_cost(
            LegacyKind::Bcrypt,
            u64::from(cost),
            BCRYPT_MIN_COST,
            BCRYPT_MAX_COST,
        )?;
        if body.len() != BCRYPT_BODY_LEN {
            return Err(CryptoError::MalformedHash);
        }
        // The salt must decode to 16 bytes and the output to 23, canonically.
        let (salt, output) = body
            .split_at_checked(BCRYPT_SALT_CHARS)
            .ok_or(CryptoError::MalformedHash)?;
        let salt_len = bcrypt::BASE_64.decode(salt).map_or(0, |b| b.len());
        let output_len = bcrypt::BASE_64.decode(output).map_or(0, |b| b.len());
        if salt_len != 16 || output_len != 23 {
            return Err(CryptoError::MalformedHash);
        }
        Ok(Legacy::Bcrypt {
            encoded: s,
            version,
            cost,
        })
    }

    /// `pbkdf2_sha256$<iterations>$<salt>$<base64 output>`.
    fn parse_pbkdf2(s: &'a str) -> Result<Legacy<'a>, CryptoError> {
        let rest = s
            .strip_prefix(PBKDF2_PREFIX)
            .ok_or(CryptoError::MalformedHash)?;
        let fields: Vec<&str> = rest.split('$').collect();
        let [iterations, salt, encoded] = fields.as_slice() else {
            return Err(CryptoError::MalformedHash);
        };
        if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CryptoError::MalformedHash);
        }
        // All digits: the only possible parse failure is overflow.
        let found = iterations.parse::<u64>().unwrap_or(u64::MAX);
        let iterations = check_cost(LegacyKind::Pbkdf2Sha256, found, 1, PBKDF2_MAX_ITERATIONS)?;
        check_salt(salt)?;
        let hash = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| <[u8; PBKDF2_OUTPUT_LEN]>::try_from(b.as_slice()).ok())
            .ok_or(CryptoError::MalformedHash)?;
        Ok(Legacy::Pbkdf2Sha256 {
            iterations,
            salt,
            hash,
        })
    }

    /// `sha256$<salt>$<hex of SHA-256(salt ‖ password)>`.
    fn parse_sha256(s: &'a str) -> Result<Legacy<'a>, CryptoError> {
        let rest = s
            .strip_prefix(SHA256_PREFIX)
            .ok_or(CryptoError::MalformedHash)?;
        let fields: Vec<&str> = rest.split('$').collect();
        let [salt, hex] = fields.as_slice() else {
            return Err(CryptoError::MalformedHash);
        };
        check_salt(salt)?;
        let hash = Digest::from_hex(hex).map_err(|_| CryptoError::MalformedHash)?;
        Ok(Legacy::Sha256Salted { salt, hash })
    }

    /// The non-secret parameters, for `Debug`.
    fn public_params(&self) -> String {
        match self {
            Legacy::Bcrypt { version, cost, .. } => format!("v={version},cost={cost}"),
            Legacy::Pbkdf2Sha256 { iterations, .. } => format!("iterations={iterations}"),
            Legacy::Sha256Salted { .. } => String::new(),
        }
    }

    /// Recomputes the hash of `password` and compares in constant time.
    fn verify(&self, password: &[u8]) -> Result<bool, CryptoError> {
        match self {
            Legacy::Bcrypt { encoded, cost, .. } => {
                // Re-checked here so no path can reach the computation with an
                // absurd cost.
                check_cost(
                    LegacyKind::Bcrypt,
                    u64::from(*cost),
                    BCRYPT_MIN_COST,
                    BCRYPT_MAX_COST,
                )?;
                bcrypt::verify(password, encoded).map_err(|_| CryptoError::MalformedHash)
            }
            Legacy::Pbkdf2Sha256 {
                iterations,
                salt,
                hash,
            } => {
                check_cost(
                    LegacyKind::Pbkdf2Sha256,
                    u64::from(*iterations),
                    1,
                    PBKDF2_MAX_ITERATIONS,
                )?;
                let mut derived = Zeroizing::new([0u8; PBKDF2_OUTPUT_LEN]);
                pbkdf2::pbkdf2_hmac::<Sha256>(
                    password,
                    salt.as_bytes(),
                    *iterations,
                    derived.as_mut_slice(),
                );
                Ok(derived.as_slice().ct_eq(hash.as_slice()).into())
            }
            Legacy::Sha256Salted { salt, hash } => {
                let computed: [u8; 32] = Sha256::new()
                    .chain_update(salt.as_bytes())
                    .chain_update(password)
                    .finalize()
                    .into();
                Ok(Digest::from_bytes(computed).ct_eq(hash).into())
            }
        }
    }
}

/// Refuses a legacy work factor outside `min..=max`.
fn check_cost(kind: LegacyKind, found: u64, min: u32, max: u32) -> Result<u32, CryptoError> {
    match u32::try_from(found) {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(CryptoError::CostOutOfRange {
            algorithm: kind.name(),
            found,
            min: u64::from(min),
            max: u64::from(max),
        }),
    }
}

/// A legacy salt: 1 to 128 printable ASCII characters other than `$`.
fn check_salt(salt: &str) -> Result<(), CryptoError> {
    let ok = (1..=LEGACY_SALT_MAX).contains(&salt.len())
        && salt.bytes().all(|b| b.is_ascii_graphic() && b != b'$');
    if ok {
        Ok(())
    } else {
        Err(CryptoError::MalformedHash)
    }
}

/// Hashes `password` with Argon2id v0x13, `params`, a 16-byte random salt and a
/// 32-byte output.
///
/// ```
/// use afiliado::crypto::{hash_password, verify_password, HashParams};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(7); // the service uses rand::rng()
/// let params = HashParams::danger_insecure_for_tests(); // the service uses OWASP or stronger
/// let hash = hash_password(b"correct horse", &params, &mut rng)?;
/// assert!(hash.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
/// assert!(verify_password(b"correct horse", &hash)?);
/// assert!(!verify_password(b"wrong horse", &hash)?);
/// # Ok::<(), afiliado::crypto::CryptoError>(())
/// ```
///
/// # Errors
///
/// [`CryptoError::InvalidParams`] if `params` fails [`HashParams::validate`];
/// [`CryptoError::Hashing`] if Argon2 rejects the input (e.g. a password over 4 GiB).
pub fn hash_password<R: CryptoRng + ?Sized>(
    password: &[u8],
    params: &HashParams,
    rng: &mut R,
) -> Result<PasswordHash, CryptoError> {
    let argon_params = params.to_argon2()?;
    let mut salt_bytes = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt_bytes);
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| CryptoError::Hashing(e.to_string()))?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let hash = hasher
        .hash_password(password, &salt)
        .map_err(|e| CryptoError::Hashing(e.to_string()))?;
    Ok(PasswordHash(hash.to_string()))
}

/// Verifies `password` against `hash`, using the algorithm, version and
/// parameters stored in the hash (not the currently configured ones). The output
/// comparison is constant time. [Legacy hashes](PasswordHash#legacy-formats) are
/// verified with their own algorithm.
///
/// # Errors
///
/// `Ok(false)` is the answer for a wrong password. An error means the hash itself
/// cannot be used: [`CryptoError::UnsupportedAlgorithm`] for other PHC algorithms or
/// unknown versions, [`CryptoError::CostOutOfRange`] for a legacy work factor out
/// of range, [`CryptoError::MalformedHash`] otherwise.
pub fn verify_password(password: &[u8], hash: &PasswordHash) -> Result<bool, CryptoError> {
    if let Some(legacy) = Legacy::parse(hash.as_str()) {
        return legacy?.verify(password);
    }
    let mut parsed = PhcHash::new(hash.as_str()).map_err(|_| CryptoError::MalformedHash)?;
    let setup = Argon2Setup::from_phc(&parsed)?;
    // Pin the version we resolved (the `argon2` crate would default a missing
    // `v=` to 0x13).
    parsed.version = Some(Decimal::from(setup.version));
    let verifier = Argon2::new(setup.algorithm, setup.version, setup.params);
    match verifier.verify_password(password, &parsed) {
        Ok(()) => Ok(true),
        Err(phc::Error::Password) => Ok(false),
        Err(phc::Error::Algorithm | phc::Error::Version) => Err(CryptoError::UnsupportedAlgorithm),
        Err(_) => Err(CryptoError::MalformedHash),
    }
}

/// [`verify_password`] after [`HashCostBounds::check`]: a stored hash that asks for more
/// work than `bounds` is refused before anything is allocated or computed.
///
/// ```
/// use afiliado::crypto::{hash_password, verify_password_bounded, HashCostBounds, HashParams};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
/// let params = HashParams { m_cost_kib: 16, t_cost: 1, p_cost: 1 };
/// let hash = hash_password(b"correct horse", &params, &mut rng)?;
/// let bounds = HashCostBounds::for_params(&params);
/// assert!(verify_password_bounded(b"correct horse", &hash, &bounds)?);
/// // Bounds below this hash's parameters refuse it.
/// let mut strict = bounds;
/// strict.argon2_m_cost_kib = 8;
/// assert!(verify_password_bounded(b"correct horse", &hash, &strict).is_err());
/// # Ok::<(), afiliado::crypto::CryptoError>(())
/// ```
///
/// # Errors
///
/// [`CryptoError::CostAboveBound`], or any error of [`verify_password`].
pub fn verify_password_bounded(
    password: &[u8],
    hash: &PasswordHash,
    bounds: &HashCostBounds,
) -> Result<bool, CryptoError> {
    bounds.check(hash)?;
    verify_password(password, hash)
}

/// Whether `hash` should be replaced by a fresh [`hash_password`] with `params`
/// (call it after a successful [`verify_password`], while the plaintext is at hand).
///
/// True if the hash is a [legacy hash](PasswordHash#legacy-formats), is not
/// Argon2id, not version 0x13, was made with different `m`/`t`/`p`, carries a key
/// id or associated data, has an output other than 32 bytes or a salt shorter than
/// 16 bytes, or cannot be parsed at all.
#[must_use]
pub fn needs_rehash(hash: &PasswordHash, params: &HashParams) -> bool {
    if hash.is_legacy() {
        return true;
    }
    let Ok(parsed) = PhcHash::new(hash.as_str()) else {
        return true;
    };
    let Ok(setup) = Argon2Setup::from_phc(&parsed) else {
        return true;
    };
    let p = &setup.params;
    setup.algorithm != Algorithm::Argon2id
        || setup.version != Version::V0x13
        || p.m_cost() != params.m_cost_kib
        || p.t_cost() != params.t_cost
        || p.p_cost() != params.p_cost
        || !p.keyid().is_empty()
        || !p.data().is_empty()
        || p.output_len() != Some(OUTPUT_LEN)
        || setup.salt_len < SALT_LEN
}

/// A hash of a random secret, verified against when the login identifier is
/// unknown, so that every login attempt costs one Argon2 verification and
/// response times do not reveal which accounts exist.
///
/// Build one at start-up with the same [`HashParams`] used for real hashes.
/// (Accounts whose hashes predate a parameter change still verify with their old,
/// possibly cheaper, parameters until re-hashed.)
///
/// ```
/// use afiliado::crypto::{DummyHash, HashParams};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
/// let dummy = DummyHash::new(&HashParams::danger_insecure_for_tests(), &mut rng)?;
/// assert!(!dummy.verify(b"anything"));
/// # Ok::<(), afiliado::crypto::CryptoError>(())
/// ```
#[derive(Clone)]
pub struct DummyHash {
    hash: PasswordHash,
}

impl DummyHash {
    /// Hashes 32 random bytes (then wiped) with `params`.
    ///
    /// # Errors
    ///
    /// As [`hash_password`].
    pub fn new<R: CryptoRng + ?Sized>(
        params: &HashParams,
        rng: &mut R,
    ) -> Result<Self, CryptoError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut_slice());
        let hash = hash_password(secret.as_slice(), params, rng)?;
        Ok(DummyHash { hash })
    }

    /// Runs a full Argon2 verification of `password` and **always returns `false`**,
    /// whatever the password.
    #[must_use]
    pub fn verify(&self, password: &[u8]) -> bool {
        let outcome = verify_password(password, &self.hash);
        // Keep the work observable to the optimiser.
        let _ = std::hint::black_box(outcome);
        false
    }
}

impl fmt::Debug for DummyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DummyHash")
            .field("hash", &self.hash)
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Tokens and codes
// ---------------------------------------------------------------------------

/// Number of random bytes in a [`Token`].
const TOKEN_BYTES: usize = 32;

/// A 256-bit random token for e-mailed links, as 43 base64url characters
/// without padding.
///
/// Only [`expose_secret`](Token::expose_secret) reveals it (to build the link).
/// Store [`DigestKey::digest_token`] instead of the token. `Debug` prints
/// `Token([REDACTED])`; there is no `Display` and no serde.
///
/// ```
/// use afiliado::crypto::Token;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(3);
/// let token = Token::generate(&mut rng);
/// assert_eq!(token.expose_secret().len(), Token::LEN);
/// let again = Token::parse(&format!(" {}\n", token.expose_secret()))?;
/// assert_eq!(again.expose_secret(), token.expose_secret());
/// assert_eq!(format!("{token:?}"), "Token([REDACTED])");
/// # Ok::<(), afiliado::crypto::TokenError>(())
/// ```
#[derive(Clone)]
pub struct Token(SecretString);

impl Token {
    /// Length of the encoded token, in characters.
    pub const LEN: usize = 43;

    /// Draws 32 bytes from `rng` and encodes them.
    #[must_use]
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Token {
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        rng.fill_bytes(bytes.as_mut_slice());
        // `encode` allocates exactly 43 bytes, so the conversion to `Box<str>`
        // does not leave an unwiped copy behind.
        Token(SecretString::from(URL_SAFE_NO_PAD.encode(bytes.as_slice())))
    }

    /// Parses a token received from a link or form: surrounding whitespace is
    /// trimmed; the rest must be exactly 43 base64url characters forming the
    /// canonical encoding of 32 bytes.
    ///
    /// # Errors
    ///
    /// [`TokenError::InvalidCharacter`], [`TokenError::Length`] or
    /// [`TokenError::NonCanonical`]; the input is never echoed.
    pub fn parse(input: &str) -> Result<Token, TokenError> {
        let t = input.trim();
        if !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(TokenError::InvalidCharacter);
        }
        if t.len() != Token::LEN {
            return Err(TokenError::Length {
                expected: Token::LEN,
                found: t.len(),
            });
        }
        let decoded = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(t)
                .map_err(|_| TokenError::NonCanonical)?,
        );
        if decoded.len() != TOKEN_BYTES {
            return Err(TokenError::NonCanonical);
        }
        Ok(Token(SecretString::from(t)))
    }

    /// The encoded token, for building the e-mailed link.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

/// A one-time numeric code of 4 to 10 uniformly random decimal digits
/// (leading zeros kept), for users who type the code instead of following a link.
///
/// Codes have little entropy: store [`DigestKey::digest_code`] (which binds the
/// code to the account) and rely on the caller's attempt limits. `Debug` prints
/// `NumericCode([REDACTED])`; there is no `Display` and no serde.
///
/// ```
/// use afiliado::crypto::NumericCode;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(5);
/// let code = NumericCode::generate(6, &mut rng)?;
/// assert_eq!(code.expose_secret().len(), 6);
/// let typed = NumericCode::parse(" 012 345 ", 6)?;
/// assert_eq!(typed.expose_secret(), "012345");
/// # Ok::<(), afiliado::crypto::CryptoError>(())
/// ```
#[derive(Clone)]
pub struct NumericCode {
    code: SecretString,
    digits: u8,
}

impl NumericCode {
    /// Smallest supported number of digits.
    pub const MIN_DIGITS: u8 = 4;
    /// Largest supported number of digits.
    pub const MAX_DIGITS: u8 = 10;

    /// Draws a code of `digits` digits, each uniform over `0..=9`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::InvalidCodeLength`] unless `digits` is in `4..=10`.
    pub fn generate<R: CryptoRng + ?Sized>(digits: u8, rng: &mut R) -> Result<Self, CryptoError> {
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits) {
            return Err(CryptoError::InvalidCodeLength { digits });
        }
        let mut code = String::with_capacity(usize::from(digits));
        for _ in 0..digits {
            code.push(char::from(b'0' + rng.random_range(0..10u8)));
        }
        // Capacity equals length, so no unwiped copy is left behind.
        Ok(NumericCode {
            code: SecretString::from(code),
            digits,
        })
    }

    /// Parses a typed code: all whitespace is removed, then exactly `digits`
    /// ASCII digits must remain.
    ///
    /// # Errors
    ///
    /// [`TokenError::UnsupportedDigits`] unless `digits` is in `4..=10`;
    /// [`TokenError::InvalidCharacter`] or [`TokenError::Length`]. The input is
    /// never echoed.
    pub fn parse(input: &str, digits: u8) -> Result<Self, TokenError> {
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits) {
            return Err(TokenError::UnsupportedDigits { digits });
        }
        let expected = usize::from(digits);
        let mut code = Zeroizing::new(String::with_capacity(expected));
        let mut found = 0usize;
        for c in input.chars().filter(|c| !c.is_whitespace()) {
            if !c.is_ascii_digit() {
                return Err(TokenError::InvalidCharacter);
            }
            found = found.saturating_add(1);
            if found <= expected {
                code.push(c);
            }
        }
        if found != expected {
            return Err(TokenError::Length { expected, found });
        }
        Ok(NumericCode {
            code: SecretString::from(code.as_str()),
            digits,
        })
    }

    /// The digits, for the e-mail or SMS body.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.code.expose_secret()
    }

    /// Number of digits.
    #[must_use]
    pub fn digits(&self) -> u8 {
        self.digits
    }
}

impl fmt::Debug for NumericCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NumericCode([REDACTED])")
    }
}

// ---------------------------------------------------------------------------
// Keyed digests
// ---------------------------------------------------------------------------

/// HMAC-SHA-256 block size, in bytes.
const HMAC_BLOCK: usize = 64;

/// What a token or code is for; part of the digested message so a secret issued
/// for one purpose never matches a digest stored for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenPurpose {
    /// Account activation link.
    Activation,
    /// Account activation by typed code.
    ActivationCode,
    /// Unlocking a locked account.
    Unlock,
    /// Password reset.
    Reset,
    /// Confirming a new contact email (the link goes to the new address).
    EmailChange,
    /// A trusted-device token (kept by the member's browser in a cookie).
    Device,
}

impl TokenPurpose {
    /// Stable label, used in digests and in serde (`"activation"`,
    /// `"activation_code"`, `"unlock"`, `"reset"`, `"email_change"`). Never change an existing
    /// label: stored digests depend on it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Activation => "activation",
            TokenPurpose::ActivationCode => "activation_code",
            TokenPurpose::Unlock => "unlock",
            TokenPurpose::Reset => "reset",
            TokenPurpose::EmailChange => "email_change",
            TokenPurpose::Device => "device",
        }
    }
}

impl fmt::Display for TokenPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Domain-separation prefix of every digested message.
const DIGEST_DOMAIN: &[u8] = b"afiliado/v1/";

/// The server's secret key for HMAC-SHA-256 digests of tokens and codes.
///
/// Any key of at least 32 bytes is accepted and used exactly as HMAC (RFC 2104)
/// prescribes: keys up to 64 bytes are zero-padded, longer keys are first hashed
/// with SHA-256. Digests are therefore plain `HMAC-SHA-256(key, message)` and can
/// be reproduced by any standard implementation. The key is kept in a
/// zeroize-on-drop box; `Debug` prints `DigestKey([REDACTED])`.
///
/// ```
/// use afiliado::crypto::{DigestKey, Token, TokenPurpose};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(9);
/// let key = DigestKey::from_bytes(&[0x42; 32])?;
/// let token = Token::generate(&mut rng);
/// let stored = key.digest_token(TokenPurpose::Reset, &token);
/// // Later, the token comes back in a link:
/// let presented = Token::parse(token.expose_secret())?;
/// assert_eq!(key.digest_token(TokenPurpose::Reset, &presented), stored); // constant time
/// assert_ne!(key.digest_token(TokenPurpose::Unlock, &presented), stored);
/// # Ok::<(), afiliado::crypto::CryptoError>(())
/// ```
pub struct DigestKey {
    /// The HMAC key block (key zero-padded, or its SHA-256 zero-padded).
    block: SecretBox<[u8; HMAC_BLOCK]>,
}

impl DigestKey {
    /// Minimum key length accepted by [`DigestKey::from_bytes`], in bytes.
    pub const MIN_LEN: usize = 32;

    /// Builds a key from secret bytes (e.g. decoded from configuration).
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyTooShort`] if fewer than 32 bytes are given.
    pub fn from_bytes(key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() < Self::MIN_LEN {
            return Err(CryptoError::KeyTooShort {
                min: Self::MIN_LEN,
                found: key.len(),
            });
        }
        Ok(Self::from_key_material(key))
    }

    /// Draws a fresh 32-byte key from `rng`.
    #[must_use]
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut block = SecretBox::new(Box::new([0u8; HMAC_BLOCK]));
        if let Some(head) = block.expose_secret_mut().get_mut(..Self::MIN_LEN) {
            rng.fill_bytes(head);
        }
        DigestKey { block }
    }

    /// A fresh key from the operating system's random generator.
    #[must_use]
    pub fn random() -> Self {
        #[allow(clippy::disallowed_methods)] // keys come from the OS-seeded RNG
        let mut rng = rand::rng();
        Self::generate(&mut rng)
    }

    /// A key from its text form: 32 bytes in base64 (standard or URL-safe, padding
    /// optional), as produced by `openssl rand -base64 32`.
    ///
    /// ```
    /// use afiliado::crypto::DigestKey;
    ///
    /// let key = DigestKey::from_base64("81NnxnHCkpCPKij9f8fVzcDeaqOh886Fu7MZXTi90vg=")?;
    /// assert_eq!(key.id().to_string().len(), 8);
    /// assert!(DigestKey::from_base64("c2hvcnQ=").is_err());
    /// # Ok::<(), afiliado::crypto::CryptoError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyTooShort`] when the text is not base64 of at least 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
        let text = text.trim();
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .map(zeroize::Zeroizing::new)
            .unwrap_or_default();
        Self::from_bytes(&bytes)
    }

    /// The key's public name (first 4 bytes of a SHA-256 of it), for logs and configuration.
    pub fn id(&self) -> KeyId {
        KeyId::of(b"digest", self.block.expose_secret())
    }

    /// RFC 2104 key normalisation, without any length check.
    fn from_key_material(key: &[u8]) -> Self {
        let mut block = SecretBox::new(Box::new([0u8; HMAC_BLOCK]));
        let dest = block.expose_secret_mut();
        if key.len() > HMAC_BLOCK {
            let mut hashed = Sha256::digest(key);
            for (d, s) in dest.iter_mut().zip(hashed.iter()) {
                *d = *s;
            }
            hashed.as_mut_slice().zeroize();
        } else {
            for (d, s) in dest.iter_mut().zip(key.iter()) {
                *d = *s;
            }
        }
        DigestKey { block }
    }

    /// HMAC-SHA-256 over the concatenation of `parts`.
    fn mac(&self, parts: &[&[u8]]) -> Digest {
        let mut key = hmac::digest::Key::<Hmac<Sha256>>::default();
        for (d, s) in key.iter_mut().zip(self.block.expose_secret().iter()) {
            *d = *s;
        }
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new(&key);
        key.as_mut_slice().zeroize();
        for part in parts {
            mac.update(part);
        }
        Digest(mac.finalize().into_bytes().into())
    }

    /// Digest of a link token:
    /// `HMAC(key, "afiliado/v1/" || purpose || 0x00 || token)`, where `token` is
    /// its 43-character encoding.
    ///
    /// Deliberately not bound to an account: stores look the account up by this
    /// digest, and the record holding the digest provides the binding. 256 random
    /// bits make collisions and guessing irrelevant.
    #[must_use]
    pub fn digest_token(&self, purpose: TokenPurpose, token: &Token) -> Digest {
        self.mac(&[
            DIGEST_DOMAIN,
            purpose.as_str().as_bytes(),
            &[0],
            token.expose_secret().as_bytes(),
        ])
    }

    /// Digest of a numeric code, bound to `account`:
    /// `HMAC(key, "afiliado/v1/" || purpose || 0x00 || account || 0x00 || code)`.
    ///
    /// `account` must be a stable identifier of the account (e.g. its id or its
    /// normalised identity number), the same when issuing and when checking.
    /// Messages stay unambiguous because codes contain no NUL byte, and they never
    /// collide with token messages (which contain a single NUL).
    #[must_use]
    pub fn digest_code(&self, purpose: TokenPurpose, account: &str, code: &NumericCode) -> Digest {
        self.mac(&[
            DIGEST_DOMAIN,
            purpose.as_str().as_bytes(),
            &[0],
            account.as_bytes(),
            &[0],
            code.expose_secret().as_bytes(),
        ])
    }

    /// A keyed pseudonym for non-secret identifiers that must not be exposed, such as the
    /// outbox idempotency key (which becomes a mail's `Message-ID`): stable for the same
    /// input, unlinkable to the member without the server key. `domain` separates uses.
    #[must_use]
    pub fn pseudonym(&self, domain: &str, parts: &[&str]) -> Digest {
        let mut message: Vec<&[u8]> = vec![DIGEST_DOMAIN, b"pseudonym/", domain.as_bytes()];
        for part in parts {
            message.push(&[0]);
            message.push(part.as_bytes());
        }
        self.mac(&message)
    }
}

impl Clone for DigestKey {
    fn clone(&self) -> Self {
        let mut block = SecretBox::new(Box::new([0u8; HMAC_BLOCK]));
        block
            .expose_secret_mut()
            .copy_from_slice(self.block.expose_secret());
        DigestKey { block }
    }
}

impl fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DigestKey([REDACTED])")
    }
}

/// A 32-byte HMAC-SHA-256 digest of a token or code: what the store keeps.
///
/// A digest is not a secret, but equality (`==` and
/// [`subtle::ConstantTimeEq::ct_eq`]) is constant time anyway. Serde uses 64
/// lowercase hex characters (upper case is accepted on input). `Debug` shows the
/// first 8 hex characters: `Digest(ab12cd34…)`.
#[derive(Clone, Copy)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Wraps raw digest bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The raw digest bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        let mut out = String::with_capacity(64);
        for b in &self.0 {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    /// Parses 64 hex characters (either case).
    ///
    /// # Errors
    ///
    /// [`CryptoError::MalformedDigest`] for any other input.
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(CryptoError::MalformedDigest);
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let (hi, lo) = match pair {
                [h, l] => (nibble(*h), nibble(*l)),
                _ => (None, None),
            };
            match (hi, lo) {
                (Some(h), Some(l)) => *o = (h << 4) | l,
                _ => return Err(CryptoError::MalformedDigest),
            }
        }
        Ok(Digest(out))
    }
}

impl ConstantTimeEq for Digest {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Digest {}

impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest(")?;
        for b in self.0.iter().take(4) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 hexadecimal characters")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Digest, E> {
                Digest::from_hex(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// A key's public name: the first 4 bytes of a SHA-256 of the key, printed as 8 hex digits.
/// It identifies a key in sealed payloads, logs and errors without revealing it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub(crate) [u8; 4]);

impl KeyId {
    /// The id of `key` material, under a label that keeps ids of different key kinds apart.
    pub(crate) fn of(label: &[u8], key: &[u8]) -> Self {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"afiliado key id\0");
        h.update(label);
        h.update([0]);
        h.update(key);
        let d: [u8; 32] = h.finalize().into();
        KeyId([d[0], d[1], d[2], d[3]])
    }

    /// The 4 bytes.
    pub fn as_bytes(&self) -> [u8; 4] {
        self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngCore as _, SeedableRng};
    use std::collections::HashSet;

    fn rng(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    fn fast() -> HashParams {
        HashParams::danger_insecure_for_tests()
    }

    // ----- parameters --------------------------------------------------------

    #[test]
    fn params_defaults_and_validation() {
        assert_eq!(HashParams::default(), HashParams::OWASP);
        assert_eq!(
            HashParams::OWASP,
            HashParams {
                m_cost_kib: 19_456,
                t_cost: 2,
                p_cost: 1
            }
        );
        assert_eq!(
            fast(),
            HashParams {
                m_cost_kib: 8,
                t_cost: 1,
                p_cost: 1
            }
        );
        assert!(HashParams::OWASP.validate().is_ok());
        assert!(fast().validate().is_ok());
        let bad = [
            HashParams {
                m_cost_kib: 7,
                t_cost: 1,
                p_cost: 1,
            },
            HashParams {
                m_cost_kib: 15,
                t_cost: 1,
                p_cost: 2,
            },
            HashParams {
                m_cost_kib: 64,
                t_cost: 0,
                p_cost: 1,
            },
            HashParams {
                m_cost_kib: 64,
                t_cost: 1,
                p_cost: 0,
            },
            HashParams {
                m_cost_kib: u32::MAX,
                t_cost: 1,
                p_cost: u32::MAX,
            },
        ];
        for p in bad {
            assert!(
                matches!(p.validate(), Err(CryptoError::InvalidParams(_))),
                "{p:?}"
            );
        }
    }

    #[test]
    fn params_serde_validates() {
        let json = serde_json::to_string(&HashParams::OWASP).unwrap();
        assert_eq!(json, r#"{"m_cost_kib":19456,"t_cost":2,"p_cost":1}"#);
        let back: HashParams = serde_json::from_str(&json).unwrap();
        assert_eq!(back, HashParams::OWASP);
        assert!(
            serde_json::from_str::<HashParams>(r#"{"m_cost_kib":1,"t_cost":1,"p_cost":1}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<HashParams>(
                r#"{"m_cost_kib":64,"t_cost":1,"p_cost":1,"extra":0}"#
            )
            .is_err()
        );
    }

    // ----- password hashing --------------------------------------------------

    #[test]
    fn hash_verify_round_trip() {
        let h = hash_password(b"S3guro!clave", &fast(), &mut rng(1)).unwrap();
        assert!(h.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert_eq!(h.algorithm(), "argon2id");
        assert_eq!(h.params(), Some(fast()));
        assert!(verify_password(b"S3guro!clave", &h).unwrap());
        assert!(!verify_password(b"S3guro!clavE", &h).unwrap());
        assert!(!verify_password(b"", &h).unwrap());
        // Random salt: same password, different hashes.
        let h2 = hash_password(b"S3guro!clave", &fast(), &mut rng(2)).unwrap();
        assert_ne!(h, h2);
        assert!(verify_password(b"S3guro!clave", &h2).unwrap());
    }

    #[test]
    fn hash_rejects_invalid_params_without_echo() {
        let bad = HashParams {
            m_cost_kib: 1,
            t_cost: 1,
            p_cost: 1,
        };
        let err = hash_password(b"planted-password", &bad, &mut rng(1)).unwrap_err();
        assert!(matches!(err, CryptoError::InvalidParams(_)));
        assert!(!err.to_string().contains("planted-password"));
    }

    #[test]
    fn verify_uses_stored_params_and_needs_rehash() {
        let a = fast();
        let b = HashParams {
            m_cost_kib: 16,
            t_cost: 2,
            p_cost: 1,
        };
        let h = hash_password(b"pw", &a, &mut rng(3)).unwrap();
        assert!(verify_password(b"pw", &h).unwrap());
        assert!(!needs_rehash(&h, &a));
        assert!(needs_rehash(&h, &b));
        assert!(needs_rehash(&h, &HashParams { t_cost: 2, ..a }));
        assert!(needs_rehash(
            &h,
            &HashParams {
                m_cost_kib: 16,
                p_cost: 2,
                ..a
            }
        ));
        let hb = hash_password(b"pw", &b, &mut rng(3)).unwrap();
        assert_eq!(hb.params(), Some(b));
        assert!(verify_password(b"pw", &hb).unwrap());
        assert!(!needs_rehash(&hb, &b));
        assert!(needs_rehash(&hb, &a));
    }

    #[test]
    fn owasp_params_in_phc_string() {
        let h = hash_password(b"pw", &HashParams::OWASP, &mut rng(4)).unwrap();
        assert!(h.as_str().contains("$m=19456,t=2,p=1$"), "{}", h.as_str());
        assert!(h.as_str().starts_with("$argon2id$v=19$"));
        assert_eq!(h.params(), Some(HashParams::OWASP));
        assert!(!needs_rehash(&h, &HashParams::OWASP));
        assert!(verify_password(b"pw", &h).unwrap());
    }

    fn other_variant(alg: Algorithm, version: Version, pw: &[u8]) -> PasswordHash {
        let params = argon2::Params::new(8, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let s = Argon2::new(alg, version, params)
            .hash_password(pw, &salt)
            .unwrap()
            .to_string();
        PasswordHash::parse(&s).unwrap()
    }

    #[test]
    fn other_argon2_variants_verify_but_need_rehash() {
        let hi = other_variant(Algorithm::Argon2i, Version::V0x13, b"pw");
        assert_eq!(hi.algorithm(), "argon2i");
        assert!(verify_password(b"pw", &hi).unwrap());
        assert!(!verify_password(b"px", &hi).unwrap());
        assert!(needs_rehash(&hi, &fast()));

        let old = other_variant(Algorithm::Argon2id, Version::V0x10, b"pw");
        assert!(old.as_str().contains("$v=16$"));
        assert!(verify_password(b"pw", &old).unwrap());
        assert!(needs_rehash(&old, &fast()));
        // Without `v=`, the reference implementation means 0x10.
        let no_v = PasswordHash::parse(&old.as_str().replace("$v=16", "")).unwrap();
        assert!(verify_password(b"pw", &no_v).unwrap());
        assert!(needs_rehash(&no_v, &fast()));
    }

    #[test]
    fn malformed_and_unsupported_hashes() {
        let good = hash_password(b"pw", &fast(), &mut rng(5)).unwrap();
        let good = good.as_str();
        let malformed = [
            "",
            "not a hash",
            "$argon2id$v=19$m=8,t=1,p=1", // no salt, no hash
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0", // no hash
            "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g", // m too small
            "$argon2id$v=19$m=8,t=0,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g", // t too small
            "$argon2id$v=19$m=8,t=1,p=4294967295$c2FsdHNhbHRzYWx0$aGFzaGhhc2g", // p overflow
            "$argon2id$v=19$m=8,t=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g", // p missing
            "$argon2id$v=19$m=8,t=1,p=1,x=3$c2FsdHNhbHRzYWx0$aGFzaGhhc2g", // unknown param
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaGhhc2g", // 4-byte salt
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$aGE", // 2-byte output
        ];
        for s in malformed {
            assert_eq!(
                PasswordHash::parse(s),
                Err(CryptoError::MalformedHash),
                "{s}"
            );
        }
        assert_eq!(
            PasswordHash::parse(&good.replace("v=19", "v=18")),
            Err(CryptoError::UnsupportedAlgorithm)
        );
        let scrypt =
            PasswordHash::parse("$scrypt$ln=4,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo").unwrap();
        assert_eq!(scrypt.algorithm(), "scrypt");
        assert_eq!(scrypt.params(), None);
        assert_eq!(
            verify_password(b"pw", &scrypt),
            Err(CryptoError::UnsupportedAlgorithm)
        );
        assert!(needs_rehash(&scrypt, &fast()));
        // Deserialisation validates too.
        assert!(serde_json::from_str::<PasswordHash>("\"not a hash\"").is_err());
        let json = serde_json::to_string(&PasswordHash::parse(good).unwrap()).unwrap();
        assert_eq!(json, format!("\"{good}\""));
        let back: PasswordHash = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_str(), good);
    }

    #[test]
    fn dummy_hash_always_false() {
        let params = fast();
        let mut r = rng(6);
        let dummy = DummyHash::new(&params, &mut r).unwrap();
        assert_eq!(dummy.hash.params(), Some(params));
        assert!(!dummy.verify(b""));
        assert!(!dummy.verify(b"password"));
        assert!(
            DummyHash::new(
                &HashParams {
                    m_cost_kib: 0,
                    t_cost: 1,
                    p_cost: 1
                },
                &mut r
            )
            .is_err()
        );
    }

    // ----- legacy hashes -----------------------------------------------------

    /// Openwall crypt_blowfish / OpenBSD known answers.
    const BCRYPT_UU: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    const BCRYPT_EMPTY: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy";

    fn assert_legacy(h: &PasswordHash, alg: &str) {
        assert_eq!(h.algorithm(), alg);
        assert!(h.is_legacy());
        assert_eq!(h.params(), None);
        assert!(needs_rehash(h, &fast()));
        assert!(needs_rehash(h, &HashParams::OWASP));
    }

    #[test]
    fn legacy_bcrypt_verifies() {
        let h = PasswordHash::parse(BCRYPT_UU).unwrap();
        assert_legacy(&h, "bcrypt");
        assert!(verify_password(b"U*U", &h).unwrap());
        assert!(!verify_password(b"U*V", &h).unwrap());
        assert!(!verify_password(b"", &h).unwrap());
        assert_eq!(
            format!("{h:?}"),
            r#"PasswordHash { alg: "bcrypt", params: "v=2a,cost=5" }"#
        );
        let empty = PasswordHash::parse(BCRYPT_EMPTY).unwrap();
        assert!(verify_password(b"", &empty).unwrap());
        assert!(!verify_password(b"U*U", &empty).unwrap());
        // `$2a$`, `$2b$` and `$2y$` differ only in which implementation bugs they
        // disclaim: the same bytes verify under all three.
        for v in ["$2b$", "$2y$"] {
            let h = PasswordHash::parse(&BCRYPT_UU.replacen("$2a$", v, 1)).unwrap();
            assert!(verify_password(b"U*U", &h).unwrap());
        }
        // Serde round trip keeps the string.
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{BCRYPT_UU}\""));
        assert_eq!(serde_json::from_str::<PasswordHash>(&json).unwrap(), h);
    }

    #[test]
    fn legacy_pbkdf2_known_answers() {
        // RFC 7914 §11 / RFC 6070-style PBKDF2-HMAC-SHA-256, P = "password", S = "salt".
        for (c, hex) in [
            (
                1,
                "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b",
            ),
            (
                2,
                "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
            ),
            (
                4096,
                "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a",
            ),
        ] {
            let b64 = base64::engine::general_purpose::STANDARD.encode(unhex(hex));
            let h = PasswordHash::parse(&format!("pbkdf2_sha256${c}$salt${b64}")).unwrap();
            assert_legacy(&h, "pbkdf2_sha256");
            assert!(verify_password(b"password", &h).unwrap(), "c={c}");
            assert!(!verify_password(b"passwore", &h).unwrap(), "c={c}");
            assert_eq!(
                format!("{h:?}"),
                format!(r#"PasswordHash {{ alg: "pbkdf2_sha256", params: "iterations={c}" }}"#)
            );
        }
    }

    #[test]
    fn legacy_salted_sha256() {
        let hex: String = Sha256::new()
            .chain_update(b"NaCl")
            .chain_update(b"Policia2020")
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let h = PasswordHash::parse(&format!("sha256$NaCl${hex}")).unwrap();
        assert_legacy(&h, "sha256_salted");
        assert!(verify_password(b"Policia2020", &h).unwrap());
        assert!(!verify_password(b"policia2020", &h).unwrap());
        assert!(!verify_password(b"NaClPolicia2020", &h).unwrap());
        let upper = PasswordHash::parse(&format!("sha256$NaCl${}", hex.to_uppercase())).unwrap();
        assert!(verify_password(b"Policia2020", &upper).unwrap());
        let dbg = format!("{h:?} {h:#?}");
        assert_eq!(
            format!("{h:?}"),
            r#"PasswordHash { alg: "sha256_salted", params: "" }"#
        );
        assert!(!dbg.contains("NaCl") && !dbg.contains(&hex[..8]), "{dbg}");
    }

    #[test]
    fn legacy_malformed_and_absurd() {
        let body = &BCRYPT_UU[7..];
        let b64 = "Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs=";
        let hex = "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b";
        for s in [
            "$2a$5$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".to_owned(),
            "$2a$x5$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".to_owned(),
            format!("$2a$05${}", &body[1..]),
            format!("$2a$05${body}A"),
            format!("$2a$05${}!", &body[..52]),
            format!("$2a$05${}$", &body[..52]),
            format!("$2a$05$$${body}"),
            format!("$2a$05${}é", &body[..51]),
            // Non-canonical trailing bits in the salt.
            format!("$2a$05$CCCCCCCCCCCCCCCCCCCCC/{}", &body[22..]),
            "pbkdf2_sha256$".to_owned(),
            format!("pbkdf2_sha256$1$salt${}", &b64[..43]),
            format!("pbkdf2_sha256$1$salt${}", b64.trim_end_matches('=')),
            format!("pbkdf2_sha256$$salt${b64}"),
            format!("pbkdf2_sha256$+1$salt${b64}"),
            format!("pbkdf2_sha256$1$$salt${b64}"),
            format!("pbkdf2_sha256$1$${b64}"),
            format!("pbkdf2_sha256$1$sa lt${b64}"),
            format!("pbkdf2_sha256$1${}${b64}", "s".repeat(129)),
            format!("pbkdf2_sha256$1$salt${b64}$"),
            format!("pbkdf2_sha256$1$salt$AAAA{b64}"),
            format!("sha256$salt${}", &hex[..63]),
            format!("sha256$salt${hex}0"),
            format!("sha256$salt${}g", &hex[..63]),
            format!("sha256$${hex}"),
            format!("sha256${hex}"),
            format!("sha256$a$b${hex}"),
        ] {
            assert_eq!(
                PasswordHash::parse(&s),
                Err(CryptoError::MalformedHash),
                "{s}"
            );
            assert!(serde_json::from_str::<PasswordHash>(&format!("\"{s}\"")).is_err());
        }
        for prefix in ["$2x$", "$2$"] {
            assert_eq!(
                PasswordHash::parse(&BCRYPT_UU.replacen("$2a$", prefix, 1)),
                Err(CryptoError::UnsupportedAlgorithm)
            );
        }
        let bcrypt_cost = |c: u64| CryptoError::CostOutOfRange {
            algorithm: "bcrypt",
            found: c,
            min: 4,
            max: 20,
        };
        for c in [0u64, 3, 21, 31, 99] {
            assert_eq!(
                PasswordHash::parse(&format!("$2b${c:02}${body}")),
                Err(bcrypt_cost(c))
            );
        }
        assert!(PasswordHash::parse(&format!("$2b$20${body}")).is_ok());
        let pbkdf2_cost = |c: u64| CryptoError::CostOutOfRange {
            algorithm: "pbkdf2_sha256",
            found: c,
            min: 1,
            max: 10_000_000,
        };
        for (text, c) in [
            ("0", 0u64),
            ("10000001", 10_000_001),
            ("4294967296", 4_294_967_296),
            ("99999999999999999999999", u64::MAX),
        ] {
            assert_eq!(
                PasswordHash::parse(&format!("pbkdf2_sha256${text}$salt${b64}")),
                Err(pbkdf2_cost(c))
            );
        }
        assert!(PasswordHash::parse(&format!("pbkdf2_sha256$10000000$salt${b64}")).is_ok());
        let msg = pbkdf2_cost(0).to_string();
        assert_eq!(
            msg,
            "pbkdf2_sha256 work factor 0 is outside the accepted range 1..=10000000"
        );
    }

    // ----- tokens ------------------------------------------------------------

    fn is_url_safe(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '-' || c == '_'
    }

    #[test]
    fn tokens_are_distinct_well_formed_and_parse() {
        let mut r = rng(7);
        let mut seen = HashSet::new();
        let mut alphabet = HashSet::new();
        for _ in 0..1000 {
            let t = Token::generate(&mut r);
            let s = t.expose_secret().to_owned();
            assert_eq!(s.len(), 43);
            assert!(s.chars().all(is_url_safe), "{s}");
            alphabet.extend(s.chars());
            assert_eq!(Token::parse(&s).unwrap().expose_secret(), s);
            assert!(seen.insert(s));
        }
        assert_eq!(seen.len(), 1000);
        // 43,000 characters of 256-bit tokens use the whole alphabet.
        assert_eq!(alphabet.len(), 64);
    }

    #[test]
    fn token_parse_rules() {
        let t = Token::generate(&mut rng(8));
        let s = t.expose_secret();
        assert_eq!(
            Token::parse(&format!("\t{s} \r\n"))
                .unwrap()
                .expose_secret(),
            s
        );
        assert_eq!(
            Token::parse(&s[..42]).unwrap_err(),
            TokenError::Length {
                expected: 43,
                found: 42
            }
        );
        assert_eq!(
            Token::parse(&format!("{s}A")).unwrap_err(),
            TokenError::Length {
                expected: 43,
                found: 44
            }
        );
        assert_eq!(
            Token::parse("").unwrap_err(),
            TokenError::Length {
                expected: 43,
                found: 0
            }
        );
        for bad in ['+', '/', '=', ' ', 'ñ', '.'] {
            let mut v: Vec<char> = s.chars().collect();
            v[10] = bad;
            let bad_s: String = v.into_iter().collect();
            assert_eq!(
                Token::parse(&bad_s).unwrap_err(),
                TokenError::InvalidCharacter,
                "{bad:?}"
            );
        }
        // The last character carries 4 padding bits that must be zero.
        let mut nc: String = s[..42].to_owned();
        nc.push('B');
        assert_eq!(Token::parse(&nc).unwrap_err(), TokenError::NonCanonical);
        nc.pop();
        nc.push('A');
        assert!(Token::parse(&nc).is_ok());
        // Errors do not echo the input.
        let planted = "PLANTEDtokenPLANTEDtokenPLANTEDtokenPLANTED+";
        let msg = Token::parse(planted).unwrap_err().to_string();
        assert!(!msg.contains("PLANTED"), "{msg}");
    }

    // ----- codes -------------------------------------------------------------

    fn chi_square(counts: &[u64; 10]) -> f64 {
        let total: u64 = counts.iter().sum();
        let expected = total as f64 / 10.0;
        counts
            .iter()
            .map(|&c| {
                let d = c as f64 - expected;
                d * d / expected
            })
            .sum()
    }

    /// 9 degrees of freedom: P(χ² > 33.7) ≈ 1e-4.
    const CHI_BOUND: f64 = 33.7;

    #[test]
    fn codes_are_uniform_per_position() {
        let mut r = rng(9);
        let mut per_pos = [[0u64; 10]; 6];
        let mut first_is_zero = 0;
        for _ in 0..20_000 {
            let code = NumericCode::generate(6, &mut r).unwrap();
            let s = code.expose_secret();
            assert_eq!(s.len(), 6);
            assert_eq!(code.digits(), 6);
            if s.starts_with('0') {
                first_is_zero += 1;
            }
            for (pos, b) in s.bytes().enumerate() {
                per_pos[pos][usize::from(b - b'0')] += 1;
            }
        }
        let mut overall = [0u64; 10];
        for (pos, counts) in per_pos.iter().enumerate() {
            let chi = chi_square(counts);
            assert!(chi < CHI_BOUND, "position {pos}: chi² = {chi}, {counts:?}");
            for d in 0..10 {
                overall[d] += counts[d];
            }
        }
        assert!(chi_square(&overall) < CHI_BOUND, "{overall:?}");
        // Leading zeros are kept (about 10% of codes start with 0).
        assert!(first_is_zero > 1500, "{first_is_zero}");
    }

    /// Digits drawn by the pooled test: enough for the χ² test to see the 4%
    /// bias of `byte % 10` (expected χ² ≈ 220 against a bound of 33.7).
    const POOLED_DIGITS: usize = 600_000;

    #[test]
    fn codes_are_uniform_pooled() {
        let mut r = rng(19);
        let mut counts = [0u64; 10];
        for _ in 0..POOLED_DIGITS / 10 {
            let code = NumericCode::generate(10, &mut r).unwrap();
            for b in code.expose_secret().bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        assert!(chi_square(&counts) < CHI_BOUND, "{counts:?}");
    }

    #[test]
    fn chi_square_detects_modulo_bias() {
        // Sanity check of the test above: `byte % 10` is biased and must fail it.
        let mut r = rng(10);
        let mut counts = [0u64; 10];
        for _ in 0..POOLED_DIGITS {
            let b: u8 = r.random();
            counts[usize::from(b % 10)] += 1;
        }
        assert!(chi_square(&counts) > CHI_BOUND, "{counts:?}");
    }

    #[test]
    fn code_lengths_and_parse() {
        let mut r = rng(11);
        for d in 4..=10u8 {
            let c = NumericCode::generate(d, &mut r).unwrap();
            assert_eq!(c.expose_secret().len(), usize::from(d));
            assert!(c.expose_secret().bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(
                NumericCode::parse(c.expose_secret(), d)
                    .unwrap()
                    .expose_secret(),
                c.expose_secret()
            );
        }
        for d in [0u8, 3, 11, 255] {
            assert_eq!(
                NumericCode::generate(d, &mut r).unwrap_err(),
                CryptoError::InvalidCodeLength { digits: d }
            );
            assert_eq!(
                NumericCode::parse("1234", d).unwrap_err(),
                TokenError::UnsupportedDigits { digits: d }
            );
        }
        assert_eq!(
            NumericCode::parse(" 00 12\t34 ", 6)
                .unwrap()
                .expose_secret(),
            "001234"
        );
        assert_eq!(
            NumericCode::parse("0000", 4).unwrap().expose_secret(),
            "0000"
        );
        assert_eq!(
            NumericCode::parse("12345", 6).unwrap_err(),
            TokenError::Length {
                expected: 6,
                found: 5
            }
        );
        assert_eq!(
            NumericCode::parse("1234567", 6).unwrap_err(),
            TokenError::Length {
                expected: 6,
                found: 7
            }
        );
        assert_eq!(
            NumericCode::parse("12-456", 6).unwrap_err(),
            TokenError::InvalidCharacter
        );
        assert_eq!(
            NumericCode::parse("12345٦", 6).unwrap_err(),
            TokenError::InvalidCharacter
        );
        assert_eq!(
            NumericCode::parse("12345a", 6).unwrap_err(),
            TokenError::InvalidCharacter
        );
        let msg = NumericCode::parse("987654321x", 6).unwrap_err().to_string();
        assert!(!msg.contains("987654"), "{msg}");
    }

    // ----- digests -----------------------------------------------------------

    fn hmac_ref(key: &[u8], msg: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as hmac::Mac>::new_from_slice(key).unwrap();
        m.update(msg);
        m.finalize().into_bytes().into()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_sha256_known_answers() {
        // RFC 4231, test case 2.
        let expected2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let msg2 = b"what do ya want for nothing?";
        assert_eq!(hmac_ref(b"Jefe", msg2).to_vec(), unhex(expected2));
        assert_eq!(
            DigestKey::from_key_material(b"Jefe").mac(&[msg2]).to_hex(),
            expected2
        );
        assert_eq!(
            DigestKey::from_key_material(b"Jefe")
                .mac(&[b"what do ya", b" want ", b"for nothing?"])
                .to_hex(),
            expected2
        );
        // RFC 4231, test case 6: 131-byte key, hashed first.
        let key6 = [0xaau8; 131];
        let msg6 = b"Test Using Larger Than Block-Size Key - Hash Key First";
        let expected6 = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
        assert_eq!(hmac_ref(&key6, msg6).to_vec(), unhex(expected6));
        assert_eq!(
            DigestKey::from_bytes(&key6).unwrap().mac(&[msg6]).to_hex(),
            expected6
        );
    }

    #[test]
    fn digest_layout_is_plain_hmac() {
        let raw = [0x5au8; 40];
        let key = DigestKey::from_bytes(&raw).unwrap();
        let t = Token::generate(&mut rng(12));
        let mut msg = b"afiliado/v1/reset\0".to_vec();
        msg.extend_from_slice(t.expose_secret().as_bytes());
        assert_eq!(
            key.digest_token(TokenPurpose::Reset, &t).as_bytes(),
            &hmac_ref(&raw, &msg)
        );

        let c = NumericCode::parse("012345", 6).unwrap();
        let msg = b"afiliado/v1/activation_code\x00acct-1\x00012345";
        assert_eq!(
            key.digest_code(TokenPurpose::ActivationCode, "acct-1", &c)
                .as_bytes(),
            &hmac_ref(&raw, msg)
        );
    }

    #[test]
    fn digests_separate_purpose_account_and_key() {
        let mut r = rng(13);
        let k1 = DigestKey::generate(&mut r);
        let k2 = DigestKey::generate(&mut r);
        let t = Token::generate(&mut r);
        let purposes = [
            TokenPurpose::Activation,
            TokenPurpose::ActivationCode,
            TokenPurpose::Unlock,
            TokenPurpose::Reset,
        ];
        let by_purpose: HashSet<Digest> =
            purposes.iter().map(|&p| k1.digest_token(p, &t)).collect();
        assert_eq!(by_purpose.len(), 4);
        assert_ne!(
            k1.digest_token(TokenPurpose::Reset, &t),
            k2.digest_token(TokenPurpose::Reset, &t)
        );
        assert_eq!(
            k1.digest_token(TokenPurpose::Reset, &t),
            k1.clone().digest_token(
                TokenPurpose::Reset,
                &Token::parse(t.expose_secret()).unwrap()
            )
        );
        let t2 = Token::generate(&mut r);
        assert_ne!(
            k1.digest_token(TokenPurpose::Reset, &t),
            k1.digest_token(TokenPurpose::Reset, &t2)
        );

        let c = NumericCode::generate(6, &mut r).unwrap();
        let p = TokenPurpose::ActivationCode;
        let d = k1.digest_code(p, "alice", &c);
        assert_eq!(
            d,
            k1.digest_code(
                p,
                "alice",
                &NumericCode::parse(c.expose_secret(), 6).unwrap()
            )
        );
        assert_ne!(d, k1.digest_code(p, "bob", &c));
        assert_ne!(d, k1.digest_code(TokenPurpose::Unlock, "alice", &c));
        assert_ne!(d, k2.digest_code(p, "alice", &c));
        let other = if c.expose_secret() == "000000" {
            "000001"
        } else {
            "000000"
        };
        assert_ne!(
            d,
            k1.digest_code(p, "alice", &NumericCode::parse(other, 6).unwrap())
        );
        // Moving the separator between account and code changes the digest.
        let c5 = NumericCode::parse("12345", 5).unwrap();
        let c4 = NumericCode::parse("2345", 4).unwrap();
        assert_ne!(k1.digest_code(p, "a", &c5), k1.digest_code(p, "a1", &c4));
    }

    #[test]
    fn digest_key_length_rules() {
        assert_eq!(
            DigestKey::from_bytes(&[1; 31]).unwrap_err(),
            CryptoError::KeyTooShort { min: 32, found: 31 }
        );
        assert!(DigestKey::from_bytes(&[]).is_err());
        assert!(DigestKey::from_bytes(&[1; 32]).is_ok());
        assert!(DigestKey::from_bytes(&[1; 64]).is_ok());
        assert!(DigestKey::from_bytes(&[1; 200]).is_ok());
        // A generated key is a plain 32-byte HMAC key.
        let mut a = rng(14);
        let mut b = rng(14);
        let key = DigestKey::generate(&mut a);
        let mut raw = [0u8; 32];
        b.fill_bytes(&mut raw);
        assert_eq!(key.mac(&[b"m"]).as_bytes(), &hmac_ref(&raw, b"m"));
    }

    #[test]
    fn digest_constant_time_eq_and_hash() {
        let a = Digest::from_bytes([1; 32]);
        let b = Digest::from_bytes([1; 32]);
        let mut c_bytes = [1; 32];
        c_bytes[31] = 2;
        let c = Digest::from_bytes(c_bytes);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(bool::from(a.ct_eq(&b)));
        assert!(!bool::from(a.ct_eq(&c)));
        let set: HashSet<Digest> = [a, b, c].into_iter().collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn digest_hex_and_serde() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(0xab);
        }
        let d = Digest::from_bytes(bytes);
        let hex = d.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(hex.starts_with("abd0f5"));
        assert_eq!(Digest::from_hex(&hex).unwrap(), d);
        assert_eq!(Digest::from_hex(&hex.to_uppercase()).unwrap(), d);
        assert_eq!(format!("{d:?}"), format!("Digest({}…)", &hex[..8]));

        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{hex}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);

        for bad in [
            String::new(),
            hex[..63].to_owned(),
            format!("{hex}0"),
            format!("{}g", &hex[..63]),
            format!("{}é", &hex[..62]),
            format!(" {}", &hex[..63]),
        ] {
            assert_eq!(
                Digest::from_hex(&bad),
                Err(CryptoError::MalformedDigest),
                "{bad}"
            );
            assert!(serde_json::from_str::<Digest>(&format!("\"{bad}\"")).is_err());
        }
        assert!(serde_json::from_str::<Digest>("42").is_err());
    }

    #[test]
    fn purpose_labels_and_serde() {
        for (p, s) in [
            (TokenPurpose::Activation, "activation"),
            (TokenPurpose::ActivationCode, "activation_code"),
            (TokenPurpose::Unlock, "unlock"),
            (TokenPurpose::Reset, "reset"),
        ] {
            assert_eq!(p.as_str(), s);
            assert_eq!(p.to_string(), s);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{s}\""));
            assert_eq!(
                serde_json::from_str::<TokenPurpose>(&format!("\"{s}\"")).unwrap(),
                p
            );
        }
    }

    // ----- redaction ---------------------------------------------------------

    #[test]
    fn debug_never_shows_secrets() {
        let mut r = rng(15);

        let t = Token::generate(&mut r);
        let dbg = format!("{t:?} {t:#?}");
        assert_eq!(format!("{t:?}"), "Token([REDACTED])");
        assert!(!dbg.contains(t.expose_secret()));
        assert!(!dbg.contains(&t.expose_secret()[..8]));

        let code = NumericCode::parse("987654", 6).unwrap();
        let dbg = format!("{code:?} {code:#?}");
        assert!(!dbg.contains("987654") && !dbg.contains("9876"), "{dbg}");
        assert_eq!(format!("{code:?}"), "NumericCode([REDACTED])");

        let key = DigestKey::from_bytes(&[0x41; 32]).unwrap();
        let dbg = format!("{key:?} {key:#?}");
        assert!(
            !dbg.contains("AAAA") && !dbg.contains("4141") && !dbg.contains("65"),
            "{dbg}"
        );
        assert_eq!(format!("{key:?}"), "DigestKey([REDACTED])");

        let h = hash_password(b"planted-password", &fast(), &mut r).unwrap();
        let fields: Vec<&str> = h.as_str().split('$').collect();
        let (salt, out) = (fields[4], fields[5]);
        let dbg = format!("{h:?} {h:#?}");
        assert_eq!(
            format!("{h:?}"),
            r#"PasswordHash { alg: "argon2id", params: "m=8,t=1,p=1" }"#
        );
        for secret in [salt, out, &salt[..8], &out[..8], "planted-password"] {
            assert!(!dbg.contains(secret), "{dbg}");
        }

        let dummy = DummyHash::new(&fast(), &mut r).unwrap();
        let fields: Vec<&str> = dummy.hash.as_str().split('$').collect();
        let dbg = format!("{dummy:?} {dummy:#?}");
        assert!(dbg.contains("argon2id"), "{dbg}");
        for secret in [fields[4], fields[5], &fields[4][..8], &fields[5][..8]] {
            assert!(!dbg.contains(secret), "{dbg}");
        }
    }

    // ----- properties --------------------------------------------------------

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn token_round_trip(seed: u64) {
                let t = Token::generate(&mut rng(seed));
                let p = Token::parse(t.expose_secret()).unwrap();
                prop_assert_eq!(p.expose_secret(), t.expose_secret());
            }

            #[test]
            fn token_parse_never_panics(s in ".{0,64}") {
                let _ = Token::parse(&s);
            }

            #[test]
            fn arbitrary_32_bytes_encode_to_valid_tokens(bytes: [u8; 32]) {
                let s = URL_SAFE_NO_PAD.encode(bytes);
                prop_assert!(Token::parse(&s).is_ok());
            }

            #[test]
            fn code_parse_ignores_whitespace(code in "[0-9]{4,10}", spaces in proptest::collection::vec(0usize..12, 0..4)) {
                let digits = u8::try_from(code.len()).unwrap();
                let mut typed = code.clone();
                for at in spaces {
                    typed.insert(at.min(typed.len()), ' ');
                }
                let parsed = NumericCode::parse(&typed, digits).unwrap();
                prop_assert_eq!(parsed.expose_secret(), code.as_str());
            }

            #[test]
            fn code_parse_never_panics(s in ".{0,24}", digits: u8) {
                let _ = NumericCode::parse(&s, digits);
            }

            #[test]
            fn digest_hex_round_trip(bytes: [u8; 32]) {
                let d = Digest::from_bytes(bytes);
                prop_assert_eq!(Digest::from_hex(&d.to_hex()).unwrap(), d);
            }

            #[test]
            fn digest_from_hex_never_panics(s in ".{0,70}") {
                let _ = Digest::from_hex(&s);
            }

            #[test]
            fn legacy_hash_parse_never_panics(s in "(\\$2[abxy]?\\$[0-9]{0,3}\\$[./A-Za-z0-9]{50,55}|pbkdf2_sha256\\$[0-9]{0,25}\\$[!-~]{0,10}\\$[A-Za-z0-9+/=]{40,48}|sha256\\$[!-~]{0,10}\\$[0-9a-fA-Z]{60,66})") {
                if let Ok(h) = PasswordHash::parse(&s) {
                    prop_assert!(h.is_legacy());
                    prop_assert!(needs_rehash(&h, &HashParams::OWASP));
                    let dbg = format!("{h:?}");
                    prop_assert!(!dbg.contains(&s[s.len() - 20..]), "{}", dbg);
                }
            }

            #[test]
            fn password_hash_parse_never_panics(s in "\\$[a-z0-9-]{1,10}(\\$v=[0-9]{1,3})?\\$[a-z]=[0-9]{1,11}(,[a-z]=[0-9]{1,11}){0,3}\\$[A-Za-z0-9+/]{0,24}\\$[A-Za-z0-9+/]{0,48}") {
                if let Ok(h) = PasswordHash::parse(&s) {
                    let _ = h.params();
                    let _ = needs_rehash(&h, &HashParams::OWASP);
                    let _ = format!("{h:?}");
                }
            }
        }
    }
}

#[cfg(test)]
mod pseudonym_tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_hide_their_input() {
        let a = DigestKey::from_bytes(&[1u8; 32]).unwrap();
        let b = DigestKey::from_bytes(&[2u8; 32]).unwrap();
        let p = a.pseudonym("outbox", &["1710034065", "3", "0"]);
        assert_eq!(p, a.pseudonym("outbox", &["1710034065", "3", "0"]));
        assert_ne!(p, a.pseudonym("outbox", &["1710034065", "3", "1"]));
        assert_ne!(p, a.pseudonym("other", &["1710034065", "3", "0"]));
        assert_ne!(p, b.pseudonym("outbox", &["1710034065", "3", "0"]));
        // Part boundaries matter: ("ab","c") and ("a","bc") differ.
        assert_ne!(
            a.pseudonym("x", &["ab", "c"]),
            a.pseudonym("x", &["a", "bc"])
        );
        assert!(!p.to_hex().contains("1710034065"));
    }
}
