//! Regression tests for the outside security review of the account lifecycle. Each test failed
//! on the code before its fix; the doc comment of each says what the old code did.
//!
//! 1. Knowledge proofs take exactly one answer per question asked (no bulk guessing), and a
//!    proof count the library cannot ask is refused by `Policy::validate`.
//! 2. Recovery never takes over the email: the replacement address only receives the reset
//!    link, and the email changes when the reset completes.
//! 3. A staff email change takes effect when the new address confirms it.
//! 4. Registration forms with wrong proofs never lock an activated account.
//! 5. Staff actor and reason are bounded.
#![allow(clippy::disallowed_methods)]

mod flows;

use afiliado::core::{AccountState, AuditKind, settle};
use afiliado::policy::PolicyError;
use flows::*;

async fn email_of(h: &Harness, id: &str) -> String {
    let r = h.record(id).await;
    let (settled, _) = settle(&r, h.now(), h.policy());
    settled
        .state
        .profile()
        .expect("activated")
        .contact
        .email
        .as_str()
        .to_owned()
}

fn field_error<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> &'static str {
    match r {
        Err(ServiceError::InvalidInput { field, .. }) => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. One answer per question
// ---------------------------------------------------------------------------------------------

/// 67 guesses per year question and four employer names, the right answers among them.
fn bulk_record_answers() -> Vec<(RecordQuestion, String)> {
    let mut bulk = Vec::new();
    for year in 1960..2027 {
        bulk.push((RecordQuestion::FirstContributionYear, year.to_string()));
        bulk.push((RecordQuestion::LastContributionYear, year.to_string()));
    }
    for employer in [
        "Banco del Pacífico S.A.",
        "Corporación Favorita C.A.",
        "Petroecuador",
        "Municipio de Guayaquil",
    ] {
        bulk.push((RecordQuestion::Employer, employer.to_owned()));
    }
    bulk
}

/// Old code: `answers.record.iter().any(..)` accepted any number of answers per question, so
/// one registration carrying 138 guesses answered `Submitted` and queued the activation mail.
/// Now extra, duplicate or missing answers are a field error that counts as a failed attempt.
#[tokio::test]
async fn iess_registration_takes_exactly_one_answer_per_record_question() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);

    let mut bulk = h.form(&luis);
    bulk.answers.record = bulk_record_answers();
    assert_eq!(
        field_error(h.service.register(bulk).await),
        "record_answers"
    );

    // One question answered twice (the right answer and a wrong one).
    let mut twice = h.form(&luis);
    twice
        .answers
        .record
        .push((RecordQuestion::Employer, "Petroecuador".to_owned()));
    assert_eq!(
        field_error(h.service.register(twice).await),
        "record_answers"
    );

    // One question left out.
    let mut missing = h.form(&luis);
    missing.answers.record.pop();
    assert_eq!(
        field_error(h.service.register(missing).await),
        "record_answers"
    );

    assert_eq!(h.deliver().await.len(), 0, "no activation mail");
    let r = h.record(luis.id).await;
    assert!(
        matches!(r.state, AccountState::Unregistered),
        "{:?}",
        r.state
    );
    assert_eq!(
        r.registration_failures
            .on(afiliado::core::local_day(h.now())),
        3
    );
    let failures = h.audit(luis.id).await;
    assert_eq!(
        failures,
        (1..=3)
            .map(|failures| AuditKind::RegistrationChecksFailed { failures })
            .collect::<Vec<_>>(),
        "each malformed form counts as a failed attempt"
    );

    // Control: the same form with one answer per question registers.
    h.advance(minutes(1));
    assert_eq!(
        h.service.register(h.form(&luis)).await.unwrap(),
        RegisterOutcome::Submitted
    );
    assert_eq!(h.deliver().await.len(), 1);
}

/// Old code: the registration attempt budget was the recovery budget; failed registrations
/// are now counted per day, and once the day's budget is spent even the right answers are
/// refused (so the budget bounds guessing).
#[tokio::test]
async fn registration_failures_are_bounded_per_day() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    let budget = h.policy().registration.max_failed_proofs_per_day;
    assert_eq!(budget, 5);
    for _ in 0..budget {
        let mut wrong = h.form(&luis);
        wrong.answers.birth_day_month = Some((1, 1));
        assert_eq!(
            h.service.register(wrong).await.unwrap(),
            RegisterOutcome::ChecksFailed
        );
    }
    assert_eq!(
        h.service.register(h.form(&luis)).await.unwrap(),
        RegisterOutcome::ChecksFailed,
        "the day's budget is spent"
    );
    assert_eq!(h.deliver().await.len(), 0);
    // The next day (America/Guayaquil) the member registers.
    h.advance(Duration::hours(24));
    assert_eq!(
        h.service.register(h.form(&luis)).await.unwrap(),
        RegisterOutcome::Submitted
    );
}

/// Old code: recovery checked `take(count)` distinct security answers and `any` record
/// answer, so extra answers were free guesses. Now they are a field error that counts
/// against the recovery budget.
#[tokio::test]
async fn iess_recovery_takes_exactly_one_answer_per_question() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    h.activate_member(&luis, "Manglar2026").await;
    h.advance(minutes(5));

    let mut extra_record = h.recovery(&luis);
    extra_record
        .answers
        .record
        .push((RecordQuestion::Employer, "Petroecuador".to_owned()));
    assert_eq!(
        field_error(h.service.start_recovery(extra_record).await),
        "record_answers"
    );

    let mut extra_security = h.recovery(&luis);
    extra_security
        .answers
        .security
        .push(("color".to_owned(), "verde".to_owned()));
    assert_eq!(
        field_error(h.service.start_recovery(extra_security).await),
        "security_answers"
    );

    assert_eq!(h.deliver().await.len(), 0, "no reset link");
    let r = h.record(luis.id).await;
    assert_eq!(r.check_failures, 2, "both count against the budget");
    assert!(matches!(r.state, AccountState::Active { .. }));

    // Control: the right form, one answer each, recovers.
    assert_eq!(
        h.service.start_recovery(h.recovery(&luis)).await.unwrap(),
        RecoveryOutcome::Submitted
    );
}

/// Old code: `RecordQuestions { count: 0 }` validated (a registration with no answers at all
/// was accepted) and so did 4, of which only 3 were asked.
#[test]
fn proof_counts_the_library_cannot_ask_are_refused() {
    for count in [0u8, 4, 200] {
        let mut p = Policy::iess();
        p.registration.proofs = vec![Proof::BirthDayMonth, Proof::RecordQuestions { count }];
        match p.validate() {
            Err(PolicyError::Invalid { field, .. }) => {
                assert_eq!(field, "registration.proofs", "count {count}")
            }
            other => panic!("count {count}: {other:?}"),
        }
        let mut p = Policy::iess();
        p.recovery.proofs = vec![Proof::RecordQuestions { count }];
        assert!(p.validate().is_err(), "recovery count {count}");
    }
    let mut p = Policy::iess();
    p.recovery.proofs = vec![Proof::SecurityQuestions { count: 0 }];
    assert!(p.validate().is_err(), "zero security questions");
    for p in [Policy::isspol(), Policy::iess(), Policy::recommended()] {
        p.validate().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Recovery cannot take over the email
// ---------------------------------------------------------------------------------------------

const NEW_EMAIL: &str = "luis.nuevo@gmail.com";

/// Old code replaced the account's email as soon as the identity checks passed, even if the
/// reset was never finished: anyone knowing the answers redirected every future link. Now
/// the replacement only receives the reset link; an abandoned reset leaves the email as it
/// was.
#[tokio::test]
async fn iess_recovery_replacement_email_only_receives_the_reset_link() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    h.activate_member(&luis, "Manglar2026").await;
    h.advance(minutes(5));

    let mut req = h.recovery(&luis);
    req.new_email = Some(NEW_EMAIL.into());
    assert_eq!(
        h.service.start_recovery(req).await.unwrap(),
        RecoveryOutcome::Submitted
    );
    assert_eq!(email_of(&h, luis.id).await, luis.email, "not changed yet");
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1, "only the reset link");
    assert!(mails[0].to.matches(&NEW_EMAIL.parse().unwrap()));
    assert_eq!(mails[0].subject, SUBJECT_RESET_LINK);
    assert!(!h.audit(luis.id).await.contains(&AuditKind::EmailChanged));

    // Abandoned: the link expires and the email is what it was.
    h.advance(minutes(16));
    assert_eq!(email_of(&h, luis.id).await, luis.email);
    assert_eq!(
        h.login(luis.id, "Manglar2026").await,
        Harness::success(luis.id)
    );
    assert_eq!(email_of(&h, luis.id).await, luis.email);
    // A login with the old password also cancels a pending reset with a replacement.
    let mut req = h.recovery(&luis);
    req.new_email = Some(NEW_EMAIL.into());
    h.service.start_recovery(req).await.unwrap();
    let stale = h.token(&h.deliver().await[0], "/restablecer");
    assert_eq!(
        h.login(luis.id, "Manglar2026").await,
        Harness::success(luis.id)
    );
    assert_eq!(email_of(&h, luis.id).await, luis.email);
    assert_eq!(
        denied(
            h.service
                .reset_password(&stale, h.pw("Cangrejo77Rojo"), h.pw("Cangrejo77Rojo"), true)
                .await
        ),
        Denied::InvalidToken
    );
}

/// The change happens when the reset completes: the old address is told (masked new address,
/// what to do if it was not the member), the new one is welcomed.
#[tokio::test]
async fn iess_recovery_replacement_email_takes_effect_when_the_reset_completes() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    h.activate_member(&luis, "Manglar2026").await;
    h.advance(minutes(5));

    let mut req = h.recovery(&luis);
    req.new_email = Some(NEW_EMAIL.into());
    h.service.start_recovery(req).await.unwrap();
    let mails = h.deliver().await;
    let reset = h.token(&mails[0], "/restablecer");
    h.advance(minutes(2));
    h.service
        .reset_password(&reset, h.pw("Cangrejo77Rojo"), h.pw("Cangrejo77Rojo"), true)
        .await
        .unwrap();
    assert_eq!(email_of(&h, luis.id).await, NEW_EMAIL);

    let mails = h.deliver().await;
    let to_old: Vec<_> = mails
        .iter()
        .filter(|m| m.to.matches(&luis.email.parse().unwrap()))
        .collect();
    assert_eq!(to_old.len(), 1);
    assert_eq!(to_old[0].subject, SUBJECT_EMAIL_CHANGED_FROM);
    assert!(
        to_old[0].text.contains("l***@gmail.com"),
        "masked new address"
    );
    assert!(!to_old[0].text.contains(NEW_EMAIL));
    assert!(to_old[0].text.contains("Si usted no realizó este cambio"));
    let to_new: Vec<_> = mails
        .iter()
        .filter(|m| m.to.matches(&NEW_EMAIL.parse().unwrap()))
        .map(|m| m.subject.as_str())
        .collect();
    assert_eq!(
        to_new,
        [SUBJECT_EMAIL_CHANGED_TO, SUBJECT_PASSWORD_CHANGED],
        "the new address hears of both changes"
    );
    let events = h.audit(luis.id).await;
    let at = |k: &AuditKind| events.iter().position(|e| e == k).unwrap();
    assert!(at(&AuditKind::PasswordReset) < at(&AuditKind::EmailChanged));
    h.assert_no_secret_stored().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Staff email changes are confirmed by the new address
// ---------------------------------------------------------------------------------------------

/// Old code replaced the email at once on the staff request. Now a link goes to the new
/// address, the old one is told, and nothing changes until the link is followed.
#[tokio::test]
async fn staff_email_change_waits_for_the_new_address() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    assert!(h.policy().staff.confirm_email_change);
    h.activate_member(&ana, "Quinde7Lago").await;
    h.advance(minutes(30));

    let new_email = "ana.nueva@gmail.com";
    h.staff(ana.id, StaffRequest::ChangeEmail(new_email.into()))
        .await
        .unwrap();
    assert_eq!(email_of(&h, ana.id).await, ana.email, "not changed yet");
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 2);
    let old = h.latest(ana.email);
    assert_eq!(old.subject, SUBJECT_EMAIL_CHANGE_REQUESTED);
    assert!(old.text.contains("a***@gmail.com"));
    assert!(!old.text.contains(new_email));
    assert!(!old.text.contains("?token="), "no link to the old address");
    let new = h.latest(new_email);
    assert_eq!(new.subject, SUBJECT_EMAIL_CHANGE_CONFIRM);
    let token = h.token(&new, "/confirmar-correo");

    h.advance(minutes(10));
    h.service.confirm_email_change(&token).await.unwrap();
    assert_eq!(email_of(&h, ana.id).await, new_email);
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 2);
    assert_eq!(h.latest(ana.email).subject, SUBJECT_EMAIL_CHANGED_FROM);
    assert_eq!(h.latest(new_email).subject, SUBJECT_EMAIL_CHANGED_TO);
    // Single use.
    assert_eq!(
        denied(h.service.confirm_email_change(&token).await),
        Denied::InvalidToken
    );
    h.assert_no_secret_stored().await;
}

/// An unconfirmed change expires: the link dies and the email stays.
#[tokio::test]
async fn unconfirmed_staff_email_change_expires() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;
    let ttl = h.policy().staff.email_change_ttl;
    h.staff(
        ana.id,
        StaffRequest::ChangeEmail("ana.nueva@gmail.com".into()),
    )
    .await
    .unwrap();
    h.deliver().await;
    let token = h.token(&h.latest("ana.nueva@gmail.com"), "/confirmar-correo");
    h.advance(Duration::try_from(ttl).unwrap());
    assert!(h.service.confirm_email_change(&token).await.is_err());
    assert_eq!(email_of(&h, ana.id).await, ana.email);
    // Touching the account applies the expiry (audited at its scheduled instant).
    assert_eq!(
        h.login(ana.id, "Quinde7Lago").await,
        Harness::success(ana.id)
    );
    assert!(
        h.audit(ana.id)
            .await
            .contains(&AuditKind::EmailChangeExpired)
    );
    assert_eq!(h.deliver().await.len(), 0);
}

/// With the knob off (a host's explicit choice), the change is immediate as before.
#[tokio::test]
async fn staff_email_change_without_confirmation_is_immediate() {
    let ana = ana();
    let mut policy = Policy::isspol();
    policy.staff.confirm_email_change = false;
    let h = Harness::new(policy, &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;
    h.staff(
        ana.id,
        StaffRequest::ChangeEmail("ana.nueva@gmail.com".into()),
    )
    .await
    .unwrap();
    assert_eq!(email_of(&h, ana.id).await, "ana.nueva@gmail.com");
    let subjects: Vec<_> = h.deliver().await.into_iter().map(|m| m.subject).collect();
    assert_eq!(
        subjects,
        [SUBJECT_EMAIL_CHANGED_FROM, SUBJECT_EMAIL_CHANGED_TO]
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Registration never locks an activated account
// ---------------------------------------------------------------------------------------------

/// Old code counted wrong registration proofs against the recovery budget and, at five, locked
/// an *active* account with `Locked { FailedRecovery }`, which never lifts by itself: a
/// stranger with the cédula locked the member out until staff stepped in.
#[tokio::test]
async fn iess_registration_forms_never_lock_an_active_account() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    h.activate_member(&luis, "Manglar2026").await;
    h.advance(minutes(5));
    for _ in 0..10 {
        let mut wrong = h.form(&luis);
        wrong.answers.birth_day_month = Some((1, 1));
        assert_eq!(
            h.service.register(wrong).await.unwrap(),
            RegisterOutcome::ChecksFailed
        );
    }
    let r = h.record(luis.id).await;
    assert!(
        matches!(r.state, AccountState::Active { .. }),
        "{:?}",
        r.state
    );
    assert_eq!(r.check_failures, 0, "the recovery budget is untouched");
    assert_eq!(h.deliver().await.len(), 0, "no lock warning");
    assert_eq!(
        h.login(luis.id, "Manglar2026").await,
        Harness::success(luis.id)
    );
    assert_eq!(
        h.service.start_recovery(h.recovery(&luis)).await.unwrap(),
        RecoveryOutcome::Submitted
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Staff input is bounded
// ---------------------------------------------------------------------------------------------

/// Old code stored a 1 MB reason in the audit log.
#[tokio::test]
async fn staff_actor_and_reason_are_bounded() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;
    let before = h.audit(ana.id).await.len();
    let huge = "x".repeat(1 << 20);
    let r = h
        .service
        .staff("mquintanilla", &huge, ana.id, StaffRequest::Suspend)
        .await;
    assert_eq!(field_error(r), "reason");
    let r = h
        .service
        .staff(&huge, "verificación", ana.id, StaffRequest::Suspend)
        .await;
    assert_eq!(field_error(r), "actor");
    assert_eq!(h.audit(ana.id).await.len(), before, "nothing audited");
    assert!(matches!(
        h.record(ana.id).await.state,
        AccountState::Active { .. }
    ));
}

/// Audit text carries no full address or ID: a staff reason quoting the member's email and
/// cédula is stored masked.
#[tokio::test]
async fn staff_reasons_are_stored_masked() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;
    h.service
        .staff(
            "mquintanilla",
            "llamada de ana.perez@example.ec, cédula 1710034065, verificada",
            ana.id,
            StaffRequest::Suspend,
        )
        .await
        .unwrap();
    let staff: Vec<_> = h
        .audit(ana.id)
        .await
        .into_iter()
        .filter_map(|k| match k {
            AuditKind::Staff { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        staff,
        ["llamada de a***@example.ec, cédula 17******65, verificada"]
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Findings of a second, black-box pass over the fixes above
// ---------------------------------------------------------------------------------------------

/// A stranger who knows the registry facts sent correct registration forms against an active
/// account: each one queued a warning that counted against the member's daily notice cap, so
/// the member's own reset (and, once locked, unlock) link was suppressed. Now such forms count
/// against the registration cap, at most one warning goes out a day, and it never uses the
/// budget of links.
#[tokio::test]
async fn registration_forms_on_an_active_account_never_spend_the_members_links() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    h.activate_member(&luis, "Manglar2026").await;
    h.advance(minutes(5));
    for _ in 0..3 {
        h.login(luis.id, "Wrong1234x").await;
    }
    for _ in 0..12 {
        let mut f = h.form(&luis);
        f.email = "atacante@evil.ec".into();
        assert_eq!(
            h.service.register(f).await.unwrap(),
            RegisterOutcome::Submitted
        );
    }
    let warnings = h.deliver().await;
    assert_eq!(
        warnings
            .iter()
            .filter(|m| m.subject != SUBJECT_LOCKED)
            .count(),
        1,
        "one registration warning a day"
    );
    h.service
        .request_unlock(luis.id, Some(HUMAN))
        .await
        .unwrap();
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1, "the member's unlock link goes out");
    assert_eq!(mails[0].subject, SUBJECT_UNLOCK_LINK);
    assert_eq!(
        h.service.start_recovery(h.recovery(&luis)).await.unwrap(),
        RecoveryOutcome::Submitted
    );
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1, "the member's reset link goes out");
    assert_eq!(mails[0].subject, SUBJECT_RESET_LINK);
}

/// `validate` accepted `recovery.proofs = []` with `allow_email_change`: anyone with a cédula
/// could send the reset link to their own address and take the account. A replacement email
/// now needs at least one knowledge proof, and registration at least one proof.
#[test]
fn an_email_change_in_recovery_needs_identity_proofs() {
    let mut p = Policy::iess();
    p.recovery.proofs = vec![];
    match p.validate() {
        Err(PolicyError::Invalid { field, .. }) => assert_eq!(field, "recovery.proofs"),
        other => panic!("{other:?}"),
    }
    let mut p = Policy::iess();
    p.recovery.proofs = vec![Proof::RegisteredEmail];
    assert!(p.validate().is_err(), "knowing the address is not a proof");
    let mut p = Policy::iess();
    p.registration.proofs = vec![];
    match p.validate() {
        Err(PolicyError::Invalid { field, .. }) => assert_eq!(field, "registration.proofs"),
        other => panic!("{other:?}"),
    }
    let json = Policy::iess()
        .to_json()
        .unwrap()
        .replace("\"attempt_budget\"", "\"proofs\": [], \"attempt_budget\"");
    assert!(Policy::from_json(&json).is_err());
}

/// A staff suspension killed a pending reset but not a pending email change, which could be
/// confirmed while the account was suspended.
#[tokio::test]
async fn a_suspension_cancels_a_pending_email_change() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;
    h.staff(
        ana.id,
        StaffRequest::ChangeEmail("ana.nueva@gmail.com".into()),
    )
    .await
    .unwrap();
    h.deliver().await;
    let token = h.token(&h.latest("ana.nueva@gmail.com"), "/confirmar-correo");
    h.staff(ana.id, StaffRequest::Suspend).await.unwrap();
    assert_eq!(
        denied(h.service.confirm_email_change(&token).await),
        Denied::InvalidToken
    );
    assert_eq!(email_of(&h, ana.id).await, ana.email);
}

/// Registration stored security questions, answers and image of any size (a 1 MB question id
/// was kept in clear in the record).
#[tokio::test]
async fn registration_enrollment_items_are_bounded() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    let big = "x".repeat(afiliado::service::MAX_ANSWER_CHARS + 1);
    let mut long_question = h.form(&luis);
    long_question.answers.security[0].0 = big.clone();
    let mut long_answer = h.form(&luis);
    long_answer.answers.security[0].1 = big.clone();
    let mut long_image = h.form(&luis);
    long_image.answers.security_image = Some(big.clone());
    for (form, field) in [
        (long_question, "security_answers"),
        (long_answer, "security_answers"),
        (long_image, "security_image"),
    ] {
        assert_eq!(field_error(h.service.register(form).await), field);
    }
    assert!(
        h.store
            .load(&luis.id.parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

/// A blank security answer was refused only after the proofs passed (and after hashing the
/// image), so the error told a stranger the registry facts were right. It is now a form error,
/// the same for every ID.
#[tokio::test]
async fn a_blank_enrollment_answer_is_a_form_error_for_every_id() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    let blank = |m: &Member, right: bool| {
        let mut f = h.form(m);
        if !right {
            f.answers.birth_day_month = Some((1, 1));
        }
        f.answers.security[1].1 = "   ".into();
        f
    };
    let right = h.service.register(blank(&luis, true)).await;
    let wrong = h.service.register(blank(&luis, false)).await;
    let unknown = h.service.register(blank(&stranger(), true)).await;
    assert_eq!(field_error(right), "security_answers");
    assert_eq!(field_error(wrong), "security_answers");
    assert_eq!(field_error(unknown), "security_answers");
    assert!(h.audit(luis.id).await.is_empty(), "nothing counted");
}

/// The core panicked on an instant whose Ecuador date is out of range.
#[test]
fn the_local_day_of_any_instant_is_total() {
    let _ = afiliado::core::local_day(time::macros::datetime!(-9999-01-01 00:00 UTC));
    let _ = afiliado::core::local_day(time::macros::datetime!(+9999-12-31 23:59 -12));
}

/// A NUL in stored free text passed the service and then failed on PostgreSQL as if the
/// database were down (`Unavailable`). It is a field error now, on every store.
#[tokio::test]
async fn control_characters_in_stored_free_text_are_field_errors() {
    let (ana, luis) = (ana(), luis());
    let h = Harness::new(Policy::iess(), &[&ana, &luis]);
    h.activate_member(&ana, "Quinde7Lago").await;
    let r = h
        .service
        .staff("op", "motivo\0x", ana.id, StaffRequest::SendReset)
        .await;
    assert_eq!(field_error(r), "reason");
    let r = h
        .service
        .staff("op\u{202E}", "motivo", ana.id, StaffRequest::SendReset)
        .await;
    assert_eq!(field_error(r), "actor");
    // A reason may span lines.
    h.service
        .staff("op", "llamada\nverificada", ana.id, StaffRequest::SendReset)
        .await
        .unwrap();

    let mut form = h.form(&luis);
    form.answers.security[0].0 = "mascota\0".into();
    assert_eq!(
        field_error(h.service.register(form).await),
        "security_answers"
    );

    let mut facts = afiliado::ports::MemberFacts::new(
        FOREIGNER_ID.parse().unwrap(),
        "MARÍA\0GONZÁLEZ",
        date!(1990 - 09 - 02),
    );
    let r = h
        .service
        .staff(
            "op",
            "enrolamiento",
            FOREIGNER_ID,
            StaffRequest::EnrollForeigner(facts.clone()),
        )
        .await;
    assert_eq!(field_error(r), "facts");
    facts.names = "MARÍA GONZÁLEZ".into();
    h.service
        .staff(
            "op",
            "enrolamiento",
            FOREIGNER_ID,
            StaffRequest::EnrollForeigner(facts),
        )
        .await
        .unwrap();
}
