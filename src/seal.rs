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
    /// The payload was sealed under a key that is not among the keys given (after a key
    /// rotation, the old key must stay listed until every message sealed with it is sent).
    #[error("sealed under key {id}, which is not configured")]
    UnknownKey {
        /// The key id found in the payload.
        id: KeyId,
    },
    /// Key text that is not standard or URL-safe base64 of the right length.
    #[error("key text is not base64 of a {expected}-byte key")]
    InvalidKeyText {
        /// Required length in bytes.
        expected: usize,
    },
}

pub use crate::crypto::KeyId;

/// Decodes key text: standard or URL-safe base64, padded or not, surrounding whitespace
/// ignored. The decoded bytes are wiped after use.
pub(crate) fn decode_key_text(text: &str, expected: usize) -> Option<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .map(Zeroizing::new)
        .filter(|bytes| bytes.len() == expected)
}

/// Version byte of the first sealed format (no key id); still opened.
const SEAL_VERSION_1: u8 = 1;
/// Version byte of the sealed format produced by [`SealKey::seal`]: it names its key.
const SEAL_VERSION: u8 = 2;
/// Key id length, in bytes.
const KEY_ID_LEN: usize = 4;
/// Version byte of the plaintext encoding inside the AEAD.
const PLAINTEXT_VERSION: u8 = 1;
/// ChaCha20-Poly1305 nonce length, in bytes.
const NONCE_LEN: usize = 12;
/// Poly1305 tag length, in bytes.
const TAG_LEN: usize = 16;
/// Length of the clear header of version 1: version byte and nonce.
const HEADER_LEN_1: usize = 1 + NONCE_LEN;
/// Length of the clear header: version byte, key id and nonce.
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// The server's secret key for sealing [`LinkSecrets`] into outbox payloads with
/// ChaCha20-Poly1305 (RFC 8439).
///
/// [`SealKey::seal`] produces `0x02 || key id (4 bytes) || nonce (12 bytes) || ciphertext ||
/// tag (16 bytes)` with a fresh random nonce per call. The AEAD associated data is the
/// version byte and key id followed by the caller's `aad` (the outbox idempotency key), so a
/// payload only opens for the message it was sealed for. Payloads of the first format
/// (`0x01 || nonce || …`, no key id) still open. To rotate keys, seal with the new key and
/// open with a [`SealKeys`] that still lists the old one. The plaintext is
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

    /// A fresh key from the operating system's random generator.
    #[must_use]
    pub fn random() -> Self {
        #[allow(clippy::disallowed_methods)] // keys come from the OS-seeded RNG
        let mut rng = rand::rng();
        Self::generate(&mut rng)
    }

    /// A key from its text form: 32 bytes in base64 (standard or URL-safe, padding
    /// optional), as produced by `openssl rand -base64 32`. Keep it in a secret store or a
    /// file readable only by the service, never in the repository.
    ///
    /// ```
    /// use afiliado::seal::SealKey;
    ///
    /// let key = SealKey::from_base64("q0jT2lUjl0M4Bdg8o3zJ8sXbwqGk9Xp3KfQyWnH1tE4=")?;
    /// assert_eq!(key.id().to_string().len(), 8);
    /// assert!(SealKey::from_base64("too short").is_err());
    /// # Ok::<(), afiliado::seal::SealError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SealError::InvalidKeyText`] when the text is not base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = decode_key_text(text, Self::LEN).ok_or(SealError::InvalidKeyText {
            expected: Self::LEN,
        })?;
        Self::from_bytes(&bytes)
    }

    /// The key's public name (see [`KeyId`]).
    pub fn id(&self) -> KeyId {
        KeyId::of(b"seal", self.key.expose_secret())
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
        let id = self.id().as_bytes();
        out.push(SEAL_VERSION);
        out.extend_from_slice(&id);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        out.push(PLAINTEXT_VERSION);
        out.extend_from_slice(token);
        out.push(0);
        out.extend_from_slice(code);

        let full_aad = associated_data(SEAL_VERSION, &id, aad);
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
        let parsed = Sealed::parse(sealed)?;
        if let Some(id) = parsed.key_id {
            if id != self.id() {
                return Err(SealError::UnknownKey { id });
            }
        }
        parsed.open_with(self, aad)
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

/// A sealed payload split into its parts.
struct Sealed<'a> {
    version: u8,
    key_id: Option<KeyId>,
    nonce: &'a [u8],
    ciphertext: &'a [u8],
    tag: &'a [u8],
}

impl<'a> Sealed<'a> {
    fn parse(sealed: &'a [u8]) -> Result<Self, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError::Truncated {
            min: HEADER_LEN_1 + TAG_LEN,
            found: 0,
        })?;
        let (key_id, rest) = match version {
            SEAL_VERSION_1 => (None, rest),
            SEAL_VERSION => {
                let (id, rest) =
                    rest.split_first_chunk::<KEY_ID_LEN>()
                        .ok_or(SealError::Truncated {
                            min: HEADER_LEN + TAG_LEN,
                            found: sealed.len(),
                        })?;
                (Some(KeyId(*id)), rest)
            }
            version => return Err(SealError::UnsupportedVersion { version }),
        };
        if rest.len() < NONCE_LEN + TAG_LEN {
            let header = sealed.len() - rest.len();
            return Err(SealError::Truncated {
                min: header + NONCE_LEN + TAG_LEN,
                found: sealed.len(),
            });
        }
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        Ok(Self {
            version,
            key_id,
            nonce,
            ciphertext,
            tag,
        })
    }

    fn open_with(&self, key: &SealKey, aad: &[u8]) -> Result<LinkSecrets, SealError> {
        let id = self.key_id.map(|k| k.as_bytes());
        let full_aad = associated_data(self.version, id.as_ref().map_or(&[][..], |i| &i[..]), aad);
        let mut plain = Zeroizing::new(self.ciphertext.to_vec());
        key.cipher()
            .decrypt_in_place_detached(
                Nonce::from_slice(self.nonce),
                &full_aad,
                plain.as_mut_slice(),
                Tag::from_slice(self.tag),
            )
            .map_err(|_| SealError::Authentication)?;
        decode(&plain)
    }
}

/// AEAD associated data: the format version and key id, then the caller's binding.
fn associated_data(version: u8, key_id: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(1 + key_id.len() + aad.len());
    full.push(version);
    full.extend_from_slice(key_id);
    full.extend_from_slice(aad);
    full
}

/// The seal keys of a deployment: the current one, which seals, and older ones that still
/// open what they sealed (so a key rotation loses no queued mail).
///
/// ```
/// use afiliado::crypto::Token;
/// use afiliado::seal::{LinkSecrets, SealError, SealKey, SealKeys};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
/// let (old, new) = (SealKey::generate(&mut rng), SealKey::generate(&mut rng));
/// let secrets = LinkSecrets::new(Token::generate(&mut rng), None);
/// let queued = old.seal(&secrets, b"k1", &mut rng); // queued before the rotation
///
/// let keys = SealKeys::new(new.clone()).with_older(old);
/// assert!(keys.open_optional(&queued, b"k1")?.is_some());
/// // Without the old key the message names the key it needs.
/// let err = SealKeys::new(new).open_optional(&queued, b"k1").unwrap_err();
/// assert!(matches!(err, SealError::UnknownKey { .. }));
/// # Ok::<(), SealError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SealKeys {
    current: SealKey,
    older: Vec<SealKey>,
}

impl SealKeys {
    /// Only `current`.
    pub fn new(current: SealKey) -> Self {
        Self {
            current,
            older: Vec::new(),
        }
    }

    /// Also opens what `older` sealed.
    #[must_use]
    pub fn with_older(mut self, older: SealKey) -> Self {
        self.older.push(older);
        self
    }

    /// The key that seals.
    pub fn current(&self) -> &SealKey {
        &self.current
    }

    /// Every key, current first.
    pub fn all(&self) -> impl Iterator<Item = &SealKey> {
        std::iter::once(&self.current).chain(&self.older)
    }

    /// Opens a payload sealed under any listed key; an empty payload means "no secrets".
    ///
    /// # Errors
    ///
    /// [`SealError::UnknownKey`] when it names a key that is not listed; otherwise as
    /// [`SealKey::open`]. A first-format payload (no key id) is tried with every key.
    pub fn open_optional(
        &self,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Option<LinkSecrets>, SealError> {
        if sealed.is_empty() {
            return Ok(None);
        }
        let parsed = Sealed::parse(sealed)?;
        match parsed.key_id {
            Some(id) => {
                let key = self
                    .all()
                    .find(|k| k.id() == id)
                    .ok_or(SealError::UnknownKey { id })?;
                parsed.open_with(key, aad).map(Some)
            }
            None => {
                let mut last = SealError::Authentication;
                for key in self.all() {
                    match parsed.open_with(key, aad) {
                        Ok(secrets) => return Ok(Some(secrets)),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }
}

impl From<SealKey> for SealKeys {
    fn from(current: SealKey) -> Self {
        Self::new(current)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Token;
    use rand::SeedableRng;

    /// A payload of the first format (`0x01 || nonce || ciphertext || tag`, no key id), as
    /// the previous release sealed it.
    fn seal_first_format(key: &SealKey, secrets: &LinkSecrets, aad: &[u8]) -> Vec<u8> {
        let nonce = [7u8; NONCE_LEN];
        let mut body = vec![PLAINTEXT_VERSION];
        body.extend_from_slice(secrets.token.expose_secret().as_bytes());
        body.push(0);
        let tag = key
            .cipher()
            .encrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                &associated_data(SEAL_VERSION_1, &[], aad),
                &mut body,
            )
            .expect("seal");
        let mut out = vec![SEAL_VERSION_1];
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        out.extend_from_slice(&tag);
        out
    }

    #[test]
    fn payloads_of_the_first_format_still_open_with_any_listed_key() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (old, new) = (SealKey::generate(&mut rng), SealKey::generate(&mut rng));
        let secrets = LinkSecrets::new(Token::generate(&mut rng), None);
        let queued = seal_first_format(&old, &secrets, b"k");
        assert!(old.open(&queued, b"k").is_ok());
        let keys = SealKeys::new(new.clone()).with_older(old);
        let opened = keys.open_optional(&queued, b"k").unwrap().unwrap();
        assert_eq!(opened.token.expose_secret(), secrets.token.expose_secret());
        assert_eq!(
            SealKeys::new(new).open_optional(&queued, b"k").unwrap_err(),
            SealError::Authentication
        );
    }
}
