//! Trusted devices (OWASP "device cookies"): a stranger who knows only the cédula can lock the
//! account for every other client, but never for the member's own browser.
#![allow(clippy::disallowed_methods)]

mod flows;

use afiliado::core::{AccountState, AuditKind, LockReason};
use flows::*;

const STRANGER_PW: &str = "Adivino1234";

async fn login_with(h: &Harness, id: &str, pw: &str, cookie: Option<&str>) -> LoginOutcome {
    h.service
        .login_device(id, h.pw(pw), cookie)
        .await
        .expect("login answers")
        .outcome
}

/// Logs in from a fresh browser and returns the device token it is given.
async fn trusted_browser(h: &Harness, id: &str, pw: &str) -> String {
    let answer = h
        .service
        .login_device(id, h.pw(pw), None)
        .await
        .expect("login answers");
    assert_eq!(answer.outcome, Harness::success(id));
    let token = answer
        .device_token
        .expect("a device token after a successful login");
    let token = token.expose_secret().to_owned();
    h.note(&token);
    token
}

fn locked(outcome: &LoginOutcome) -> bool {
    matches!(outcome, LoginOutcome::Locked { .. })
}

async fn lock_out(h: &Harness, id: &str) {
    for _ in 0..h.policy().lockout.threshold {
        h.login(id, STRANGER_PW).await;
    }
    let r = h.store.load(&id.parse().unwrap()).await.unwrap().unwrap();
    assert!(
        matches!(r.state.lock(), Some(l) if l.reason == LockReason::FailedLogins),
        "the stranger locked the account"
    );
}

/// ISSPOL (lock state revealed): the stranger's five wrong passwords lock the account for
/// every client but the member's browser, which keeps its own count.
#[tokio::test]
async fn a_strangers_lockout_never_locks_the_members_browser() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;
    let cookie = trusted_browser(&h, ana.id, "Quinde7Lago").await;

    lock_out(&h, ana.id).await;
    assert!(
        locked(&h.login(ana.id, "Quinde7Lago").await),
        "other clients stay locked out"
    );
    assert_eq!(
        login_with(&h, ana.id, "Quinde7Lago", Some(&cookie)).await,
        Harness::success(ana.id),
        "the member's browser gets in"
    );
    // The lock stays for everyone else: the stranger gets no fresh set of guesses.
    assert!(locked(&h.login(ana.id, STRANGER_PW).await));
    assert!(locked(&h.login(ana.id, "Quinde7Lago").await));

    // The device's own wrong passwords count on the device only, up to its threshold.
    let threshold = h.policy().devices.threshold;
    for _ in 1..threshold {
        assert_eq!(
            login_with(&h, ana.id, "Quinde7Lagx", Some(&cookie)).await,
            LoginOutcome::Failed
        );
    }
    assert_eq!(
        login_with(&h, ana.id, "Quinde7Lago", Some(&cookie)).await,
        Harness::success(ana.id),
        "a success clears the device's failures"
    );
    for _ in 0..threshold {
        login_with(&h, ana.id, "Quinde7Lagx", Some(&cookie)).await;
    }
    assert!(
        h.audit(ana.id).await.contains(&AuditKind::DeviceDistrusted),
        "at its threshold the device loses its trust"
    );
    assert!(
        locked(&login_with(&h, ana.id, "Quinde7Lago", Some(&cookie)).await),
        "and is then a client like any other"
    );
    h.assert_no_secret_stored().await;
}

/// IESS locks never lift by themselves: without devices only staff could help.
#[tokio::test]
async fn iess_members_browser_gets_in_through_a_lock_that_never_lifts() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    h.activate_member(&luis, "Manglar2026").await;
    let cookie = trusted_browser(&h, luis.id, "Manglar2026").await;
    lock_out(&h, luis.id).await;
    h.advance(Duration::days(3));
    assert_eq!(h.login(luis.id, "Manglar2026").await, LoginOutcome::Failed);
    assert_eq!(
        login_with(&h, luis.id, "Manglar2026", Some(&cookie)).await,
        Harness::success(luis.id)
    );
}

/// A token is bound to its member: Ana's cookie does nothing for Luis's account, and a
/// malformed cookie is ignored.
#[tokio::test]
async fn another_members_token_is_useless() {
    let (ana, luis) = (ana(), luis());
    let h = Harness::new(Policy::isspol(), &[&ana, &luis]);
    h.activate_member(&ana, "Quinde7Lago").await;
    h.activate_member(&luis, "Manglar2026").await;
    let anas = trusted_browser(&h, ana.id, "Quinde7Lago").await;
    lock_out(&h, luis.id).await;
    assert!(locked(
        &login_with(&h, luis.id, "Manglar2026", Some(&anas)).await
    ));
    assert!(locked(
        &login_with(&h, luis.id, "Manglar2026", Some("not-a-token")).await
    ));
}

/// Trust ends with the device's lifetime, and is revoked by a password reset, a confirmed
/// email change and a staff suspension.
#[tokio::test]
async fn devices_expire_and_are_revoked() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;

    // Lifetime.
    let cookie = trusted_browser(&h, ana.id, "Quinde7Lago").await;
    h.advance(Duration::try_from(h.policy().devices.lifetime).unwrap());
    lock_out(&h, ana.id).await;
    assert!(locked(
        &login_with(&h, ana.id, "Quinde7Lago", Some(&cookie)).await
    ));
    h.advance(minutes(20)); // the ISSPOL lock lifts by itself

    // Password reset (recovery by cédula and registered email).
    let cookie = trusted_browser(&h, ana.id, "Quinde7Lago").await;
    h.deliver().await;
    let mut req = RecoveryRequest::new(ana.id);
    req.email = Some(ana.email.into());
    h.service.start_recovery(req).await.unwrap();
    h.deliver().await;
    let reset = h.token(&h.latest(ana.email), "/restablecer");
    h.service
        .reset_password(&reset, h.pw("Volcan9Nube"), h.pw("Volcan9Nube"), false)
        .await
        .unwrap();
    assert!(h.audit(ana.id).await.contains(&AuditKind::DevicesRevoked));
    lock_out(&h, ana.id).await;
    assert!(locked(
        &login_with(&h, ana.id, "Volcan9Nube", Some(&cookie)).await
    ));
    h.advance(minutes(20));

    // Confirmed email change.
    let cookie = trusted_browser(&h, ana.id, "Volcan9Nube").await;
    h.staff(
        ana.id,
        StaffRequest::ChangeEmail("ana.nueva@gmail.com".into()),
    )
    .await
    .unwrap();
    h.deliver().await;
    let confirm = h.token(&h.latest("ana.nueva@gmail.com"), "/confirmar-correo");
    h.service.confirm_email_change(&confirm).await.unwrap();
    lock_out(&h, ana.id).await;
    assert!(locked(
        &login_with(&h, ana.id, "Volcan9Nube", Some(&cookie)).await
    ));
    h.advance(minutes(20));

    // Staff suspension: never bypassed, and the devices are gone afterwards.
    let cookie = trusted_browser(&h, ana.id, "Volcan9Nube").await;
    h.staff(ana.id, StaffRequest::Suspend).await.unwrap();
    assert!(locked(
        &login_with(&h, ana.id, "Volcan9Nube", Some(&cookie)).await
    ));
    let r = h
        .store
        .load(&ana.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(r.devices.is_empty());
    assert!(matches!(r.state, AccountState::Locked { .. }));
}

/// With `devices.enabled = false` no token is handed out and a lock holds for everyone.
#[tokio::test]
async fn devices_can_be_turned_off() {
    let ana = ana();
    let mut policy = Policy::isspol();
    policy.devices.enabled = false;
    let h = Harness::new(policy, &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;
    let answer = h
        .service
        .login_device(ana.id, h.pw("Quinde7Lago"), None)
        .await
        .unwrap();
    assert!(answer.device_token.is_none());
}

/// `login` (for callers that cannot keep a cookie) trusts no device, so it never pushes the
/// member's real browsers out of the per-account list.
#[tokio::test]
async fn plain_login_trusts_no_device() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;
    let cookie = trusted_browser(&h, ana.id, "Quinde7Lago").await;
    for _ in 0..20 {
        assert_eq!(
            h.login(ana.id, "Quinde7Lago").await,
            Harness::success(ana.id)
        );
    }
    let r = h
        .store
        .load(&ana.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.devices.len(), 1);
    lock_out(&h, ana.id).await;
    assert_eq!(
        login_with(&h, ana.id, "Quinde7Lago", Some(&cookie)).await,
        Harness::success(ana.id)
    );
}

/// A stolen device token buys `devices.threshold` guesses in all, not that many per window
/// forever: the device's failures only reset on its own successful login.
#[tokio::test]
async fn a_stolen_device_token_buys_a_few_guesses_in_all() {
    let ana = ana();
    let h = Harness::new(Policy::isspol(), &[&ana]);
    h.activate_member(&ana, "Quinde7Lago").await;
    let cookie = trusted_browser(&h, ana.id, "Quinde7Lago").await;
    let threshold = h.policy().devices.threshold;
    for _ in 1..threshold {
        login_with(&h, ana.id, "Quinde7Lagx", Some(&cookie)).await;
        h.advance(Duration::hours(1)); // well past any lockout window
    }
    login_with(&h, ana.id, "Quinde7Lagx", Some(&cookie)).await;
    assert!(h.audit(ana.id).await.contains(&AuditKind::DeviceDistrusted));
}
