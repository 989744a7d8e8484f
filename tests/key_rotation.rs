//! Key rotation loses no mail and kills no link: a deployment restarts with new digest and
//! seal keys, listing the old ones as older keys, in the middle of every flow. A mail queued
//! under the old seal key is still delivered; activation links and codes, unlock links and
//! trusted-device tokens digested under the old key still work; everything new uses the new
//! keys. A dispatcher that lacks the old seal key keeps such a mail pending (never a dead
//! letter) until one that has it runs.
#![allow(clippy::disallowed_methods)]

mod flows;

use afiliado::seal::SealKeys;
use flows::*;

/// The keys `Harness::new` uses (same seed).
fn old_keys() -> (DigestKey, SealKey) {
    let mut rng = StdRng::seed_from_u64(20_261_122);
    let digest = DigestKey::generate(&mut rng);
    let seal = SealKey::generate(&mut rng);
    (digest, seal)
}

fn new_keys() -> (DigestKey, SealKey) {
    let mut rng = StdRng::seed_from_u64(2027);
    (DigestKey::generate(&mut rng), SealKey::generate(&mut rng))
}

/// The service and dispatcher after the restart, on the harness's store, clock and mailer.
fn restarted(
    h: &Harness,
    members: &[&Member],
    seal_keys: SealKeys,
) -> (AccountService, OutboxDispatcher) {
    let (old_digest, _) = old_keys();
    let (new_digest, new_seal) = new_keys();
    let mut policy = h.policy().clone();
    policy.hashing = HashParams::danger_insecure_for_tests();
    let directory = members
        .iter()
        .fold(MemoryDirectory::new(), |d, m| d.with(m.facts.clone()));
    let service = AccountService::builder(policy, new_digest, new_seal)
        .older_digest_key(old_digest)
        .store(h.store.clone())
        .directory(Arc::new(directory))
        .human_check(Arc::new(AlwaysPass))
        .clock(h.clock.clone())
        .response_floor(std::time::Duration::ZERO)
        .build()
        .expect("service builds");
    let dispatcher = OutboxDispatcher::new(
        h.store.clone(),
        h.mailer.clone(),
        seal_keys,
        LinkBase::new(BASE).expect("link base"),
        h.clock.clone(),
    );
    (service, dispatcher)
}

#[tokio::test]
async fn a_rotation_mid_flow_loses_no_mail_and_kills_no_link() {
    for policy in [Policy::isspol(), Policy::iess(), Policy::recommended()] {
        let name = policy.name.clone();
        let (ana, luis) = (ana(), luis());
        let h = Harness::new(policy, &[&ana, &luis]);

        // Before the rotation: Luis is active with a trusted browser and locked by a
        // stranger (with an unlock link in his inbox where the preset offers one); Ana's
        // activation mail is queued but not yet sent.
        h.activate_member(&luis, UNIVERSAL_PW).await;
        let device = h
            .service
            .login_device(luis.id, h.pw(UNIVERSAL_PW), None)
            .await
            .unwrap()
            .device_token
            .expect("a device token");
        let device = device.expose_secret().to_owned();
        for _ in 0..h.policy().lockout.threshold {
            h.login(luis.id, "Adivino1234").await;
        }
        let unlock_offered = h.policy().unlock.link_ttl.is_some();
        if unlock_offered {
            h.service
                .request_unlock(luis.id, Some(HUMAN))
                .await
                .unwrap();
        }
        h.deliver().await;
        let unlock_link = unlock_offered.then(|| h.token(&h.latest(luis.email), "/desbloquear"));
        assert_eq!(
            h.service.register(h.form(&ana)).await.unwrap(),
            RegisterOutcome::Submitted
        );

        // Restart with new keys, the old ones listed as older.
        let (_, old_seal) = old_keys();
        let (_, new_seal) = new_keys();
        let (service, dispatcher) = restarted(
            &h,
            &[&ana, &luis],
            SealKeys::new(new_seal).with_older(old_seal),
        );

        // The queued activation mail goes out, and its link and code work.
        let report = dispatcher.run_once(100).await.unwrap();
        assert_eq!((report.sent, report.dead_lettered), (1, 0), "{name}");
        let mail = h.latest(ana.email);
        assert_eq!(mail.subject, SUBJECT_ACTIVATION, "{name}");
        let token = h.token(&mail, "/activar");
        let code = h.code(&mail);
        assert!(
            matches!(
                service.inspect_activation(&token).await.unwrap(),
                LinkStatus::Valid { .. }
            ),
            "{name}"
        );
        assert_eq!(
            service
                .activate(
                    &token,
                    code.as_deref(),
                    h.pw(UNIVERSAL_PW),
                    h.pw(UNIVERSAL_PW)
                )
                .await
                .unwrap(),
            ActivateOutcome::Activated,
            "{name}"
        );

        // Luis's browser is still trusted, and his unlock link still works.
        let answer = service
            .login_device(luis.id, h.pw(UNIVERSAL_PW), Some(&device))
            .await
            .unwrap();
        assert_eq!(answer.outcome, Harness::success(luis.id), "{name}: device");
        if let Some(link) = unlock_link {
            service.unlock(&link).await.expect("old unlock link works");
            assert!(h.record(luis.id).await.state.lock().is_none(), "{name}");
        }

        // New mail is sealed under the new key: a dispatcher with only the old key cannot
        // open it, and keeps it pending instead of losing it.
        let (_, old_seal) = old_keys();
        let old_only = OutboxDispatcher::new(
            h.store.clone(),
            h.mailer.clone(),
            old_seal,
            LinkBase::new(BASE).expect("link base"),
            h.clock.clone(),
        );
        service
            .start_recovery(h.recovery(&ana))
            .await
            .expect("recovery answers");
        let resets_to_ana = || {
            h.mailer
                .sent()
                .iter()
                .filter(|m| m.subject == SUBJECT_RESET_LINK && m.to.as_str() == ana.email)
                .count()
        };
        let report = old_only.run_once(100).await.unwrap();
        assert_eq!(report.dead_lettered, 0, "{name}: never a dead letter");
        assert_eq!(report.retried, 1, "{name}: the reset link is kept pending");
        assert_eq!(resets_to_ana(), 0, "{name}");
        // The right dispatcher sends it once it is due again.
        h.advance(Duration::hours(2));
        let report = dispatcher.run_once(100).await.unwrap();
        assert_eq!(report.dead_lettered, 0, "{name}");
        assert_eq!(resets_to_ana(), 1, "{name}: delivered after all");
    }
}

#[test]
fn keys_load_from_base64_text_and_have_stable_ids() {
    let text = "q0jT2lUjl0M4Bdg8o3zJ8sXbwqGk9Xp3KfQyWnH1tE4=";
    let a = SealKey::from_base64(text).unwrap();
    let b = SealKey::from_base64(&format!("  {}\n", text.trim_end_matches('='))).unwrap();
    assert_eq!(a.id(), b.id());
    assert_ne!(a.id(), SealKey::random().id());
    assert!(SealKey::from_base64("c2hvcnQ=").is_err());
    let d = DigestKey::from_base64(text).unwrap();
    assert_ne!(d.id(), a.id(), "ids of different key kinds differ");
    assert_ne!(d.id(), DigestKey::random().id());
    assert!(DigestKey::from_base64("not base64 at all!").is_err());
    // Ids never show the key.
    assert!(!format!("{:?} {}", a.id(), a.id()).contains(text));
}
