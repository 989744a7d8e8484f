//! [`mockall`] mocks of every port, for hosts' own tests and fault injection (feature `mock`).
//!
//! | Port | Mock |
//! |------|------|
//! | [`AccountStore`] | [`MockAccountStore`] |
//! | [`MemberDirectory`] | [`MockMemberDirectory`] |
//! | [`Mailer`] | [`MockMailer`] |
//! | [`HumanCheck`] | [`MockHumanCheck`] |
//! | [`Clock`] | [`MockClock`] |
//! | `PasswordHasher` (feature `service`) | `MockPasswordHasher` |
//!
//! Each mock is an ordinary `mockall` mock: set expectations with `expect_<method>()`, then
//! hand it to the service as `Arc<dyn Port>`. The async ports are `#[async_trait]` traits, so
//! an expectation returns the plain value (`Ok(..)`), not a future. An expectation can also
//! delegate to a real adapter (for example `afiliado::memory::MemoryStore`) to
//! fail only the one call a test is about.
//!
//! Unmet or unexpected calls panic, so a test that passes has made exactly the calls its
//! expectations allow.
//!
//! # Example
//!
//! A store that is down: every load fails with [`StoreError::Unavailable`].
//!
//! ```
//! use std::sync::Arc;
//!
//! use afiliado::MemberId;
//! use afiliado::mock::MockAccountStore;
//! use afiliado::ports::{AccountStore, StoreError};
//!
//! let mut store = MockAccountStore::new();
//! store
//!     .expect_load()
//!     .times(1)
//!     .returning(|_| Err(StoreError::Unavailable("database down".into())));
//! let store: Arc<dyn AccountStore> = Arc::new(store);
//!
//! let member: MemberId = "1710034065".parse()?;
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let answer = runtime.block_on(store.load(&member));
//! assert_eq!(answer, Err(StoreError::Unavailable("database down".into())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use async_trait::async_trait;
use mockall::mock;
use time::OffsetDateTime;

use crate::core::{AccountRecord, AuditEvent};
use crate::crypto::{Digest, TokenPurpose};
use crate::identity::MemberId;
use crate::ports::{
    AccountStore, Clock, HumanCheck, Mail, MailError, Mailer, MemberDirectory, MemberFacts,
    NewMessage, OutboxMessage, StoreError,
};
#[cfg(feature = "service")]
use crate::{
    crypto::{CryptoError, PasswordHash},
    service::PasswordHasher,
};

mock! {
    /// A mock [`AccountStore`]: records, outbox and audit log.
    pub AccountStore {}

    #[async_trait]
    impl AccountStore for AccountStore {
        async fn load(&self, member: &MemberId) -> Result<Option<AccountRecord>, StoreError>;
        async fn load_by_token(
            &self,
            purpose: TokenPurpose,
            digest: &Digest,
        ) -> Result<Option<AccountRecord>, StoreError>;
        async fn commit(
            &self,
            record: &AccountRecord,
            expected_version: u64,
            outbox: Vec<NewMessage>,
            audit: Vec<AuditEvent>,
        ) -> Result<u64, StoreError>;
        async fn claim_due(
            &self,
            now: OffsetDateTime,
            lease: time::Duration,
            limit: usize,
        ) -> Result<Vec<OutboxMessage>, StoreError>;
        async fn mark_sent(&self, id: u64, now: OffsetDateTime) -> Result<(), StoreError>;
        async fn retry_later(&self, id: u64, at: OffsetDateTime) -> Result<(), StoreError>;
        async fn dead_letter(
            &self,
            id: u64,
            now: OffsetDateTime,
            reason: &str,
        ) -> Result<(), StoreError>;
        async fn audit_log(&self, member: &MemberId) -> Result<Vec<AuditEvent>, StoreError>;
        async fn expired_pending(
            &self,
            now: OffsetDateTime,
            limit: usize,
        ) -> Result<Vec<AccountRecord>, StoreError>;
        async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
    }
}

mock! {
    /// A mock [`MemberDirectory`]: the institution's member registry.
    pub MemberDirectory {}

    #[async_trait]
    impl MemberDirectory for MemberDirectory {
        async fn find(&self, member: &MemberId) -> Result<Option<MemberFacts>, StoreError>;
        async fn enroll(&self, facts: MemberFacts) -> Result<(), StoreError>;
    }
}

mock! {
    /// A mock [`Mailer`]: fail sends with [`MailError::Transient`] or
    /// [`MailError::Permanent`] to exercise the outbox.
    pub Mailer {}

    #[async_trait]
    impl Mailer for Mailer {
        async fn send(&self, mail: &Mail) -> Result<(), MailError>;
    }
}

mock! {
    /// A mock [`HumanCheck`] (CAPTCHA verifier).
    pub HumanCheck {}

    #[async_trait]
    impl HumanCheck for HumanCheck {
        async fn verify(&self, response: &str) -> Result<bool, StoreError>;
    }
}

mock! {
    /// A mock [`Clock`]. For plain virtual time [`ManualClock`](crate::ports::ManualClock) is
    /// usually simpler; this one can assert how often the clock is read.
    pub Clock {}

    impl Clock for Clock {
        fn now(&self) -> OffsetDateTime;
    }
}

// The `Clock` and `PasswordHasher` traits require `Debug`; expectations print nothing useful.
impl std::fmt::Debug for MockClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockClock")
    }
}

#[cfg(feature = "service")]
mock! {
    /// A mock `PasswordHasher` (feature `service`): count or fail hashes and verifications.
    pub PasswordHasher {}

    impl PasswordHasher for PasswordHasher {
        fn hash(&self, password: &[u8]) -> Result<PasswordHash, CryptoError>;
        fn verify(&self, password: &[u8], hash: &PasswordHash) -> Result<bool, CryptoError>;
        fn verify_dummy(&self, password: &[u8]) -> bool;
        fn needs_rehash(&self, hash: &PasswordHash) -> bool;
        fn params(&self) -> crate::crypto::HashParams;
    }
}

#[cfg(feature = "service")]
impl std::fmt::Debug for MockPasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockPasswordHasher")
    }
}
