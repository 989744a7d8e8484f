//! Secrets that travel with a link-bearing notice through the outbox, sealed so that the
//! store never holds them in clear.

use std::fmt;

use crate::crypto::{NumericCode, Token};

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
