//! Secrets that travel with a link-bearing notice through the outbox, sealed so that the
//! store never holds them in clear.

use std::fmt;

use chacha20poly1305::aead::{AeadInPlace as _, KeyInit as _};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use rand::CryptoRng;
use secrecy::{ExposeSecret as _, ExposeSecretMut as _, SecretBox};
use zeroize::{Zeroize as _, Zeroizing};

use crate::crypto::{NumericCode, Token, TokenError};

/// The link token (and code) a mail carries. Only the outbox dispatcher opens them, right
/// before rendering the mail.
#[derive(Clone)]
#[non_exhaustive]
pub struct LinkSecrets {
    /// The link token (activation, unlock or reset).
    pub token: Token,
    /// The activation code, when the policy uses one.
    pub code: Option<NumericCode>,
}

impl LinkSecrets {
    /// Secrets for one mail.
    pub fn new(token: Token, code: Option<NumericCode>) -> Self {
        Self { token, code }
    }
}

impl fmt::Debug for LinkSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSecrets([REDACTED])")
    }
}

// ---------------------------------------------------------------------------
// Sealing
// ---------------------------------------------------------------------------

/// Why a [`SealKey`] could not be built or sealed secrets could not be opened.
///
/// Messages state which check failed, never the key, the secrets or the sealed bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A [`SealKey`] was built from a slice that is not exactly 32 bytes long.
    #[error("seal key must be exactly {expected} bytes, {found} were given")]
    InvalidKeyLength {
        /// Required length in bytes.
        expected: usize,
        /// Length supplied, in bytes.
        found: usize,
    },
    /// The sealed bytes are shorter than the smallest possible sealed payload.
    #[error("sealed secrets truncated: at least {min} bytes are required, {found} were given")]
    Truncated {
        /// Minimum length in bytes.
        min: usize,
        /// Length supplied, in bytes.
        found: usize,
    },
    /// The sealed bytes start with a format version this crate does not know.
    #[error("unsupported sealed-secrets version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// Authentication failed: wrong key, wrong associated data, or the sealed bytes
    /// were altered.
    #[error("sealed secrets failed authentication (wrong key, wrong associated data or tampering)")]
    Authentication,
    /// The authenticated plaintext is not a valid encoding of [`LinkSecrets`].
    #[error("sealed secrets are malformed")]
    Malformed,
    /// The authenticated token or code was rejected by its parser.
    #[error("sealed secrets hold an invalid token or code: {0}")]
    InvalidSecret(#[source] TokenError),
}

/// Version byte of the sealed format produced by [`SealKey::seal`].
const SEAL_VERSION: u8 = 1;
/// Version byte of the plaintext encoding inside the AEAD.
const PLAINTEXT_VERSION: u8 = 1;
/// ChaCha20-Poly1305 nonce length, in bytes.
const NONCE_LEN: usize = 12;
/// Poly1305 tag length, in bytes.
const TAG_LEN: usize = 16;
/// Length of the clear header: version byte and nonce.
const HEADER_LEN: usize = 1 + NONCE_LEN;

/// The server's secret key for sealing [`LinkSecrets`] into outbox payloads with
/// ChaCha20-Poly1305 (RFC 8439).
///
/// [`SealKey::seal`] produces `0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)`
/// with a fresh random nonce per call. The AEAD associated data is the version byte
/// followed by the caller's `aad` (the outbox idempotency key), so a payload only opens
/// for the message it was sealed for. The plaintext is
/// `0x01 || token || 0x00 || code digits` (no digits when there is no code) and is wiped
/// after use.
///
/// The key lives in a zeroize-on-drop box; `Debug` prints `SealKey([REDACTED])`.
///
/// ```
/// use afiliado::crypto::{NumericCode, Token};
/// use afiliado::seal::{LinkSecrets, SealKey};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
/// let key = SealKey::generate(&mut rng);
/// let token = Token::generate(&mut rng);
/// let code = NumericCode::generate(6, &mut rng)?;
/// let secrets = LinkSecrets::new(token.clone(), Some(code.clone()));
///
/// let sealed = key.seal(&secrets, b"outbox-key-42", &mut rng);
/// let opened = key.open(&sealed, b"outbox-key-42")?;
/// assert_eq!(opened.token.expose_secret(), token.expose_secret());
/// assert_eq!(opened.code.map(|c| c.expose_secret().to_owned()), Some(code.expose_secret().to_owned()));
///
/// // Bound to its message: another idempotency key does not open it.
/// assert!(key.open(&sealed, b"outbox-key-43").is_err());
/// // An empty payload means "no secrets".
/// assert!(key.open_optional(&[], b"outbox-key-42")?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SealKey {
    key: SecretBox<[u8; SealKey::LEN]>,
}

impl SealKey {
    /// Key length, in bytes.
    pub const LEN: usize = 32;

    /// Builds a key from secret bytes (e.g. decoded from configuration).
    ///
    /// # Errors
    ///
    /// [`SealError::InvalidKeyLength`] unless exactly 32 bytes are given.
    pub fn from_bytes(key: &[u8]) -> Result<Self, SealError> {
        if key.len() != Self::LEN {
            return Err(SealError::InvalidKeyLength {
                expected: Self::LEN,
                found: key.len(),
            });
        }
        let mut boxed = SecretBox::new(Box::new([0u8; Self::LEN]));
        boxed.expose_secret_mut().copy_from_slice(key);
        Ok(SealKey { key: boxed })
    }

    /// Draws a fresh key from `rng`.
    #[must_use]
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut boxed = SecretBox::new(Box::new([0u8; Self::LEN]));
        rng.fill_bytes(boxed.expose_secret_mut());
        SealKey { key: boxed }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        // The cipher keeps its own copy of the key and wipes it on drop.
        ChaCha20Poly1305::new(Key::from_slice(self.key.expose_secret()))
    }

    /// Seals `secrets`, bound to `aad`, under a fresh 12-byte nonce drawn from `rng`.
    ///
    /// The result is never empty, so an empty payload can stand for "no secrets"
    /// (see [`SealKey::open_optional`]). Sealing the same secrets twice gives different
    /// bytes.
    #[must_use]
    pub fn seal<R: CryptoRng + ?Sized>(
        &self,
        secrets: &LinkSecrets,
        aad: &[u8],
        rng: &mut R,
    ) -> Vec<u8> {
        let token = secrets.token.expose_secret().as_bytes();
        let code = secrets
            .code
            .as_ref()
            .map_or(&[][..], |c| c.expose_secret().as_bytes());
        let plain_len = 1 + token.len() + 1 + code.len();

        // Capacity is reserved up front so the buffer never reallocates and never
        // leaves a copy of the plaintext behind; the plaintext is encrypted in place.
        let mut out = Vec::with_capacity(HEADER_LEN + plain_len + TAG_LEN);
        out.push(SEAL_VERSION);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        out.push(PLAINTEXT_VERSION);
        out.extend_from_slice(token);
        out.push(0);
        out.extend_from_slice(code);

        let full_aad = associated_data(aad);
        let body = out.get_mut(HEADER_LEN..).unwrap_or_default();
        match self
            .cipher()
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &full_aad, body)
        {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                out
            }
            Err(_) => {
                // Unreachable: the plaintext is far below the 256 GiB limit of
                // ChaCha20-Poly1305. Never hand out a partially processed buffer.
                out.zeroize();
                Vec::new()
            }
        }
    }

    /// Opens bytes produced by [`SealKey::seal`] with the same key and `aad`.
    ///
    /// # Errors
    ///
    /// [`SealError::Truncated`] for input too short to be sealed secrets (including
    /// empty input: use [`SealKey::open_optional`] when empty means "none"),
    /// [`SealError::UnsupportedVersion`] for an unknown version byte,
    /// [`SealError::Authentication`] for a wrong key, wrong `aad` or altered bytes,
    /// [`SealError::Malformed`] or [`SealError::InvalidSecret`] if the authenticated
    /// content does not decode to a valid token and code.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<LinkSecrets, SealError> {
        let min = HEADER_LEN + TAG_LEN;
        let (&version, _) = sealed.split_first().ok_or(SealError::Truncated {
            min,
            found: sealed.len(),
        })?;
        if version != SEAL_VERSION {
            return Err(SealError::UnsupportedVersion { version });
        }
        if sealed.len() < min {
            return Err(SealError::Truncated {
                min,
                found: sealed.len(),
            });
        }
        let (header, rest) = sealed.split_at(HEADER_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce = header.get(1..).ok_or(SealError::Malformed)?;

        let mut plain = Zeroizing::new(ciphertext.to_vec());
        self.cipher()
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &associated_data(aad),
                plain.as_mut_slice(),
                Tag::from_slice(tag),
            )
            .map_err(|_| SealError::Authentication)?;
        decode(&plain)
    }

    /// Like [`SealKey::open`], but an empty `sealed` slice means "no secrets" and gives
    /// `Ok(None)`.
    ///
    /// # Errors
    ///
    /// As [`SealKey::open`], for non-empty input.
    pub fn open_optional(
        &self,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Option<LinkSecrets>, SealError> {
        if sealed.is_empty() {
            Ok(None)
        } else {
            self.open(sealed, aad).map(Some)
        }
    }
}

/// AEAD associated data: the format version, then the caller's binding.
fn associated_data(aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(1 + aad.len());
    full.push(SEAL_VERSION);
    full.extend_from_slice(aad);
    full
}

/// Decodes `0x01 || token || 0x00 || code digits`.
fn decode(plain: &[u8]) -> Result<LinkSecrets, SealError> {
    let (&version, body) = plain.split_first().ok_or(SealError::Malformed)?;
    if version != PLAINTEXT_VERSION {
        return Err(SealError::Malformed);
    }
    let sep = body
        .iter()
        .position(|&b| b == 0)
        .ok_or(SealError::Malformed)?;
    let (token, code) = body.split_at(sep);
    let code = code.get(1..).ok_or(SealError::Malformed)?;
    let token = std::str::from_utf8(token).map_err(|_| SealError::Malformed)?;
    let code = std::str::from_utf8(code).map_err(|_| SealError::Malformed)?;

    let token = Token::parse(token).map_err(SealError::InvalidSecret)?;
    let code = if code.is_empty() {
        None
    } else {
        let digits = u8::try_from(code.len()).map_err(|_| SealError::Malformed)?;
        Some(NumericCode::parse(code, digits).map_err(SealError::InvalidSecret)?)
    };
    Ok(LinkSecrets { token, code })
}

impl Clone for SealKey {
    fn clone(&self) -> Self {
        let mut boxed = SecretBox::new(Box::new([0u8; Self::LEN]));
        boxed
            .expose_secret_mut()
            .copy_from_slice(self.key.expose_secret());
        SealKey { key: boxed }
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey([REDACTED])")
    }
}
