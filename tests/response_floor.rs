//! The response floor: a login, registration, recovery or unlock request answers no earlier
//! than `ServiceBuilder::response_floor` after the call, whatever the ID and whatever the
//! answer (form errors included), so the time a request takes does not carry its work. The
//! distributions themselves are compared by `cargo bench --bench enumeration --all-features`;
//! this test checks the lower bound, which never depends on the machine's speed.
#![allow(clippy::disallowed_methods)]

mod flows;

use std::time::Instant;

use flows::*;

const FLOOR: std::time::Duration = std::time::Duration::from_millis(30);

/// A harness on the memory store whose service has a response floor of `FLOOR`.
fn floored(policy: Policy, members: &[&Member]) -> (Harness, AccountService) {
    let h = Harness::new(policy.clone(), members);
    let mut policy = policy;
    policy.hashing = HashParams::danger_insecure_for_tests();
    let mut rng = StdRng::seed_from_u64(9);
    let directory = members
        .iter()
        .fold(MemoryDirectory::new(), |d, m| d.with(m.facts.clone()));
    let service = AccountService::builder(
        policy,
        DigestKey::generate(&mut rng),
        SealKey::generate(&mut rng),
    )
    .store(h.store.clone())
    .directory(Arc::new(directory))
    .human_check(Arc::new(AlwaysPass))
    .clock(h.clock.clone())
    .response_floor(FLOOR)
    .build()
    .expect("service builds");
    (h, service)
}

async fn took<T>(request: impl std::future::Future<Output = T>) -> (T, std::time::Duration) {
    let started = Instant::now();
    let answer = request.await;
    (answer, started.elapsed())
}

#[tokio::test]
async fn every_anonymous_request_answers_no_earlier_than_the_floor() {
    for policy in [Policy::iess(), Policy::recommended()] {
        let name = policy.name.clone();
        let ana = ana();
        let (h, service) = floored(policy, &[&ana]);
        h.activate_member(&ana, UNIVERSAL_PW).await;
        for id in [ana.id, UNKNOWN_ID] {
            let (_, t) = took(service.login(id, Password::new("Adivino1234"))).await;
            assert!(t >= FLOOR, "{name} login {id}: {t:?}");
            let mut wrong = h.form(&ana);
            wrong.member_id = id.to_owned();
            wrong.answers.birth_day_month = Some((1, 1));
            wrong.answers.affiliate_number = Some("ISS-000001".into());
            let (answer, t) = took(service.register(wrong)).await;
            assert_eq!(answer.unwrap(), RegisterOutcome::ChecksFailed, "{name}");
            assert!(t >= FLOOR, "{name} register {id}: {t:?}");
            let mut recovery = h.recovery(&ana);
            recovery.member_id = id.to_owned();
            let (_, t) = took(service.start_recovery(recovery)).await;
            assert!(t >= FLOOR, "{name} recovery {id}: {t:?}");
            let (_, t) = took(service.request_unlock(id, Some(HUMAN))).await;
            assert!(t >= FLOOR, "{name} unlock request {id}: {t:?}");
        }
        // Errors too: a malformed form answers after the floor, like any other.
        let (answer, t) = took(service.request_unlock("17100340", Some(HUMAN))).await;
        assert!(matches!(answer, Err(ServiceError::InvalidInput { .. })));
        assert!(t >= FLOOR, "{name} malformed ID: {t:?}");
    }
}

#[tokio::test]
async fn the_floor_is_a_timer_not_a_queue() {
    // 50 concurrent requests answer in about one floor, not fifty: the wait holds no lock,
    // hashing worker or connection. (Bound generous for a loaded machine.)
    let ana = ana();
    let (_h, service) = floored(Policy::recommended(), &[&ana]);
    let started = Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move { service.request_unlock(UNKNOWN_ID, Some(HUMAN)).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").unwrap();
    }
    let t = started.elapsed();
    assert!(t >= FLOOR);
    assert!(
        t < FLOOR * 25,
        "50 concurrent requests took {t:?} (serialised would be 1.5 s)"
    );
}
