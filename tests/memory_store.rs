//! The storage contract (the storage contract) on the in-memory adapters, through the shared
//! conformance suite (`afiliado::conformance`), plus what only the memory adapters have:
//! the outbox snapshot, the directory builder, the mailer, and the small ports (clock, human
//! check).
#![cfg(feature = "memory")]
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use afiliado::core::{Locale, Notice, NoticeKind};
use afiliado::memory::{MemoryDirectory, MemoryMailer, MemoryStore};
use afiliado::ports::{
    AccountStore, AlwaysPass, Clock, HumanCheck, Mail, MailError, Mailer, ManualClock,
    MemberDirectory, MemberFacts, NewMessage, OutboxStatus, SystemClock,
};
use afiliado::{Email, MemberId};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-11-22 19:00:00.123456 -5);

fn member(s: &str) -> MemberId {
    s.parse().unwrap()
}

fn ana() -> MemberId {
    member("1710034065")
}

fn email() -> Email {
    "ana@example.ec".parse().unwrap()
}

fn msg(key: &str) -> NewMessage {
    let notice = Notice::new(email(), Locale::EsEc, NoticeKind::PasswordChanged);
    NewMessage::new(key, ana(), notice, vec![0xA5; 48], T0)
}

/// The conformance suite on [`MemoryStore`] + [`MemoryDirectory`].
#[cfg(feature = "test-util")]
mod conformance {
    use std::sync::Mutex;

    use afiliado::MemberId;
    use afiliado::conformance::{Backend, run_all};
    use afiliado::core::{AccountRecord, AuditEvent};
    use afiliado::crypto::{Digest, TokenPurpose};
    use afiliado::memory::{MemoryDirectory, MemoryStore};
    use afiliado::ports::{
        AccountStore, MemberDirectory, MemberFacts, NewMessage, OutboxMessage, StoreError,
    };
    use async_trait::async_trait;
    use time::OffsetDateTime;

    /// The memory adapters as one store, remembering which members were committed so the
    /// raw dump can read every record back through the public API.
    #[derive(Debug, Default)]
    struct Memory {
        store: MemoryStore,
        dir: MemoryDirectory,
        members: Mutex<Vec<MemberId>>,
    }

    #[async_trait]
    impl AccountStore for Memory {
        async fn load(&self, member: &MemberId) -> Result<Option<AccountRecord>, StoreError> {
            self.store.load(member).await
        }

        async fn load_by_token(
            &self,
            purpose: TokenPurpose,
            digest: &Digest,
        ) -> Result<Option<AccountRecord>, StoreError> {
            self.store.load_by_token(purpose, digest).await
        }

        async fn commit(
            &self,
            record: &AccountRecord,
            expected_version: u64,
            outbox: Vec<NewMessage>,
            audit: Vec<AuditEvent>,
        ) -> Result<u64, StoreError> {
            let mut touched: Vec<MemberId> = audit.iter().map(|e| e.member.clone()).collect();
            touched.extend(outbox.iter().map(|m| m.member.clone()));
            touched.push(record.member.clone());
            let v = self
                .store
                .commit(record, expected_version, outbox, audit)
                .await?;
            let mut members = self.members.lock().unwrap();
            for m in touched {
                if !members.contains(&m) {
                    members.push(m);
                }
            }
            Ok(v)
        }

        async fn claim_due(
            &self,
            now: OffsetDateTime,
            lease: time::Duration,
            limit: usize,
        ) -> Result<Vec<OutboxMessage>, StoreError> {
            self.store.claim_due(now, lease, limit).await
        }

        async fn mark_sent(&self, id: u64, now: OffsetDateTime) -> Result<(), StoreError> {
            self.store.mark_sent(id, now).await
        }

        async fn retry_later(&self, id: u64, at: OffsetDateTime) -> Result<(), StoreError> {
            self.store.retry_later(id, at).await
        }

        async fn dead_letter(
            &self,
            id: u64,
            now: OffsetDateTime,
            reason: &str,
        ) -> Result<(), StoreError> {
            self.store.dead_letter(id, now, reason).await
        }

        async fn audit_log(&self, member: &MemberId) -> Result<Vec<AuditEvent>, StoreError> {
            self.store.audit_log(member).await
        }

        async fn expired_pending(
            &self,
            now: OffsetDateTime,
            limit: usize,
        ) -> Result<Vec<AccountRecord>, StoreError> {
            self.store.expired_pending(now, limit).await
        }

        async fn purge_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
            self.store.purge_audit(before).await
        }

        async fn purge_sent(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
            self.store.purge_sent(before).await
        }

        async fn unregistered(
            &self,
            after: Option<&MemberId>,
            limit: usize,
        ) -> Result<Vec<AccountRecord>, StoreError> {
            self.store.unregistered(after, limit).await
        }

        async fn delete_unregistered(
            &self,
            member: &MemberId,
            version: u64,
        ) -> Result<bool, StoreError> {
            self.store.delete_unregistered(member, version).await
        }
    }

    #[async_trait]
    impl afiliado::ports::SourceThrottle for Memory {
        async fn source_failures(
            &self,
            source: &afiliado::crypto::Digest,
            window: OffsetDateTime,
        ) -> Result<u32, StoreError> {
            self.store.source_failures(source, window).await
        }

        async fn add_source_failure(
            &self,
            source: &afiliado::crypto::Digest,
            window: OffsetDateTime,
        ) -> Result<u32, StoreError> {
            self.store.add_source_failure(source, window).await
        }

        async fn purge_sources(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
            self.store.purge_sources(before).await
        }
    }

    #[async_trait]
    impl MemberDirectory for Memory {
        async fn find(&self, member: &MemberId) -> Result<Option<MemberFacts>, StoreError> {
            self.dir.find(member).await
        }

        async fn enroll(&self, facts: MemberFacts) -> Result<(), StoreError> {
            self.dir.enroll(facts).await
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    struct MemoryBackend;

    #[async_trait]
    impl Backend for MemoryBackend {
        type Store = Memory;

        async fn fresh(&self) -> Memory {
            Memory::default()
        }

        /// What a serialising backend would hold: each record and audit event as JSON, each
        /// outbox column (the sealed blob lossily decoded and in hex), plus the `Debug` view.
        async fn raw_dump(&self, store: &Memory) -> Vec<String> {
            let members = store.members.lock().unwrap().clone();
            let mut dump = vec![format!("{:?}", store.store)];
            for m in &members {
                if let Some(record) = store.load(m).await.unwrap() {
                    dump.push(serde_json::to_string(&record).unwrap());
                }
                for event in store.audit_log(m).await.unwrap() {
                    dump.push(serde_json::to_string(&event).unwrap());
                }
            }
            for msg in store.store.outbox() {
                dump.extend([
                    msg.id.to_string(),
                    msg.idempotency_key.clone(),
                    msg.member.to_string(),
                    serde_json::to_string(&msg.notice).unwrap(),
                    String::from_utf8_lossy(&msg.sealed).into_owned(),
                    hex(&msg.sealed),
                    msg.created_at.to_string(),
                    msg.attempts.to_string(),
                    msg.next_attempt_at.to_string(),
                    serde_json::to_string(&msg.status).unwrap(),
                ]);
            }
            dump
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_store_passes_the_conformance_suite() {
        run_all(&MemoryBackend).await;
    }

    /// The suite's checks take plain stores and directories too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn single_checks_on_the_plain_adapters() {
        use afiliado::conformance as c;
        use std::sync::Arc;
        c::check_round_trip(&MemoryStore::new()).await;
        c::check_concurrent_commits(Arc::new(MemoryStore::new())).await;
        c::check_outbox_lifecycle(&MemoryStore::new()).await;
        c::check_directory(&MemoryDirectory::new()).await;
    }
}

/// The snapshot shows what the generic suite cannot see through the port: terminal statuses
/// keep their first instant and reason.
#[tokio::test]
async fn outbox_snapshot_shows_terminal_statuses() {
    let store = MemoryStore::new();
    let rec = afiliado::core::AccountRecord::new(ana());
    store
        .commit(&rec, 0, vec![msg("a"), msg("b"), msg("c")], vec![])
        .await
        .unwrap();
    let ids: Vec<u64> = store.outbox().iter().map(|m| m.id).collect();
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let t1 = T0 + Duration::minutes(1);
    let t2 = T0 + Duration::minutes(2);
    store.claim_due(T0, Duration::minutes(5), 1).await.unwrap();
    store.mark_sent(a, t1).await.unwrap();
    store.dead_letter(b, t1, "address rejected").await.unwrap();
    // Later transitions do not rewrite a terminal status.
    store.mark_sent(a, t2).await.unwrap();
    store.dead_letter(a, t2, "late").await.unwrap();
    store.mark_sent(b, t2).await.unwrap();
    store.dead_letter(b, t2, "again").await.unwrap();
    store.retry_later(b, t2).await.unwrap();
    let out = store.outbox();
    let status = |id: u64| out.iter().find(|m| m.id == id).unwrap().status.clone();
    assert_eq!(status(a), OutboxStatus::Sent { at: t1 });
    assert_eq!(
        status(b),
        OutboxStatus::DeadLetter {
            at: t1,
            reason: "address rejected".into()
        }
    );
    assert_eq!(status(c), OutboxStatus::Pending);
    assert_eq!(out.iter().find(|m| m.id == a).unwrap().attempts, 1);
    assert!(
        out.iter()
            .all(|m| m.created_at == T0 && m.sealed == vec![0xA5; 48])
    );
}

#[test]
fn debug_hides_payloads() {
    let m = msg("k");
    let dbg = format!("{m:?}");
    assert!(dbg.contains("<48 bytes>"), "{dbg}");
    assert!(!dbg.contains("165"), "{dbg}"); // 0xA5

    let mail = Mail::new(
        "k",
        email(),
        "Activa tu cuenta",
        "https://portal.example/activar?t=SECRETTOKEN",
    );
    let dbg = format!("{mail:?}");
    assert!(!dbg.contains("SECRETTOKEN"), "{dbg}");
    assert!(dbg.contains("<44 bytes>"), "{dbg}");
    assert!(dbg.contains("Activa tu cuenta"));
}

#[test]
fn manual_clock() {
    let c = ManualClock::new(T0);
    assert_eq!(c.now(), T0);
    c.advance(Duration::minutes(20));
    assert_eq!(c.now(), datetime!(2026-11-22 19:20:00.123456 -5));
    c.advance(-Duration::minutes(30));
    assert_eq!(c.now(), T0 - Duration::minutes(10));
    c.set(T0);
    assert_eq!(c.now(), T0);
    // Out of range: unchanged, no panic.
    c.advance(Duration::MAX);
    assert_eq!(c.now(), T0);
    // Shared through Arc, as dyn.
    let shared: Arc<dyn Clock> = Arc::new(Arc::new(c));
    assert_eq!(shared.now(), T0);
    assert!(SystemClock.now() > datetime!(2020-01-01 0:00 UTC));
}

#[tokio::test]
async fn mailer_failure_injection() {
    let mailer = MemoryMailer::new();
    let dynm: &dyn Mailer = &mailer;
    let mail = Mail::new("k", email(), "Hola", "secret link text");
    mailer.fail_next(2);
    for _ in 0..2 {
        assert!(matches!(
            dynm.send(&mail).await,
            Err(MailError::Transient(_))
        ));
    }
    dynm.send(&mail).await.unwrap();
    assert_eq!(mailer.sent(), vec![mail]);
    let dbg = format!("{mailer:?}");
    assert!(!dbg.contains("secret"), "{dbg}");
}

#[tokio::test]
async fn directory_builder_and_human_check() {
    let facts = MemberFacts::new(ana(), "ANA QUISPE", date!(1990 - 05 - 14));
    let replaced = MemberFacts::new(ana(), "ANA QUISPE TOAPANTA", date!(1990 - 05 - 14));
    // `with` adds, and replaces a member's earlier facts; usable as `dyn`.
    let dir: Arc<dyn MemberDirectory> = Arc::new(
        MemoryDirectory::new()
            .with(facts.clone())
            .with(replaced.clone()),
    );
    assert_eq!(dir.find(&ana()).await.unwrap(), Some(replaced));
    assert_eq!(dir.find(&member("0926687856")).await.unwrap(), None);

    let hc: Arc<dyn HumanCheck> = Arc::new(AlwaysPass);
    assert!(hc.verify("anything").await.unwrap());
}
