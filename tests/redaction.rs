//! No full cédula, foreigner code, phone number or e-mail address in what a host would log:
//! `Debug` of the identity types and of everything that wraps them (contacts, account
//! records, notices, mails, outbox messages, service outcomes), store errors, and the
//! dead-letter reasons written to the audit log.
//!
//! The identity types keep their canonical form behind explicit accessors (`as_str`,
//! `as_e164`, `Display`, serde); only the accidental paths (`{:?}`, error messages, audit
//! text) are masked.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use afiliado::core::{AuditEvent, AuditKind, Contact, Locale, Notice, NoticeKind};
use afiliado::crypto::{DigestKey, HashParams};
use afiliado::memory::{MemoryDirectory, MemoryStore};
use afiliado::ports::{
    AccountStore, AlwaysPass, Mail, ManualClock, MemberFacts, NewMessage, StoreError,
};
use afiliado::seal::SealKey;
use afiliado::service::{
    AccountService, ActivateOutcome, LoginOutcome, RegisterOutcome, RegisterRequest,
};
use afiliado::{Cedula, Email, ForeignerCode, Landline, MemberId, MobilePhone, Password, Policy};
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::macros::{date, datetime};

const CEDULA: &str = "1710034065";
const FOREIGNER: &str = "EXT20240001";
const ADDRESS: &str = "ana.quishpe@example.ec";
const MOBILE_E164: &str = "+593991234567";
const MOBILE_NATIONAL: &str = "0991234567";
const LANDLINE_E164: &str = "+59322345678";
const LANDLINE_NATIONAL: &str = "022345678";
const AFFILIATE: &str = "A-48213";
const PASSWORD: &str = "Quinde7LagoAzul";

/// The digits of `text`, in order, with everything else dropped: a value printed digit by
/// digit (`[1, 7, 1, 0, …]`) is caught as well as one printed whole.
fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// `text` (and its digits) hold none of the personal values.
#[track_caller]
fn assert_clean(text: &str) {
    for value in [CEDULA, FOREIGNER, ADDRESS, "ana.quishpe"] {
        assert!(!text.contains(value), "{value:?} leaked into {text:?}");
    }
    let only_digits = digits(text);
    for number in [
        CEDULA,
        "593991234567",
        MOBILE_NATIONAL,
        "59322345678",
        LANDLINE_NATIONAL,
    ] {
        assert!(
            !only_digits.contains(number),
            "{number:?} leaked (digit by digit) into {text:?}"
        );
    }
}

/// `Debug` and pretty `Debug` of `value` hold none of the personal values.
#[track_caller]
fn assert_debug_clean<T: std::fmt::Debug>(value: &T) {
    assert_clean(&format!("{value:?}"));
    assert_clean(&format!("{value:#?}"));
}

fn cedula() -> Cedula {
    CEDULA.parse().unwrap()
}

fn member() -> MemberId {
    CEDULA.parse().unwrap()
}

fn email() -> Email {
    ADDRESS.parse().unwrap()
}

#[test]
fn debug_of_identity_types_is_masked() {
    assert_debug_clean(&cedula());
    assert_debug_clean(&member());
    assert_debug_clean(&FOREIGNER.parse::<ForeignerCode>().unwrap());
    assert_debug_clean(&FOREIGNER.parse::<MemberId>().unwrap());
    assert_debug_clean(&email());
    assert_debug_clean(&MOBILE_NATIONAL.parse::<MobilePhone>().unwrap());
    assert_debug_clean(&LANDLINE_NATIONAL.parse::<Landline>().unwrap());
    // Inside containers too.
    assert_debug_clean(&Some(vec![member(), member()]));

    // Debug shows the masked form, so a log line still tells values apart.
    assert_eq!(format!("{:?}", cedula()), r#"Cedula("17******65")"#);
    assert_eq!(format!("{:?}", email()), r#"Email("a***@example.ec")"#);
    assert_eq!(format!("{:?}", member()), r#"Cedula(Cedula("17******65"))"#);
    assert_eq!(
        format!("{:?}", FOREIGNER.parse::<MemberId>().unwrap()),
        r#"Foreigner(ForeignerCode("E********01"))"#
    );
    assert_eq!(
        format!("{:?}", MOBILE_E164.parse::<MobilePhone>().unwrap()),
        r#"MobilePhone("09****4567")"#
    );
    assert_eq!(
        format!("{:?}", LANDLINE_E164.parse::<Landline>().unwrap()),
        r#"Landline("02***5678")"#
    );
}

#[test]
fn the_canonical_form_stays_available_explicitly() {
    assert_eq!(cedula().as_str(), CEDULA);
    assert_eq!(cedula().to_string(), CEDULA);
    assert_eq!(member().as_str(), CEDULA);
    assert_eq!(member().to_string(), CEDULA);
    assert_eq!(email().as_str(), ADDRESS);
    assert_eq!(email().to_string(), ADDRESS);
    assert_eq!(
        MOBILE_NATIONAL.parse::<MobilePhone>().unwrap().as_e164(),
        MOBILE_E164
    );
    assert_eq!(
        LANDLINE_NATIONAL.parse::<Landline>().unwrap().as_e164(),
        LANDLINE_E164
    );
    assert_eq!(serde_json::to_string(&member()).unwrap(), "\"1710034065\"");
    assert_eq!(
        serde_json::to_string(&email()).unwrap(),
        "\"ana.quishpe@example.ec\""
    );
}

#[test]
fn debug_of_wrappers_is_masked() {
    let contact = Contact {
        email: email(),
        mobile: Some(MOBILE_NATIONAL.parse().unwrap()),
        landline: Some(LANDLINE_NATIONAL.parse().unwrap()),
    };
    assert_debug_clean(&contact);

    let notice = Notice::new(email(), Locale::EsEc, NoticeKind::PasswordChanged);
    assert_debug_clean(&notice);
    assert_debug_clean(&Mail::new("k", email(), "Hola", "cuerpo"));
    let at = datetime!(2026-11-22 19:00 -5);
    assert_debug_clean(&NewMessage::new("k", member(), notice, Vec::new(), at));
    assert_debug_clean(&AuditEvent::new(at, member(), AuditKind::LoginSucceeded));
    assert_debug_clean(&LoginOutcome::Success { member: member() });
    assert_debug_clean(&MemberFacts::new(member(), "ANA", date!(1988 - 03 - 14)));
}

#[test]
fn store_errors_mask_the_member() {
    for id in [member(), FOREIGNER.parse().unwrap()] {
        let err = StoreError::Conflict {
            member: id.clone(),
            expected: 3,
            found: Some(4),
        };
        assert_clean(&err.to_string());
        assert_debug_clean(&err);
        assert!(err.to_string().contains(&id.masked()), "{err}");
    }
}

#[test]
fn dead_letter_audit_events_carry_no_address_or_cedula() {
    let at = datetime!(2026-11-22 19:00 -5);
    let reason = "SMTP 550 from mx.example.ec: 5.1.1 <ana.quishpe@example.ec>: Recipient \
                  address rejected (ref 1710034065, to ana.quishpe@example.ec)";
    let event = AuditEvent::dead_letter(at, member(), "0123abcd", reason);
    let AuditKind::NoticeDeadLettered { message, reason } = &event.kind else {
        panic!("{event:?}");
    };
    assert_eq!(message, "0123abcd", "the message key is kept as it is");
    assert_clean(reason);
    assert!(reason.contains("550"), "{reason}");
    assert!(reason.contains("Recipient address rejected"), "{reason}");
    // The stored form of the event: its kind (the member is stored whole, as the key).
    assert_clean(&serde_json::to_string(&event.kind).unwrap());
}

#[tokio::test]
async fn dead_letter_through_a_store_keeps_the_audit_log_clean() {
    let store = MemoryStore::new();
    let at = datetime!(2026-11-22 19:00 -5);
    let mut record = afiliado::core::AccountRecord::new(member());
    record.locale = Locale::EsEc;
    let notice = Notice::new(email(), Locale::EsEc, NoticeKind::PasswordChanged);
    store
        .commit(
            &record,
            0,
            vec![NewMessage::new("key-1", member(), notice, Vec::new(), at)],
            vec![],
        )
        .await
        .unwrap();
    let [msg] = store
        .claim_due(at, time::Duration::minutes(5), 10)
        .await
        .unwrap()
        .try_into()
        .unwrap();
    store
        .dead_letter(
            msg.id,
            at,
            "550 5.1.1 <ana.quishpe@example.ec>: unknown user",
        )
        .await
        .unwrap();
    let log = store.audit_log(&member()).await.unwrap();
    assert!(
        log.iter()
            .any(|e| matches!(e.kind, AuditKind::NoticeDeadLettered { .. })),
        "{log:?}"
    );
    for event in &log {
        assert_debug_clean(event);
        assert_clean(&serde_json::to_string(&event.kind).unwrap());
    }
}

/// The whole service path: the records, outbox and audit log a host would dump, and the
/// login outcome it would log.
#[tokio::test]
async fn service_records_and_login_outcome_are_masked_in_debug() {
    let mut rng = StdRng::seed_from_u64(0x5EED_0009);
    let digest = DigestKey::generate(&mut rng);
    let seal = SealKey::generate(&mut rng);
    let mut policy = Policy::isspol();
    policy.hashing = HashParams::danger_insecure_for_tests();
    let mut ana = MemberFacts::new(member(), "Ana María Quishpe", date!(1988 - 03 - 14));
    ana.affiliate_number = Some(AFFILIATE.into());
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-22 19:36 -5)));
    let store = Arc::new(MemoryStore::new());
    let service = AccountService::builder(policy, digest, seal.clone())
        .store(store.clone())
        .directory(Arc::new(MemoryDirectory::new().with(ana)))
        .human_check(Arc::new(AlwaysPass))
        .clock(clock)
        .build()
        .unwrap();

    let mut form = RegisterRequest::new(CEDULA, ADDRESS);
    form.mobile = Some(MOBILE_NATIONAL.into());
    form.terms_accepted = true;
    form.answers.affiliate_number = Some(AFFILIATE.into());
    form.human_response = Some("widget-ok".into());
    assert_eq!(
        service.register(form).await.unwrap(),
        RegisterOutcome::Submitted
    );

    let pending = store.load(&member()).await.unwrap().unwrap();
    assert_debug_clean(&pending);
    let [msg] = store.outbox().try_into().unwrap();
    assert_debug_clean(&msg);

    let secrets = seal
        .open(&msg.sealed, msg.idempotency_key.as_bytes())
        .unwrap();
    let token = secrets.token.expose_secret().to_owned();
    let code = secrets.code.map(|c| c.expose_secret().to_owned());
    assert_eq!(
        service
            .activate(
                &token,
                code.as_deref(),
                Password::new(PASSWORD),
                Password::new(PASSWORD)
            )
            .await
            .unwrap(),
        ActivateOutcome::Activated
    );
    let active = store.load(&member()).await.unwrap().unwrap();
    assert_debug_clean(&active);

    let outcome = service
        .login(CEDULA, Password::new(PASSWORD))
        .await
        .unwrap();
    assert!(
        matches!(outcome, LoginOutcome::Success { .. }),
        "{outcome:?}"
    );
    assert_debug_clean(&outcome);
    for event in store.audit_log(&member()).await.unwrap() {
        assert_debug_clean(&event);
    }
    assert_debug_clean(&store.outbox());
}

/// Forms carry what the member typed: `Debug` (what a host logs) masks IDs and addresses and
/// shows answers only as given or not.
#[cfg(feature = "service")]
#[test]
fn debug_of_forms_is_masked() {
    use afiliado::service::{
        Answers, RecordQuestion, RecoveryRequest, RegisterRequest, StaffRequest,
    };
    let mut answers = Answers::default();
    answers.affiliate_number = Some("AF-771203".into());
    answers.birth_day_month = Some((14, 3));
    answers.record = vec![(RecordQuestion::Employer, "Banco del Pacífico".into())];
    answers.security = vec![("mascota".into(), "Firulais".into())];
    answers.security_image = Some("Colibrí".into());
    let mut reg = RegisterRequest::new("1710034065", "ana.quishpe@example.ec");
    reg.mobile = Some("0991234567".into());
    reg.answers = answers.clone();
    let mut rec = RecoveryRequest::new("1710034065");
    rec.email = Some("ana.quishpe@example.ec".into());
    rec.new_email = Some("ana.nueva@gmail.com".into());
    rec.answers = answers;
    let staff = StaffRequest::ChangeEmail("ana.nueva@gmail.com".into());
    for dump in [format!("{reg:?}"), format!("{rec:?}"), format!("{staff:?}")] {
        for secret in [
            "1710034065",
            "ana.quishpe@example.ec",
            "ana.nueva@gmail.com",
            "0991234567",
            "AF-771203",
            "Banco del Pacífico",
            "Firulais",
            "Colibrí",
            "14",
        ] {
            assert!(!dump.contains(secret), "{secret:?} leaked into {dump}");
        }
    }
}
