//! Link pacing end to end (service + outbox dispatcher): the member's own unlock request
//! yields a link that works when it arrives, within `notices.link_cooldown`, whatever a
//! stranger does in between (re-locking the account, letting a lock lift and placing it
//! again, asking for reset links).
#![allow(clippy::disallowed_methods)]

mod flows;

use flows::*;

/// Walks the clock minute by minute, delivering mail and following the newest unlock link in
/// the inbox (one already there counts); returns the minutes after `asked` at which one first
/// worked.
async fn first_working_unlock(h: &Harness, asked: OffsetDateTime, max_min: i64) -> Option<i64> {
    let mut inbox: Vec<Mail> = h
        .mailer
        .sent()
        .into_iter()
        .filter(|m| m.subject == SUBJECT_UNLOCK_LINK)
        .collect();
    inbox.reverse();
    for _ in 0..=max_min {
        let mut newest = h.deliver().await;
        newest.reverse();
        for m in newest.into_iter().chain(std::mem::take(&mut inbox)) {
            if m.subject == SUBJECT_UNLOCK_LINK {
                let token = h.token(&m, "/desbloquear");
                if h.service.unlock(&token).await.is_ok() {
                    return Some((h.now() - asked).whole_minutes());
                }
            }
        }
        h.advance(minutes(1));
    }
    None
}

async fn lock_out(h: &Harness, id: &str, wrong: &str) {
    for _ in 0..h.policy().lockout.threshold {
        h.login(id, wrong).await;
    }
}

/// IESS: a queued unlock link was killed when five wrong recovery forms locked the account
/// again (reason `FailedRecovery`), and the member's request then queued behind the dead
/// link: a working link only 16 minutes after asking. A new lock now keeps the link.
#[tokio::test]
async fn a_relock_keeps_the_queued_unlock_link() {
    let luis = luis();
    let h = Harness::new(Policy::iess(), &[&luis]);
    h.activate_member(&luis, "Manglar2026").await;
    lock_out(&h, luis.id, "Manglar2025").await;
    h.deliver().await;
    h.service
        .request_unlock(luis.id, Some(HUMAN))
        .await
        .unwrap(); // mailed now, 3 min
    assert_eq!(h.deliver().await.len(), 1);
    h.advance(minutes(4));
    h.service
        .request_unlock(luis.id, Some(HUMAN))
        .await
        .unwrap(); // queued to +10
    assert!(h.deliver().await.is_empty());
    for _ in 0..5 {
        let mut wrong = h.recovery(&luis);
        wrong.answers.birth_day_month = Some((1, 1));
        h.service.start_recovery(wrong).await.unwrap();
    }
    let asked = h.now();
    h.service
        .request_unlock(luis.id, Some(HUMAN))
        .await
        .unwrap(); // the member
    let got = first_working_unlock(&h, asked, 30).await;
    assert!(
        got.is_some_and(|m| m <= 10),
        "working link after {got:?} min"
    );
}

/// `recommended()`: the stranger let the lock lift by itself and locked the account again
/// while a link was queued; the queued link arrived dead. A live link now outlives the
/// automatic unlock and is picked up by the next lock.
#[tokio::test]
async fn a_link_outlives_an_automatic_unlock_and_the_next_lock() {
    let ana = ana();
    let h = Harness::new(Policy::recommended(), &[&ana]);
    h.activate_member(&ana, UNIVERSAL_PW).await;
    let wrong = "QuindeWrongLagoAzul9";
    lock_out(&h, ana.id, wrong).await;
    h.service.request_unlock(ana.id, Some(HUMAN)).await.unwrap();
    h.deliver().await;
    let record = h.record(ana.id).await;
    h.set(record.state.lock().unwrap().auto_unlock_at.unwrap());
    lock_out(&h, ana.id, wrong).await;
    h.service.request_unlock(ana.id, Some(HUMAN)).await.unwrap();
    let record = h.record(ana.id).await;
    let until = record.state.lock().unwrap().auto_unlock_at.unwrap();
    if until < record.unlock_link_at.unwrap() {
        h.set(until);
        lock_out(&h, ana.id, wrong).await;
    }
    let asked = h.now();
    h.service.request_unlock(ana.id, Some(HUMAN)).await.unwrap();
    let got = first_working_unlock(&h, asked, 30).await;
    assert!(
        got.is_some_and(|m| m <= 10),
        "working link after {got:?} min"
    );
}

/// `recommended()` recovery needs no proof: a stranger's reset request used to kill the
/// member's unlock link (16 of 18 unlock links dead on arrival). It now leaves it alone.
#[tokio::test]
async fn a_strangers_reset_request_leaves_the_unlock_link_alone() {
    let ana = ana();
    let h = Harness::new(Policy::recommended(), &[&ana]);
    h.activate_member(&ana, UNIVERSAL_PW).await;
    lock_out(&h, ana.id, "QuindeWrongLagoAzul9").await;
    h.deliver().await;
    let asked = h.now();
    h.service.request_unlock(ana.id, Some(HUMAN)).await.unwrap(); // the member
    let mut stranger = RecoveryRequest::new(ana.id);
    stranger.human_response = Some(HUMAN.into());
    h.service.start_recovery(stranger).await.unwrap();
    let got = first_working_unlock(&h, asked, 0).await;
    assert_eq!(got, Some(0), "the unlock link works on arrival");
}
