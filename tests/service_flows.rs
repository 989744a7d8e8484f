//! End-to-end flows of the async service, walking the public source documents step by step: the service decides
//! and commits, the outbox dispatcher renders and sends the mails, and the tests read the
//! links and codes back out of the mails like a member would.
//!
//! * ISSPOL (the ISSPOL guide and registration manual): register → code + link → activate → login → lockout with
//!   20-minute automatic unlock → recovery by cédula + registered email → staff email change.
//! * IESS (the IESS procedure and two third-party articles): first-time generation with registry questions, security
//!   image and questions → 15-minute link → recovery with a 5-attempt budget → staff unlock
//!   → email change in recovery → declaration → 3-failure lockout → 3-minute unlock link →
//!   staff-assisted unlock → foreigners enrolled by staff.
//! * `recommended()`: the same lifecycle with its own numbers.
//! * Enumeration resistance and "no secret in the store" after every flow.
#![allow(clippy::disallowed_methods)]

mod flows;

use flows::*;

/// The ISSPOL registration manual (registration with affiliate number, 4-digit code + link, password rules) and
/// The ISSPOL guide (login by cédula, 20-minute automatic unlock, "olvidó su contraseña").
#[tokio::test]
async fn isspol_register_activate_login_lock_and_recover() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);

    // Steps 7–11: cédula, email, mobile, affiliate number; the terms box is mandatory.
    let mut no_terms = h.form(&ana);
    no_terms.terms_accepted = false;
    assert_eq!(
        denied(h.service.register(no_terms).await),
        Denied::TermsNotAccepted
    );
    let mut no_mobile = h.form(&ana);
    no_mobile.mobile = None;
    assert_eq!(
        denied(h.service.register(no_mobile).await),
        Denied::MissingContact("mobile")
    );
    assert_eq!(h.deliver().await.len(), 0);

    // Step 12–13: accepted; the mail (through the outbox) carries a link and a 4-digit code.
    assert_eq!(
        h.service.register(h.form(&ana)).await.unwrap(),
        RegisterOutcome::Submitted
    );
    assert!(h.mailer.sent().is_empty(), "mail goes through the outbox");
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    let mail = h.latest(ana.email);
    assert_eq!(mail.subject, SUBJECT_ACTIVATION);
    let token = h.token(&mail, "/activar");
    let code = h.code(&mail).expect("ISSPOL mails a code");
    assert_eq!(code.len(), 4);

    // Step 15: opening the link (or a mail scanner doing so) consumes nothing.
    let valid = LinkStatus::Valid {
        expires_at: T0 + minutes(25),
        code_required: true,
    };
    for _ in 0..3 {
        assert_eq!(h.service.inspect_activation(&token).await.unwrap(), valid);
    }

    // Steps 16–19: password (min 8, lower + upper + digit) + confirmation + code.
    h.set(T0 + minutes(5));
    let weak = h
        .service
        .activate(
            &token,
            Some(&code),
            h.pw("quinde7lago"),
            h.pw("quinde7lago"),
        )
        .await;
    assert!(matches!(denied(weak), Denied::PasswordRejected(_)));
    let mismatch = h
        .service
        .activate(
            &token,
            Some(&code),
            h.pw("Quinde7Lago"),
            h.pw("Quinde7Lagos"),
        )
        .await;
    assert_eq!(denied(mismatch), Denied::ConfirmationMismatch);
    assert_eq!(h.service.inspect_activation(&token).await.unwrap(), valid);
    assert_eq!(
        h.service
            .activate(
                &token,
                Some(&code),
                h.pw("Quinde7Lago"),
                h.pw("Quinde7Lago")
            )
            .await
            .unwrap(),
        ActivateOutcome::Activated
    );
    // Single use.
    assert!(
        h.service
            .activate(
                &token,
                Some(&code),
                h.pw("Quinde7Lago"),
                h.pw("Quinde7Lago")
            )
            .await
            .is_err()
    );
    assert_eq!(
        h.service.inspect_activation(&token).await.unwrap(),
        LinkStatus::Invalid
    );

    // The ISSPOL guide: user = cédula (typed with a hyphen), password.
    h.set(T0 + minutes(6));
    assert_eq!(
        h.login("171003406-5", "Quinde7Lago").await,
        Harness::success(ana.id)
    );

    // Five wrong passwords, the last at 19:40, lock the account (ISSPOL tells the member).
    for minute in 36..40 {
        h.set(T0 + minutes(minute));
        assert_eq!(h.login(ana.id, "Quinde7Lag0").await, LoginOutcome::Failed);
    }
    let lock_at = datetime!(2026-11-22 19:40 -5);
    h.set(lock_at);
    let until = Some(datetime!(2026-11-22 20:00 -5));
    assert_eq!(
        h.login(ana.id, "Quinde7Lag0").await,
        LoginOutcome::Locked { until }
    );
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_LOCKED);
    assert!(mails[0].to.matches(&ana.email.parse().unwrap()));
    assert!(mails[0].text.contains("22/11/2026 20:00 (hora de Ecuador)"));

    // "Espere 20 minutos": at 19:59 even the right password is refused …
    h.set(datetime!(2026-11-22 19:59 -5));
    assert_eq!(
        h.login(ana.id, "Quinde7Lago").await,
        LoginOutcome::Locked { until }
    );
    h.set(datetime!(2026-11-22 19:59:59 -5));
    assert_eq!(
        h.login(ana.id, "Quinde7Lago").await,
        LoginOutcome::Locked { until }
    );
    // … and at 20:00 it works.
    h.set(datetime!(2026-11-22 20:00 -5));
    assert_eq!(
        h.login(ana.id, "Quinde7Lago").await,
        Harness::success(ana.id)
    );

    // "Olvidó su contraseña": cédula + the registered email (case of the local part ignored).
    h.set(datetime!(2026-11-22 20:05 -5));
    let mut forgot = h.recovery(&ana);
    forgot.email = Some("Ana.Perez@Example.EC".into());
    assert_eq!(
        h.service.start_recovery(forgot).await.unwrap(),
        RecoveryOutcome::Submitted
    );
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_RESET_LINK);
    let reset = h.token(&h.latest(ana.email), "/restablecer");

    h.set(datetime!(2026-11-22 20:10 -5));
    h.service
        .reset_password(&reset, h.pw("Volcan9Nube"), h.pw("Volcan9Nube"), false)
        .await
        .expect("reset");
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_PASSWORD_CHANGED);
    assert!(
        h.service
            .reset_password(&reset, h.pw("Volcan9Nube"), h.pw("Volcan9Nube"), false)
            .await
            .is_err(),
        "reset links are single use"
    );

    assert_eq!(
        h.login(ana.id, "Volcan9Nube").await,
        Harness::success(ana.id)
    );
    assert_eq!(h.login(ana.id, "Quinde7Lago").await, LoginOutcome::Failed);

    h.assert_no_secret_stored().await;
}

/// The ISSPOL registration manual note: the code lasts 25 minutes; afterwards the member registers again.
#[tokio::test]
async fn isspol_expired_code_forces_a_new_registration() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    assert_eq!(
        h.service.register(h.form(&ana)).await.unwrap(),
        RegisterOutcome::Submitted
    );
    h.deliver().await;
    let mail = h.latest(ana.email);
    let old_token = h.token(&mail, "/activar");
    let old_code = h.code(&mail).unwrap();

    h.set(T0 + minutes(25) - Duration::seconds(1));
    assert!(matches!(
        h.service.inspect_activation(&old_token).await.unwrap(),
        LinkStatus::Valid { .. }
    ));
    h.set(T0 + minutes(25));
    assert_eq!(
        h.service.inspect_activation(&old_token).await.unwrap(),
        LinkStatus::Invalid
    );
    assert!(
        h.service
            .activate(
                &old_token,
                Some(&old_code),
                h.pw("Quinde7Lago"),
                h.pw("Quinde7Lago")
            )
            .await
            .is_err(),
        "activation at 25:00 fails"
    );
    assert_eq!(h.login(ana.id, "Quinde7Lago").await, LoginOutcome::Failed);

    // "Deberá volver a realizar el registro desde el paso No. 6."
    assert_eq!(
        h.service.register(h.form(&ana)).await.unwrap(),
        RegisterOutcome::Submitted
    );
    assert_eq!(h.deliver().await.len(), 1);
    let mail = h.latest(ana.email);
    let token = h.token(&mail, "/activar");
    let code = h.code(&mail).unwrap();
    assert_ne!(token, old_token);
    assert_eq!(
        h.service.inspect_activation(&old_token).await.unwrap(),
        LinkStatus::Invalid
    );

    h.advance(minutes(3));
    let wrong_code = format!("{}{}", &code[..3], (code.as_bytes()[3] - b'0' + 1) % 10);
    assert_eq!(
        h.service
            .activate(
                &token,
                Some(&wrong_code),
                h.pw("Quinde7Lago"),
                h.pw("Quinde7Lago")
            )
            .await
            .unwrap(),
        ActivateOutcome::WrongCode { attempts_left: 4 }
    );
    assert_eq!(
        h.service
            .activate(
                &token,
                Some(&code),
                h.pw("Quinde7Lago"),
                h.pw("Quinde7Lago")
            )
            .await
            .unwrap(),
        ActivateOutcome::Activated
    );
    assert_eq!(
        h.login(ana.id, "Quinde7Lago").await,
        Harness::success(ana.id)
    );

    h.assert_no_secret_stored().await;
}

/// The ISSPOL guide "olvidó su contraseña" with a wrong email: the same answer, and no mail at all.
#[tokio::test]
async fn isspol_recovery_with_a_wrong_email_answers_alike_and_sends_nothing() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;
    h.advance(minutes(10));

    let mut wrong = h.recovery(&ana);
    wrong.email = Some("otra.persona@example.ec".into());
    assert_eq!(
        h.service.start_recovery(wrong).await.unwrap(),
        RecoveryOutcome::Submitted
    );
    assert_eq!(h.deliver().await.len(), 0, "nothing sent for a wrong email");

    let mut unknown = RecoveryRequest::new(UNKNOWN_ID);
    unknown.email = Some("ana.perez@example.ec".into());
    assert_eq!(
        h.service.start_recovery(unknown).await.unwrap(),
        RecoveryOutcome::Submitted
    );
    assert_eq!(
        h.deliver().await.len(),
        0,
        "nothing sent for an unknown cédula"
    );

    // ISSPOL has no email change in recovery (staff only).
    let mut change = h.recovery(&ana);
    change.new_email = Some("ana.nueva@gmail.com".into());
    assert_eq!(
        denied(h.service.start_recovery(change).await),
        Denied::EmailChangeNotAllowed
    );

    // The right email still works afterwards.
    assert_eq!(
        h.service.start_recovery(h.recovery(&ana)).await.unwrap(),
        RecoveryOutcome::Submitted
    );
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_RESET_LINK);
    h.token(&mails[0], "/restablecer");

    h.assert_no_secret_stored().await;
}

/// The ISSPOL guide "no recordar el correo": staff changes it; old and new addresses are told; the
/// member then recovers with the new address.
#[tokio::test]
async fn isspol_staff_changes_the_email_then_the_member_recovers() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;
    h.advance(minutes(30));

    let new_email = "ana.nueva@gmail.com";
    h.staff(ana.id, StaffRequest::ChangeEmail(new_email.into()))
        .await
        .expect("staff email change");
    // The new address confirms the change first (the old one is told of the request).
    let mails = h.deliver().await;
    assert_eq!(
        mails.len(),
        2,
        "old address told, new address asked to confirm"
    );
    assert_eq!(h.latest(ana.email).subject, SUBJECT_EMAIL_CHANGE_REQUESTED);
    let confirm = h.token(&h.latest(new_email), "/confirmar-correo");
    h.service
        .confirm_email_change(&confirm)
        .await
        .expect("confirmation");
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 2, "old and new address are notified");
    let old = h.latest(ana.email);
    assert_eq!(old.subject, SUBJECT_EMAIL_CHANGED_FROM);
    assert!(old.text.contains("a***@gmail.com"), "new address masked");
    assert!(!old.text.contains(new_email));
    let new = h.latest(new_email);
    assert_eq!(new.subject, SUBJECT_EMAIL_CHANGED_TO);

    // Recovery with the old address sends nothing; with the new one, the link goes there.
    let mut with_old = h.recovery(&ana);
    with_old.email = Some(ana.email.into());
    assert_eq!(
        h.service.start_recovery(with_old).await.unwrap(),
        RecoveryOutcome::Submitted
    );
    assert_eq!(h.deliver().await.len(), 0);

    let mut with_new = h.recovery(&ana);
    with_new.email = Some(new_email.into());
    assert_eq!(
        h.service.start_recovery(with_new).await.unwrap(),
        RecoveryOutcome::Submitted
    );
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].to.matches(&new_email.parse().unwrap()));
    let reset = h.token(&mails[0], "/restablecer");
    h.advance(minutes(2));
    h.service
        .reset_password(&reset, h.pw("Volcan9Nube"), h.pw("Volcan9Nube"), false)
        .await
        .expect("reset");
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_PASSWORD_CHANGED);
    assert!(mails[0].to.matches(&new_email.parse().unwrap()));
    assert_eq!(
        h.login(ana.id, "Volcan9Nube").await,
        Harness::success(ana.id)
    );

    h.assert_no_secret_stored().await;
}

// ---------------------------------------------------------------------------------------------
// IESS (the IESS procedure and two third-party articles)
// ---------------------------------------------------------------------------------------------

/// The IESS steps article "emitir la clave": birth date, record questions, contact data, security image
/// and questions, terms, human check; the IESS procedure step 10: the link lasts 15 minutes.
#[tokio::test]
async fn iess_first_generation_link_lasts_fifteen_minutes() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    assert_eq!(
        h.service.record_questions(false),
        vec![
            RecordQuestion::Employer,
            RecordQuestion::FirstContributionYear,
            RecordQuestion::LastContributionYear
        ]
    );

    // "No soy un robot" is required.
    let mut robot = h.form(&luis);
    robot.human_response = None;
    assert!(matches!(
        h.service.register(robot).await,
        Err(ServiceError::HumanCheckFailed)
    ));
    // The security image is part of the enrollment.
    let mut no_image = h.form(&luis);
    no_image.answers.security_image = None;
    assert_eq!(
        denied(h.service.register(no_image).await),
        Denied::MissingEnrollment("security_image")
    );
    assert_eq!(h.deliver().await.len(), 0);

    assert_eq!(
        h.service.register(h.form(&luis)).await.unwrap(),
        RegisterOutcome::Submitted
    );
    assert_eq!(h.deliver().await.len(), 1);
    let mail = h.latest(luis.email);
    assert_eq!(mail.subject, SUBJECT_ACTIVATION);
    let token = h.token(&mail, "/activar");
    assert_eq!(h.code(&mail), None, "IESS activation is link only");
    assert_eq!(
        h.service.inspect_activation(&token).await.unwrap(),
        LinkStatus::Valid {
            expires_at: T0 + minutes(15),
            code_required: false
        }
    );

    // At 15:00 the link is dead.
    h.set(T0 + minutes(15));
    assert!(
        h.service
            .activate(&token, None, h.pw("Manglar2026"), h.pw("Manglar2026"))
            .await
            .is_err()
    );

    // A new generation, used at 14:59.
    assert_eq!(
        h.service.register(h.form(&luis)).await.unwrap(),
        RegisterOutcome::Submitted
    );
    assert_eq!(h.deliver().await.len(), 1);
    let token = h.token(&h.latest(luis.email), "/activar");
    h.advance(minutes(15) - Duration::seconds(1));
    // The IESS procedure step 12: letters and digits only.
    let symbols = h
        .service
        .activate(&token, None, h.pw("Manglar-2026"), h.pw("Manglar-2026"))
        .await;
    assert!(matches!(denied(symbols), Denied::PasswordRejected(_)));
    assert_eq!(
        h.service
            .activate(&token, None, h.pw("Manglar2026"), h.pw("Manglar2026"))
            .await
            .unwrap(),
        ActivateOutcome::Activated
    );
    assert_eq!(
        h.login(luis.id, "Manglar2026").await,
        Harness::success(luis.id)
    );

    h.assert_no_secret_stored().await;
}

/// The IESS procedure steps 5–12: recovery with birth day/month, 2 record and 2 security questions,
/// 5 attempts then blocked; staff unlock; email change after the checks; declaration.
#[tokio::test]
async fn iess_recovery_budget_staff_unlock_email_change_and_declaration() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    h.activate_member(&luis, "Manglar2026").await;
    h.advance(minutes(60));

    // Four wrong attempts: the budget counts down.
    for remaining in (1..=4).rev() {
        let mut wrong = h.recovery(&luis);
        wrong.answers.birth_day_month = Some((15, 3));
        assert_eq!(
            h.service.start_recovery(wrong).await.unwrap(),
            RecoveryOutcome::ChecksFailed,
            "{remaining} attempts left (audited, not shown)"
        );
        h.advance(minutes(1));
    }
    assert_eq!(h.deliver().await.len(), 0, "failed checks mail nothing");

    // The fifth (a wrong security answer this time) blocks the account.
    let mut wrong = h.recovery(&luis);
    wrong.answers.security[1].1 = "Manta".into();
    assert_eq!(
        h.service.start_recovery(wrong).await.unwrap(),
        RecoveryOutcome::ChecksFailed
    );
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_LOCKED);
    assert!(mails[0].to.matches(&luis.email.parse().unwrap()));
    let record = h
        .store
        .load(&luis.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.state.lock().map(|l| (l.reason, l.auto_unlock_at)),
        Some((LockReason::FailedRecovery, None))
    );
    // Blocked: the right password does not log in, and right answers do not help either.
    assert_eq!(h.login(luis.id, "Manglar2026").await, LoginOutcome::Failed);
    assert_eq!(
        h.service.start_recovery(h.recovery(&luis)).await.unwrap(),
        RecoveryOutcome::ChecksFailed
    );
    assert_eq!(h.deliver().await.len(), 0);

    // Staff-assisted unlock (the IESS steps article).
    h.staff(luis.id, StaffRequest::Unlock)
        .await
        .expect("staff unlock");
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_UNLOCKED);
    assert_eq!(
        h.login(luis.id, "Manglar2026").await,
        Harness::success(luis.id)
    );

    // Right answers (typed in another case, with accents) and a new email (step 9).
    h.advance(minutes(5));
    let new_email = "luis.nuevo@gmail.com";
    let mut ok = h.recovery(&luis);
    ok.new_email = Some(new_email.into());
    assert_eq!(
        h.service.start_recovery(ok).await.unwrap(),
        RecoveryOutcome::Submitted
    );
    // Only the reset link goes to the new address; the email changes when the reset
    // completes.
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1, "the reset link, to the new address");
    assert!(mails[0].to.matches(&new_email.parse().unwrap()));
    assert_eq!(mails[0].subject, SUBJECT_RESET_LINK);
    let reset = h.token(&h.latest(new_email), "/restablecer");

    // Step 11: the declaration must be accepted.
    h.advance(minutes(3));
    assert_eq!(
        denied(
            h.service
                .reset_password(
                    &reset,
                    h.pw("Cangrejo77Rojo"),
                    h.pw("Cangrejo77Rojo"),
                    false
                )
                .await
        ),
        Denied::DeclarationRequired
    );
    // Step 12: letters and digits only.
    assert!(matches!(
        denied(
            h.service
                .reset_password(&reset, h.pw("Cangrejo-77"), h.pw("Cangrejo-77"), true)
                .await
        ),
        Denied::PasswordRejected(_)
    ));
    h.service
        .reset_password(&reset, h.pw("Cangrejo77Rojo"), h.pw("Cangrejo77Rojo"), true)
        .await
        .expect("reset with the declaration");
    let mails = h.deliver().await;
    assert_eq!(
        mails.len(),
        3,
        "old: changed-from; new: changed-to + password changed"
    );
    let to_old: Vec<_> = mails
        .iter()
        .filter(|m| m.to.matches(&luis.email.parse().unwrap()))
        .collect();
    assert_eq!(to_old.len(), 1);
    assert_eq!(to_old[0].subject, SUBJECT_EMAIL_CHANGED_FROM);
    assert!(to_old[0].text.contains("l***@gmail.com"));
    assert!(
        !to_old[0].text.contains("?token="),
        "no link to the old address"
    );
    let to_new: Vec<_> = mails
        .iter()
        .filter(|m| m.to.matches(&new_email.parse().unwrap()))
        .map(|m| m.subject.as_str())
        .collect();
    assert_eq!(to_new, [SUBJECT_EMAIL_CHANGED_TO, SUBJECT_PASSWORD_CHANGED]);

    assert_eq!(
        h.login(luis.id, "Cangrejo77Rojo").await,
        Harness::success(luis.id)
    );
    assert_eq!(h.login(luis.id, "Manglar2026").await, LoginOutcome::Failed);

    h.assert_no_secret_stored().await;
}

/// The IESS steps article "desbloquear la clave": 3 failed logins lock; the emailed link lasts 3 minutes;
/// staff-assisted unlock.
#[tokio::test]
async fn iess_lockout_three_minute_unlock_link_and_staff_unlock() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    h.activate_member(&luis, "Manglar2026").await;
    h.advance(minutes(30));

    for _ in 0..3 {
        assert_eq!(h.login(luis.id, "Manglar2025").await, LoginOutcome::Failed);
        h.advance(minutes(1));
    }
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_LOCKED);
    // Locked: the right password is refused, answered like a wrong one; no automatic unlock.
    assert_eq!(h.login(luis.id, "Manglar2026").await, LoginOutcome::Failed);
    h.advance(Duration::days(2));
    assert_eq!(h.login(luis.id, "Manglar2026").await, LoginOutcome::Failed);

    // The unlock request needs the human check.
    assert!(matches!(
        h.service.request_unlock(luis.id, None).await,
        Err(ServiceError::HumanCheckFailed)
    ));
    h.service
        .request_unlock(luis.id, Some(HUMAN))
        .await
        .expect("unlock request");
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_UNLOCK_LINK);
    let late = h.token(&mails[0], "/desbloquear");
    h.advance(minutes(3));
    assert!(
        h.service.unlock(&late).await.is_err(),
        "the link is dead at 3:00"
    );
    assert_eq!(h.login(luis.id, "Manglar2026").await, LoginOutcome::Failed);

    // Ask again: inside the 10-minute link cooldown the link is queued for its end, then
    // used at 2:59.
    h.service
        .request_unlock(luis.id, Some(HUMAN))
        .await
        .expect("unlock request");
    assert_eq!(h.deliver().await.len(), 0, "queued");
    h.advance(minutes(7));
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    let link = h.token(&mails[0], "/desbloquear");
    assert_ne!(link, late);
    h.advance(minutes(3) - Duration::seconds(1));
    assert!(h.service.unlock(&late).await.is_err(), "old link replaced");
    h.service.unlock(&link).await.expect("unlock at 2:59");
    assert!(h.service.unlock(&link).await.is_err(), "single use");
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_UNLOCKED);
    assert_eq!(
        h.login(luis.id, "Manglar2026").await,
        Harness::success(luis.id)
    );

    // Locked again; unlocked by staff (Skype / in person).
    h.advance(minutes(10));
    for _ in 0..3 {
        assert_eq!(h.login(luis.id, "Manglar2025").await, LoginOutcome::Failed);
    }
    assert_eq!(h.login(luis.id, "Manglar2026").await, LoginOutcome::Failed);
    assert_eq!(
        denied(
            h.service
                .staff(" ", "", luis.id, StaffRequest::Unlock)
                .await
        ),
        Denied::MissingStaffReason
    );
    h.staff(luis.id, StaffRequest::Unlock)
        .await
        .expect("staff unlock");
    let subjects: Vec<_> = h.deliver().await.into_iter().map(|m| m.subject).collect();
    assert_eq!(subjects, [SUBJECT_LOCKED, SUBJECT_UNLOCKED]);
    assert_eq!(
        h.login(luis.id, "Manglar2026").await,
        Harness::success(luis.id)
    );

    h.assert_no_secret_stored().await;
}

/// The IESS procedure/004: foreigners without cédula are enrolled in person, then generate their
/// password online with the foreigner code.
#[tokio::test]
async fn iess_foreigner_enrolled_by_staff_generates_a_password() {
    let maria = maria_foreigner();
    let id: MemberId = FOREIGNER_ID.parse().expect("foreigner code parses");
    assert_eq!(id.kind(), MemberIdKind::Foreigner);
    assert_eq!(
        "ext20240001".parse::<MemberId>().unwrap(),
        id,
        "canonical upper case"
    );

    let h = Harness::new(Policy::iess(), &[]);
    // Not in the registry yet: the answer any unknown ID gets, and no mail.
    assert_eq!(
        h.service.register(h.form(&maria)).await.unwrap(),
        h.service.register(h.form(&stranger())).await.unwrap()
    );
    assert_eq!(h.deliver().await.len(), 0);

    // Only foreigner codes are enrolled this way.
    let mut cedula_facts = maria.facts.clone();
    cedula_facts.member = "0926687856".parse().unwrap();
    assert_eq!(
        denied(
            h.staff("0926687856", StaffRequest::EnrollForeigner(cedula_facts))
                .await
        ),
        Denied::IdentifierNotAccepted(MemberIdKind::Cedula)
    );
    h.staff(
        FOREIGNER_ID,
        StaffRequest::EnrollForeigner(maria.facts.clone()),
    )
    .await
    .expect("staff enrollment");
    assert!(
        h.store
            .audit_log(&id)
            .await
            .unwrap()
            .iter()
            .any(|e| format!("{:?}", e.kind).contains("enroll_foreigner"))
    );

    // Generation with the code typed in lower case.
    let mut form = h.form(&maria);
    form.member_id = "ext20240001".into();
    assert_eq!(
        h.service.register(form).await.unwrap(),
        RegisterOutcome::Submitted
    );
    assert_eq!(h.deliver().await.len(), 1);
    let token = h.token(&h.latest(maria.email), "/activar");
    h.advance(minutes(4));
    assert_eq!(
        h.service
            .activate(&token, None, h.pw("Andes2025Sol"), h.pw("Andes2025Sol"))
            .await
            .unwrap(),
        ActivateOutcome::Activated
    );
    assert_eq!(
        h.login(FOREIGNER_ID, "Andes2025Sol").await,
        Harness::success(FOREIGNER_ID)
    );

    h.assert_no_secret_stored().await;
}

// ---------------------------------------------------------------------------------------------
// recommended()
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn recommended_lifecycle() {
    let ana = ana();
    let h = Harness::new(Policy::recommended(), &[&ana]);
    let pw = "lluvia tibia sobre el cotopaxi";

    assert_eq!(
        h.service.register(h.form(&ana)).await.unwrap(),
        RegisterOutcome::Submitted
    );
    assert_eq!(h.deliver().await.len(), 1);
    let mail = h.latest(ana.email);
    let token = h.token(&mail, "/activar");
    let code = h.code(&mail).unwrap();
    assert_eq!(code.len(), 6);
    assert_eq!(
        h.service.inspect_activation(&token).await.unwrap(),
        LinkStatus::Valid {
            expires_at: T0 + minutes(15),
            code_required: true
        }
    );

    h.advance(minutes(2));
    let wrong_code = format!("{}{}", &code[..5], (code.as_bytes()[5] - b'0' + 1) % 10);
    assert_eq!(
        h.service
            .activate(&token, Some(&wrong_code), h.pw(pw), h.pw(pw))
            .await
            .unwrap(),
        ActivateOutcome::WrongCode { attempts_left: 4 }
    );
    assert!(
        h.service
            .activate(&token, None, h.pw(pw), h.pw(pw))
            .await
            .is_err(),
        "the code is required"
    );
    // 15 characters minimum (no composition rules).
    let short = h
        .service
        .activate(
            &token,
            Some(&code),
            h.pw("Corto7Lago!xyz"),
            h.pw("Corto7Lago!xyz"),
        )
        .await;
    assert!(matches!(denied(short), Denied::PasswordRejected(_)));
    assert_eq!(
        h.service
            .activate(&token, Some(&code), h.pw(pw), h.pw(pw))
            .await
            .unwrap(),
        ActivateOutcome::Activated
    );
    assert_eq!(h.login(ana.id, pw).await, Harness::success(ana.id));

    // Ten failures lock for 1 minute, silently.
    let wrong = "lluvia tibia sobre el chimborazo";
    h.set(T0 + minutes(10));
    for _ in 0..10 {
        assert_eq!(h.login(ana.id, wrong).await, LoginOutcome::Failed);
        h.advance(Duration::seconds(1));
    }
    let lock1 = h.now() - Duration::seconds(1);
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_LOCKED);
    h.set(lock1 + Duration::seconds(59));
    assert_eq!(h.login(ana.id, pw).await, LoginOutcome::Failed);

    // Without a successful login in between, the next lockout lasts 5 minutes.
    h.set(lock1 + minutes(1));
    for _ in 0..10 {
        assert_eq!(h.login(ana.id, wrong).await, LoginOutcome::Failed);
        h.advance(Duration::seconds(1));
    }
    let lock2 = h.now() - Duration::seconds(1);
    let record = h
        .store
        .load(&ana.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.state.lock().and_then(|l| l.auto_unlock_at),
        Some(lock2 + minutes(5))
    );
    assert_eq!(h.deliver().await.len(), 1);
    h.set(lock2 + minutes(5) - Duration::seconds(1));
    assert_eq!(h.login(ana.id, pw).await, LoginOutcome::Failed);
    h.set(lock2 + minutes(5));
    assert_eq!(h.login(ana.id, pw).await, Harness::success(ana.id));

    // Locked again (1 minute: the success reset the progression); unlocked by link.
    h.advance(minutes(10));
    for _ in 0..10 {
        assert_eq!(h.login(ana.id, wrong).await, LoginOutcome::Failed);
    }
    assert_eq!(h.login(ana.id, pw).await, LoginOutcome::Failed);
    assert_eq!(h.deliver().await.len(), 1);
    assert!(matches!(
        h.service.request_unlock(ana.id, None).await,
        Err(ServiceError::HumanCheckFailed)
    ));
    h.service
        .request_unlock(ana.id, Some(HUMAN))
        .await
        .expect("unlock request");
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, SUBJECT_UNLOCK_LINK);
    let link = h.token(&mails[0], "/desbloquear");
    h.advance(Duration::seconds(30));
    h.service.unlock(&link).await.expect("unlock by link");
    assert_eq!(h.deliver().await.len(), 1);
    assert_eq!(h.login(ana.id, pw).await, Harness::success(ana.id));

    // Recovery: possession of the registered email only; no email change.
    h.advance(minutes(30));
    let mut change = h.recovery(&ana);
    change.new_email = Some("ana.nueva@gmail.com".into());
    assert_eq!(
        denied(h.service.start_recovery(change).await),
        Denied::EmailChangeNotAllowed
    );
    let mut robot = h.recovery(&ana);
    robot.human_response = None;
    assert!(matches!(
        h.service.start_recovery(robot).await,
        Err(ServiceError::HumanCheckFailed)
    ));
    assert_eq!(
        h.service.start_recovery(h.recovery(&ana)).await.unwrap(),
        RecoveryOutcome::Submitted
    );
    let mails = h.deliver().await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].to.matches(&ana.email.parse().unwrap()));
    let reset = h.token(&mails[0], "/restablecer");
    let new_pw = "guayacanes en flor cerca de loja";
    h.advance(minutes(14));
    h.service
        .reset_password(&reset, h.pw(new_pw), h.pw(new_pw), false)
        .await
        .expect("reset");
    assert_eq!(h.deliver().await.len(), 1);
    assert_eq!(h.login(ana.id, new_pw).await, Harness::success(ana.id));
    assert_eq!(h.login(ana.id, pw).await, LoginOutcome::Failed);

    h.assert_no_secret_stored().await;
}

// ---------------------------------------------------------------------------------------------
// Enumeration resistance (security rules)
// ---------------------------------------------------------------------------------------------

fn presets() -> [Policy; 3] {
    [Policy::isspol(), Policy::iess(), Policy::recommended()]
}

#[tokio::test]
async fn login_with_an_unknown_id_answers_like_a_wrong_password() {
    for policy in presets() {
        let name = policy.name.clone();
        let ana = ana();
        let h = Harness::new(policy, &[&ana]);
        h.activate_member(&ana, UNIVERSAL_PW).await;
        h.advance(minutes(5));
        let wrong = h.login(ana.id, "Quinde7LagoAzu1").await;
        let unknown = h.login(UNKNOWN_ID, "Quinde7LagoAzu1").await;
        let malformed = h.login("1710034064", "Quinde7LagoAzu1").await;
        assert_eq!(wrong, LoginOutcome::Failed, "{name}");
        assert_eq!(unknown, wrong, "{name}: unknown ID vs wrong password");
        assert_eq!(malformed, wrong, "{name}: malformed ID vs wrong password");
        // Counted like the account's failure (the same store work), and nothing else kept.
        let record = h.record(UNKNOWN_ID).await;
        assert_eq!(record.state, afiliado::core::AccountState::Unregistered);
        assert_eq!(record.shadow.failures.len(), 1, "{name}");
        assert_eq!(h.record(ana.id).await.shadow, Default::default());
        assert_eq!(h.deliver().await.len(), 0, "{name}");
        h.assert_no_secret_stored().await;
    }
}

/// Spoils the registry proofs of a form (affiliate number, birth day/month).
fn spoil(mut req: RegisterRequest) -> RegisterRequest {
    req.answers.affiliate_number = Some("ISS-000001".into());
    req.answers.birth_day_month = Some((1, 1));
    req
}

/// Register with an unknown cédula: no mail, no contact data kept, and the same answer (and
/// the same counted failure) a registry member gets for wrong proofs, so the form does not
/// tell who is an ISSPOL/IESS member.
#[tokio::test]
async fn register_with_an_unknown_id_mails_nothing_and_answers_like_wrong_proofs() {
    for policy in presets() {
        let name = policy.name.clone();
        let ana = ana();
        let h = Harness::new(policy, &[&ana]);
        let unknown = h.service.register(h.form(&stranger())).await.unwrap();
        assert_eq!(h.deliver().await.len(), 0, "{name}: no mail");
        let record = h.record(UNKNOWN_ID).await;
        assert_eq!(record.state, afiliado::core::AccountState::Unregistered);
        assert_eq!(record.registration_failures.count, 1, "{name}: counted");
        let wrong = h.service.register(spoil(h.form(&ana))).await.unwrap();
        assert_eq!(unknown, wrong, "{name}: unknown ID vs wrong proofs");
        let spoiled_unknown = h
            .service
            .register(spoil(h.form(&stranger())))
            .await
            .unwrap();
        let spoiled_member = h.service.register(spoil(h.form(&ana))).await.unwrap();
        assert_eq!(h.deliver().await.len(), 0, "{name}: no mail");
        assert_eq!(unknown, spoiled_unknown, "{name}");
        assert_eq!(
            spoiled_member, unknown,
            "{name}: wrong proofs for a member vs an unknown cédula"
        );

        // The member with the right data is accepted (and mailed).
        h.advance(minutes(1));
        assert_eq!(
            h.service.register(h.form(&ana)).await.unwrap(),
            RegisterOutcome::Submitted,
            "{name}"
        );
        assert_eq!(h.deliver().await.len(), 1, "{name}");
        // Registering an active account with the right data: same answer, a warning mail.
        let token = h.token(&h.latest(ana.email), "/activar");
        let code = h.code(&h.latest(ana.email));
        h.service
            .activate(
                &token,
                code.as_deref(),
                h.pw(UNIVERSAL_PW),
                h.pw(UNIVERSAL_PW),
            )
            .await
            .unwrap();
        h.advance(minutes(2));
        assert_eq!(
            h.service.register(h.form(&ana)).await.unwrap(),
            RegisterOutcome::Submitted,
            "{name}"
        );
        let mails = h.deliver().await;
        assert_eq!(mails.len(), 1, "{name}: warning to the active account");
        assert!(
            !mails[0].text.contains("?token="),
            "{name}: no link in the warning"
        );
        h.assert_no_secret_stored().await;
    }
}

/// Security rules: once a member has an active account, a registration with *wrong* proofs must
/// still answer like an unknown cédula; otherwise anyone can tell who has an online account.
#[tokio::test]
async fn register_on_an_active_account_with_wrong_proofs_answers_like_an_unknown_id() {
    for policy in presets() {
        let name = policy.name.clone();
        let ana = ana();
        let h = Harness::new(policy, &[&ana]);
        h.activate_member(&ana, UNIVERSAL_PW).await;
        h.advance(minutes(2));
        let unknown = h
            .service
            .register(spoil(h.form(&stranger())))
            .await
            .unwrap();
        let active = h.service.register(spoil(h.form(&ana))).await.unwrap();
        assert_eq!(
            active, unknown,
            "{name}: wrong proofs on an active account vs an unknown cédula"
        );
    }
}

/// Data minimisation and enumeration resistance: an unlock request for an ID without an
/// account answers `Ok`, mails nothing, and is recorded like a request for an account that is
/// not locked (the same store work), with no personal data.
#[tokio::test]
async fn unlock_request_for_an_unknown_id_is_recorded_like_any_other() {
    for policy in [Policy::iess(), Policy::recommended()] {
        let name = policy.name.clone();
        let h = Harness::new(policy, &[]);
        h.service
            .request_unlock(UNKNOWN_ID, Some(HUMAN))
            .await
            .expect("same answer as for a real account");
        assert_eq!(h.deliver().await.len(), 0, "{name}");
        let mut bare = afiliado::core::AccountRecord::new(UNKNOWN_ID.parse().unwrap());
        bare.version = 1;
        assert_eq!(
            h.record(UNKNOWN_ID).await,
            bare,
            "{name}: nothing but the record itself"
        );
        assert_eq!(
            h.audit(UNKNOWN_ID).await,
            vec![afiliado::core::AuditKind::UnlockRequestIgnored],
            "{name}"
        );
    }
}
