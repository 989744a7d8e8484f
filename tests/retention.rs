//! Retention on the in-memory store: expired pending registrations lose their contact data
//! through the normal commit path, and old audit events are deleted.
#![cfg(feature = "memory")]

mod flows;

use afiliado::MemberId;
use afiliado::core::{
    AccountRecord, AccountState, AuditKind, Command, Contact, Locale, ProofResult, Register, decide,
};
use afiliado::crypto::{DigestKey, Token, TokenPurpose};
use afiliado::memory::MemoryStore;
use afiliado::policy::{Policy, Proof};
use afiliado::ports::AccountStore;
use afiliado::retention::purge;
use rand::SeedableRng;
use time::Duration;
use time::macros::datetime;

async fn register(store: &MemoryStore, policy: &Policy, id: &str, now: time::OffsetDateTime) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let key = DigestKey::generate(&mut rng);
    let member: MemberId = id.parse().unwrap();
    let cmd = Command::Register(Register {
        contact: Contact {
            email: "ana@example.ec".parse().unwrap(),
            mobile: Some("0991234567".parse().unwrap()),
            landline: None,
        },
        terms_accepted: true,
        proofs: vec![ProofResult::passed(Proof::AffiliateNumber)],
        human_verified: false,
        link: key.digest_token(TokenPurpose::Activation, &Token::generate(&mut rng)),
        code: Some(key.digest_token(TokenPurpose::ActivationCode, &Token::generate(&mut rng))),
        enrollment: Default::default(),
        locale: Locale::EsEc,
    });
    let d = decide(&AccountRecord::new(member), &cmd, now, policy).unwrap();
    let audit = d.audit().cloned().collect();
    store.commit(&d.next, 0, vec![], audit).await.unwrap();
}

#[tokio::test]
async fn purge_drops_expired_pending_contact_data_and_old_audit() {
    let policy = Policy::isspol(); // 25-minute links
    let store = MemoryStore::new();
    let t0 = datetime!(2026-11-22 10:00 -5);
    register(&store, &policy, "1710034065", t0).await;
    register(&store, &policy, "0926687856", t0 + Duration::minutes(10)).await;

    // At 25:00 after the first registration only the first one has expired.
    let report = purge(&store, &policy, t0 + Duration::minutes(25))
        .await
        .unwrap();
    assert_eq!(report.registrations_expired, 1);
    assert_eq!(report.audit_deleted, 0);
    let first = store
        .load(&"1710034065".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.state, AccountState::Unregistered);
    assert_eq!(first.version, 2);
    assert!(
        !serde_json::to_string(&first)
            .unwrap()
            .contains("ana@example.ec")
    );
    let log = store.audit_log(&first.member).await.unwrap();
    assert_eq!(
        log.last().map(|e| (&e.kind, e.at)),
        Some((&AuditKind::RegistrationExpired, t0 + Duration::minutes(25)))
    );
    let second = store
        .load(&"0926687856".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(second.state, AccountState::PendingActivation(_)));
    // Running again changes nothing.
    assert_eq!(
        purge(&store, &policy, t0 + Duration::minutes(26))
            .await
            .unwrap()
            .registrations_expired,
        0
    );

    // Five years and a day later every audit event of that day is gone.
    let later = t0 + Duration::days(5 * 365 + 1);
    let report = purge(&store, &policy, later).await.unwrap();
    assert_eq!(report.registrations_expired, 1);
    // Expiries are audited at their scheduled instant (t0+25m, t0+35m), so they are as old
    // as the registrations: all four events of that day go.
    assert_eq!(report.audit_deleted, 4);
    assert_eq!(store.audit_log(&first.member).await.unwrap().len(), 0);
    assert_eq!(store.audit_log(&second.member).await.unwrap().len(), 0);
}

/// Delivered mail holds the member's address and ID: retention deletes it after
/// `retention.sent_mail` (30 days by default); mail not yet delivered stays.
#[tokio::test]
async fn delivered_mail_is_purged_after_its_retention_period() {
    let ana = flows::ana();
    let h = flows::Harness::new(Policy::isspol(), &[&ana]);
    h.activate_member(&ana, flows::UNIVERSAL_PW).await; // activation mail, delivered
    h.service
        .start_recovery(h.recovery(&ana))
        .await
        .expect("recovery answers"); // a reset link, left undelivered
    let policy = h.policy().clone();
    assert_eq!(
        policy.retention.sent_mail,
        std::time::Duration::from_secs(30 * 86_400)
    );
    let report = purge(h.store.as_ref(), &policy, h.now() + Duration::days(29))
        .await
        .unwrap();
    assert_eq!(report.sent_mail_deleted, 0);
    let report = purge(h.store.as_ref(), &policy, h.now() + Duration::days(31))
        .await
        .unwrap();
    assert_eq!(report.sent_mail_deleted, 1, "the delivered activation mail");
    let left = h.store.outbox();
    assert_eq!(left.len(), 1, "the undelivered reset link stays");
    assert!(left[0].notice.kind.link_purpose().is_some());
}
