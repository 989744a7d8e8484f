//! Flow and edge tests of the pure core, per preset: registration rules and throttles,
//! activation edges, lockout, unlock links, recovery budgets, email changes and staff
//! operations — with the exact notices and audit events each transition emits.
#![allow(clippy::disallowed_methods)]

use afiliado::core::{
    AccountRecord, AccountState, AuditKind, Command, Contact, Decision, Denied, EnrolledAnswer,
    Locale, LockReason, NewPassword, NoticeKind, Outcome, ProofResult, Register,
    SecurityEnrollment, StaffAction, StartRecovery, StateKind, decide,
};
use afiliado::crypto::{
    Digest, DigestKey, HashParams, NumericCode, PasswordHash, Token, TokenPurpose, hash_password,
};
use afiliado::policy::{Policy, Proof};
use afiliado::{Email, MemberId, Password};
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-11-22 19:00 -5);

struct World {
    policy: Policy,
    key: DigestKey,
    rng: StdRng,
    record: AccountRecord,
}

fn cheap(mut p: Policy) -> Policy {
    p.hashing = HashParams::danger_insecure_for_tests();
    p
}

fn email(s: &str) -> Email {
    s.parse().unwrap()
}

impl World {
    fn new(policy: Policy) -> Self {
        Self::for_member(policy, "1710034065")
    }

    fn for_member(policy: Policy, id: &str) -> Self {
        let mut rng = StdRng::seed_from_u64(42);
        let key = DigestKey::generate(&mut rng);
        Self {
            policy: cheap(policy),
            key,
            rng,
            record: AccountRecord::new(id.parse::<MemberId>().unwrap()),
        }
    }

    fn decide(&self, cmd: &Command, now: OffsetDateTime) -> Result<Decision, Denied> {
        decide(&self.record, cmd, now, &self.policy)
    }

    /// Decides and commits.
    fn apply(&mut self, cmd: &Command, now: OffsetDateTime) -> Result<Decision, Denied> {
        let d = self.decide(cmd, now)?;
        self.record = d.next.clone();
        Ok(d)
    }

    fn token(&mut self, purpose: TokenPurpose) -> (Token, Digest) {
        let t = Token::generate(&mut self.rng);
        let d = self.key.digest_token(purpose, &t);
        (t, d)
    }

    fn hash(&mut self, pw: &str) -> PasswordHash {
        hash_password(pw.as_bytes(), &self.policy.hashing, &mut self.rng).unwrap()
    }

    fn enrollment(&mut self) -> SecurityEnrollment {
        let image = self
            .policy
            .registration
            .security_image
            .then(|| self.hash("llama"));
        let answers = (0..self.policy.registration.security_questions)
            .map(|i| EnrolledAnswer {
                question: format!("q{i}"),
                answer: self.hash("quito"),
            })
            .collect();
        SecurityEnrollment { image, answers }
    }

    /// A complete, valid registration for this world's policy; returns the link and code digests.
    fn registration(&mut self) -> (Register, Digest, Option<Digest>) {
        let (_, link) = self.token(TokenPurpose::Activation);
        let code = self.policy.activation.code_digits.map(|d| {
            let c = NumericCode::generate(d, &mut self.rng).unwrap();
            self.key.digest_code(
                TokenPurpose::ActivationCode,
                self.record.member.as_str(),
                &c,
            )
        });
        let proofs = self
            .policy
            .registration
            .proofs
            .iter()
            .map(|p| ProofResult::passed(*p))
            .collect();
        let enrollment = self.enrollment();
        let reg = Register {
            contact: Contact {
                email: email("ana.quispe@example.ec"),
                mobile: Some("0991234567".parse().unwrap()),
                landline: Some("(02) 234-5678".parse().unwrap()),
            },
            terms_accepted: true,
            proofs,
            human_verified: true,
            link,
            code,
            enrollment,
            locale: Locale::EsEc,
        };
        (reg, link, code)
    }

    fn new_password(&mut self, pw: &str) -> NewPassword {
        let hash = Some(self.hash(pw));
        NewPassword {
            password: Password::new(pw),
            confirmation: Password::new(pw),
            hash,
        }
    }

    fn good_password(&self) -> &'static str {
        if self.policy.password.min_length > 12 {
            "Atardecer en el Cotopaxi"
        } else {
            "Policia2026x"
        }
    }

    /// Registers and activates at `now`; returns the password.
    fn activated(&mut self, now: OffsetDateTime) -> &'static str {
        let (reg, link, code) = self.registration();
        let _ = self.apply(&Command::Register(reg), now).unwrap();
        let pw = self.good_password();
        let password = self.new_password(pw);
        let d = self
            .apply(
                &Command::Activate {
                    link,
                    code,
                    password,
                },
                now,
            )
            .unwrap();
        assert_eq!(d.outcome, Outcome::Activated);
        pw
    }

    fn fail_logins(&mut self, n: u32, mut now: OffsetDateTime) -> Decision {
        let mut last = None;
        for _ in 0..n {
            last = Some(self.apply(&login(false), now).unwrap());
            now += Duration::seconds(10);
        }
        last.unwrap()
    }
}

fn login(ok: bool) -> Command {
    Command::Login {
        password_matched: ok,
        rehash: None,
    }
}

fn staff(action: StaffAction) -> Command {
    Command::Staff {
        actor: "agente.quito".into(),
        reason: "ticket 4711".into(),
        action,
    }
}

fn notices(d: &Decision) -> Vec<(String, NoticeKind)> {
    d.notices()
        .map(|n| (n.to.as_str().to_owned(), n.kind.clone()))
        .collect()
}

fn audits(d: &Decision) -> Vec<AuditKind> {
    d.audit().map(|a| a.kind.clone()).collect()
}

// ---- registration ----------------------------------------------------------------------

#[test]
fn registration_emits_one_activation_mail_and_one_audit_event() {
    let mut w = World::new(Policy::isspol());
    let (reg, _, _) = w.registration();
    let d = w.apply(&Command::Register(reg), T0).unwrap();
    let expires = T0 + Duration::minutes(25);
    assert_eq!(
        d.outcome,
        Outcome::Registered {
            expires_at: expires
        }
    );
    assert_eq!(
        notices(&d),
        vec![(
            "ana.quispe@example.ec".into(),
            NoticeKind::Activation {
                expires_at: expires,
                with_code: true
            }
        )]
    );
    assert_eq!(audits(&d), vec![AuditKind::Registered]);
    // ISSPOL asks no landline: it is not kept.
    let AccountState::PendingActivation(p) = &d.next.state else {
        panic!()
    };
    assert!(p.contact.landline.is_none());
    assert_eq!(p.code_attempts_left, 5);
    assert_eq!(p.terms_accepted_at, Some(T0));
}

#[test]
fn registration_input_rules_are_typed_and_change_nothing() {
    let mut w = World::new(Policy::isspol());
    let check = |w: &mut World, f: &dyn Fn(&mut Register), want: Denied| {
        let (mut reg, _, _) = w.registration();
        f(&mut reg);
        assert_eq!(w.decide(&Command::Register(reg), T0).unwrap_err(), want);
    };
    check(
        &mut w,
        &|r| r.terms_accepted = false,
        Denied::TermsNotAccepted,
    );
    check(
        &mut w,
        &|r| r.contact.mobile = None,
        Denied::MissingContact("mobile"),
    );
    check(&mut w, &|r| r.code = None, Denied::CodeRequired);
    check(
        &mut w,
        &|r| r.proofs.clear(),
        Denied::MissingProof(Proof::AffiliateNumber),
    );

    let mut w = World::new(Policy::iess());
    check(
        &mut w,
        &|r| r.human_verified = false,
        Denied::HumanCheckRequired,
    );
    check(
        &mut w,
        &|r| r.enrollment.image = None,
        Denied::MissingEnrollment("security_image"),
    );
    check(
        &mut w,
        &|r| r.enrollment.answers.truncate(1),
        Denied::MissingEnrollment("security_questions"),
    );
    check(&mut w, &|r| r.code = Some(r.link), Denied::UnexpectedCode);
    check(
        &mut w,
        &|r| r.proofs.retain(|p| p.proof == Proof::BirthDayMonth),
        Denied::MissingProof(Proof::RecordQuestions { count: 3 }),
    );

    let mut w = World::for_member(Policy::isspol(), "EXT12345");
    check(
        &mut w,
        &|_| {},
        Denied::IdentifierNotAccepted(afiliado::MemberIdKind::Foreigner),
    );
}

#[test]
fn failed_registration_proofs_throttle_registration_for_the_day() {
    let mut w = World::new(Policy::iess()); // 5 a day
    for i in 1..=5u32 {
        let (mut reg, _, _) = w.registration();
        reg.proofs[0].passed = false;
        let d = w.apply(&Command::Register(reg), T0).unwrap();
        assert_eq!(
            d.outcome,
            Outcome::ChecksFailed {
                remaining: Some(5 - i)
            }
        );
        assert_eq!(d.notices().count(), 0);
        assert_eq!(
            audits(&d),
            vec![AuditKind::RegistrationChecksFailed { failures: i }]
        );
        assert_eq!(
            w.record.check_failures, 0,
            "the recovery budget is untouched"
        );
    }
    let (reg, _, _) = w.registration();
    // Refused, but recorded: one more commit with its audit event, the same answer.
    let d = w.decide(&Command::Register(reg.clone()), T0).unwrap();
    assert_eq!(d.outcome, Outcome::ChecksFailed { remaining: Some(0) });
    assert!(d.audit().all(|e| e.kind == AuditKind::ChecksRefused));
    assert_eq!(d.audit().count(), 1);
    // The next day (America/Guayaquil) registration works again.
    let tomorrow = T0 + Duration::hours(24);
    assert!(matches!(
        w.apply(&Command::Register(reg), tomorrow).unwrap().outcome,
        Outcome::Registered { .. }
    ));
}

#[test]
fn resend_cooldown_and_daily_cap_throttle_without_mail() {
    let mut w = World::new(Policy::isspol()); // cooldown 1 min, 5 per day
    let (reg, first_link, first_code) = w.registration();
    let _ = w.apply(&Command::Register(reg), T0).unwrap();
    let (reg, _, _) = w.registration();
    let d = w
        .apply(&Command::Register(reg), T0 + Duration::seconds(59))
        .unwrap();
    assert_eq!(d.outcome, Outcome::Throttled);
    assert_eq!(d.notices().count(), 0);
    assert_eq!(audits(&d), vec![AuditKind::RegistrationThrottled]);

    // After the cooldown a new registration replaces the link and code: the old ones die.
    let mut now = T0 + Duration::seconds(60);
    let (reg, _, _) = w.registration();
    assert!(matches!(
        w.apply(&Command::Register(reg), now).unwrap().outcome,
        Outcome::Registered { .. }
    ));
    let pw = w.new_password("Policia2026x");
    let old = Command::Activate {
        link: first_link,
        code: first_code,
        password: pw,
    };
    assert_eq!(w.decide(&old, now).unwrap_err(), Denied::InvalidToken);

    for _ in 3..=5 {
        now += Duration::minutes(2);
        let (reg, _, _) = w.registration();
        assert!(matches!(
            w.apply(&Command::Register(reg), now).unwrap().outcome,
            Outcome::Registered { .. }
        ));
    }
    now += Duration::minutes(2);
    let (reg, _, _) = w.registration();
    assert_eq!(
        w.apply(&Command::Register(reg), now).unwrap().outcome,
        Outcome::Throttled
    );
    // A new day in Ecuador (midnight UTC−5) resets the cap.
    let (reg, _, _) = w.registration();
    let next_day = datetime!(2026-11-23 00:00 -5);
    assert!(matches!(
        w.apply(&Command::Register(reg), next_day).unwrap().outcome,
        Outcome::Registered { .. }
    ));
}

#[test]
fn registering_an_active_account_warns_its_owner_and_changes_nothing() {
    let mut w = World::new(Policy::isspol());
    w.activated(T0);
    let before = w.record.clone();
    let (mut reg, _, _) = w.registration();
    reg.contact.email = email("intruso@example.com");
    let d = w
        .decide(&Command::Register(reg), T0 + Duration::hours(1))
        .unwrap();
    assert_eq!(d.outcome, Outcome::AlreadyRegistered);
    assert_eq!(
        notices(&d),
        vec![(
            "ana.quispe@example.ec".into(),
            NoticeKind::RegistrationAttemptOnActive
        )]
    );
    assert_eq!(d.next.state, before.state);
}

// ---- activation ------------------------------------------------------------------------

#[test]
fn activation_code_expires_exactly_at_25_minutes_and_drops_contact_data() {
    let mut w = World::new(Policy::isspol());
    let (reg, link, code) = w.registration();
    let _ = w.apply(&Command::Register(reg), T0).unwrap();
    let pw = w.new_password("Policia2026x");
    let activate = Command::Activate {
        link,
        code,
        password: pw,
    };
    let edge = T0 + Duration::minutes(25);
    assert_eq!(
        w.decide(&activate, edge - Duration::seconds(1))
            .unwrap()
            .outcome,
        Outcome::Activated
    );
    assert_eq!(
        w.decide(&activate, edge).unwrap_err(),
        Denied::NotApplicable {
            state: StateKind::Unregistered
        }
    );
    assert!(
        w.decide(&Command::Expire, edge - Duration::seconds(1))
            .is_err()
    );
    let d = w
        .apply(&Command::Expire, edge + Duration::hours(3))
        .unwrap();
    assert_eq!(d.outcome, Outcome::Expired);
    assert_eq!(d.next.state, AccountState::Unregistered);
    let ev: Vec<_> = d.audit().collect();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, AuditKind::RegistrationExpired);
    assert_eq!(
        ev[0].at, edge,
        "lazy expiry is audited at its scheduled instant"
    );
    assert!(
        !serde_json::to_string(&d.next)
            .unwrap()
            .contains("ana.quispe"),
        "contact data dropped"
    );
}

#[test]
fn inspecting_the_link_consumes_nothing() {
    let mut w = World::new(Policy::recommended());
    let (reg, link, _) = w.registration();
    let _ = w.apply(&Command::Register(reg), T0).unwrap();
    for _ in 0..3 {
        let d = w
            .decide(
                &Command::InspectActivation { link },
                T0 + Duration::minutes(1),
            )
            .unwrap();
        assert_eq!(
            d.outcome,
            Outcome::ActivationLinkValid {
                expires_at: T0 + Duration::minutes(15),
                code_required: true
            }
        );
        assert_eq!(d.next, w.record);
        assert!(d.effects.is_empty());
    }
    let (_, forged) = w.token(TokenPurpose::Activation);
    assert_eq!(
        w.decide(&Command::InspectActivation { link: forged }, T0)
            .unwrap_err(),
        Denied::InvalidToken
    );
}

#[test]
fn wrong_codes_burn_the_registration_on_the_last_attempt() {
    let mut w = World::new(Policy::isspol());
    let (reg, link, _) = w.registration();
    let _ = w.apply(&Command::Register(reg), T0).unwrap();
    let wrong = NumericCode::parse("0000", 4).unwrap();
    let wrong = Some(
        w.key
            .digest_code(TokenPurpose::ActivationCode, "1710034065", &wrong),
    );
    let pw = w.new_password("Policia2026x");
    let cmd = Command::Activate {
        link,
        code: wrong,
        password: pw,
    };
    for left in (1..=4u8).rev() {
        let d = w.apply(&cmd, T0).unwrap();
        assert_eq!(
            d.outcome,
            Outcome::WrongCode {
                attempts_left: left
            }
        );
        assert_eq!(
            audits(&d),
            vec![AuditKind::WrongCode {
                attempts_left: left
            }]
        );
    }
    let d = w.apply(&cmd, T0).unwrap();
    assert_eq!(d.outcome, Outcome::RegistrationBurned);
    assert_eq!(d.next.state, AccountState::Unregistered);
}

#[test]
fn activation_checks_the_password_before_asking_for_a_hash() {
    let mut w = World::new(Policy::isspol());
    let (reg, link, code) = w.registration();
    let _ = w.apply(&Command::Register(reg), T0).unwrap();
    let activate = |password: NewPassword| Command::Activate {
        link,
        code,
        password,
    };

    let weak = NewPassword {
        password: "clave".into(),
        confirmation: "clave".into(),
        hash: None,
    };
    let Err(Denied::PasswordRejected(v)) = w.decide(&activate(weak), T0) else {
        panic!()
    };
    assert!(v.rules().len() >= 3, "every unmet rule is reported: {v}");

    let with_id = NewPassword {
        password: "Ab1710034065".into(),
        confirmation: "Ab1710034065".into(),
        hash: None,
    };
    let Err(Denied::PasswordRejected(v)) = w.decide(&activate(with_id), T0) else {
        panic!()
    };
    assert!(v.contains(afiliado::password::PasswordRule::ContainsIdentifier));

    let mismatch = NewPassword {
        password: "Policia2026x".into(),
        confirmation: "Policia2026y".into(),
        hash: None,
    };
    assert_eq!(
        w.decide(&activate(mismatch), T0).unwrap_err(),
        Denied::ConfirmationMismatch
    );

    let unhashed = NewPassword {
        password: "Policia2026x".into(),
        confirmation: "Policia2026x".into(),
        hash: None,
    };
    assert_eq!(
        w.decide(&activate(unhashed), T0).unwrap_err(),
        Denied::HashRequired
    );

    let mut weak_params = w.new_password("Policia2026x");
    let mut rng = StdRng::seed_from_u64(1);
    weak_params.hash = Some(
        hash_password(
            b"Policia2026x",
            &HashParams {
                m_cost_kib: 16,
                t_cost: 1,
                p_cost: 1,
            },
            &mut rng,
        )
        .unwrap(),
    );
    assert_eq!(
        w.decide(&activate(weak_params), T0).unwrap_err(),
        Denied::HashParamsMismatch
    );

    let ok = w.new_password("Policia2026x");
    let d = w.apply(&activate(ok), T0).unwrap();
    assert_eq!(d.outcome, Outcome::Activated);
    assert_eq!(audits(&d), vec![AuditKind::Activated]);
}

// ---- login and lockout -----------------------------------------------------------------

#[test]
fn isspol_locks_at_the_fifth_failure_and_unlocks_at_exactly_20_minutes() {
    let mut w = World::new(Policy::isspol());
    w.activated(T0);
    let at = datetime!(2026-11-22 19:39:20 -5);
    let d = w.fail_logins(4, datetime!(2026-11-22 19:38:40 -5));
    assert_eq!(d.outcome, Outcome::LoginFailed { failures: 4 });
    let d = w.apply(&login(false), at).unwrap();
    let until = Some(at + Duration::minutes(20));
    assert_eq!(d.outcome, Outcome::Locked { until });
    assert_eq!(
        notices(&d),
        vec![(
            "ana.quispe@example.ec".into(),
            NoticeKind::Locked {
                reason: LockReason::FailedLogins,
                until
            }
        )]
    );
    let refused = w
        .decide(
            &login(true),
            at + Duration::minutes(20) - Duration::seconds(1),
        )
        .unwrap();
    assert_eq!(refused.outcome, Outcome::LoginRefusedLocked { until });
    assert_eq!(refused.notices().count(), 0);
    let ok = w.decide(&login(true), at + Duration::minutes(20)).unwrap();
    assert_eq!(ok.outcome, Outcome::LoggedIn { rehashed: false });
    assert_eq!(
        audits(&ok),
        vec![AuditKind::AutoUnlocked, AuditKind::LoginSucceeded]
    );
}

#[test]
fn a_success_clears_failures_and_lockouts() {
    let mut w = World::new(Policy::recommended());
    w.activated(T0);
    let _ = w.fail_logins(9, T0 + Duration::minutes(1));
    let d = w.apply(&login(true), T0 + Duration::minutes(3)).unwrap();
    assert_eq!(d.outcome, Outcome::LoggedIn { rehashed: false });
    let d = w.fail_logins(9, T0 + Duration::minutes(4));
    assert_eq!(d.outcome, Outcome::LoginFailed { failures: 9 });
}

#[test]
fn recommended_lockout_is_progressive() {
    let mut w = World::new(Policy::recommended());
    w.activated(T0);
    let mut now = T0 + Duration::minutes(1);
    for minutes in [1, 5, 15, 60, 60] {
        let d = w.fail_logins(10, now);
        let locked_at = now + Duration::seconds(90);
        assert_eq!(
            d.outcome,
            Outcome::Locked {
                until: Some(locked_at + Duration::minutes(minutes))
            }
        );
        now = locked_at + Duration::minutes(minutes);
    }
    assert_eq!(w.record.lockouts, 5);
}

#[test]
fn a_login_on_a_pending_registration_fails_like_a_wrong_password() {
    let mut w = World::new(Policy::iess());
    let (reg, _, _) = w.registration();
    let _ = w.apply(&Command::Register(reg), T0).unwrap();
    // Even a "matching" password: there is no password yet. Counted like an account's.
    let d = w.decide(&login(true), T0).unwrap();
    assert_eq!(d.outcome, Outcome::LoginFailed { failures: 1 });
    assert_eq!(d.next.state.kind(), StateKind::PendingActivation);
    assert_eq!(d.next.shadow.failures, vec![T0]);
}

#[test]
fn login_with_an_upgraded_hash_replaces_it() {
    let mut w = World::new(Policy::isspol());
    let pw = w.activated(T0);
    let new = w.hash(pw);
    let d = w
        .apply(
            &Command::Login {
                password_matched: true,
                rehash: Some(new.clone()),
            },
            T0,
        )
        .unwrap();
    assert_eq!(d.outcome, Outcome::LoggedIn { rehashed: true });
    assert_eq!(
        audits(&d),
        vec![AuditKind::LoginSucceeded, AuditKind::PasswordRehashed]
    );
    assert_eq!(w.record.password_hash(), Some(&new));
}

// ---- unlock links ----------------------------------------------------------------------

#[test]
fn iess_unlock_link_works_at_2_59_not_at_3_00_and_newer_links_kill_older() {
    let mut w = World::new(Policy::iess());
    // Without pacing every request replaces the link (pacing has its own test below).
    w.policy.notices.link_cooldown = None;
    w.activated(T0);
    let d = w.fail_logins(3, T0 + Duration::minutes(1));
    assert_eq!(d.outcome, Outcome::Locked { until: None });
    let at = T0 + Duration::hours(1);
    // Human check required by the IESS preset.
    let (_, first) = w.token(TokenPurpose::Unlock);
    assert_eq!(
        w.decide(
            &Command::RequestUnlock {
                link: first,
                human_verified: false
            },
            at
        )
        .unwrap_err(),
        Denied::HumanCheckRequired
    );
    let d = w
        .apply(
            &Command::RequestUnlock {
                link: first,
                human_verified: true,
            },
            at,
        )
        .unwrap();
    assert_eq!(
        d.outcome,
        Outcome::UnlockLinkSent {
            expires_at: at + Duration::minutes(3)
        }
    );
    assert_eq!(
        notices(&d),
        vec![(
            "ana.quispe@example.ec".into(),
            NoticeKind::UnlockLink {
                expires_at: at + Duration::minutes(3)
            }
        )]
    );
    assert_eq!(
        w.decide(&Command::Unlock { link: first }, at + Duration::minutes(3))
            .unwrap_err(),
        Denied::TokenExpired
    );
    assert!(
        w.decide(
            &Command::Unlock { link: first },
            at + Duration::seconds(179)
        )
        .is_ok()
    );

    let (_, second) = w.token(TokenPurpose::Unlock);
    let _ = w
        .apply(
            &Command::RequestUnlock {
                link: second,
                human_verified: true,
            },
            at + Duration::seconds(30),
        )
        .unwrap();
    assert_eq!(
        w.decide(&Command::Unlock { link: first }, at + Duration::seconds(40))
            .unwrap_err(),
        Denied::InvalidToken
    );
    let d = w
        .apply(
            &Command::Unlock { link: second },
            at + Duration::seconds(40),
        )
        .unwrap();
    assert_eq!(d.outcome, Outcome::Unlocked);
    assert_eq!(
        notices(&d),
        vec![("ana.quispe@example.ec".into(), NoticeKind::Unlocked)]
    );
    // Single use.
    assert!(
        w.decide(
            &Command::Unlock { link: second },
            at + Duration::seconds(41)
        )
        .is_err()
    );
    assert_eq!(
        w.apply(&login(true), at + Duration::seconds(42))
            .unwrap()
            .outcome,
        Outcome::LoggedIn { rehashed: false }
    );
}

#[test]
fn unlock_request_on_an_unlocked_account_sends_nothing() {
    let mut w = World::new(Policy::iess());
    w.activated(T0);
    let (_, link) = w.token(TokenPurpose::Unlock);
    let d = w
        .decide(
            &Command::RequestUnlock {
                link,
                human_verified: true,
            },
            T0,
        )
        .unwrap();
    assert_eq!(d.outcome, Outcome::NotLocked);
    // Nothing is sent, but the request is recorded (the same store work as a locked
    // account's).
    assert_eq!(d.notices().count(), 0);
    assert!(d.audit().all(|e| e.kind == AuditKind::UnlockRequestIgnored));
    let mut isspol = World::new(Policy::isspol());
    isspol.activated(T0);
    assert_eq!(
        isspol
            .decide(
                &Command::RequestUnlock {
                    link,
                    human_verified: true
                },
                T0
            )
            .unwrap_err(),
        Denied::NotOffered("unlock link")
    );
}

// ---- recovery --------------------------------------------------------------------------

fn recovery(link: Digest, claimed: Option<&str>, passed: bool, policy: &Policy) -> Command {
    Command::StartRecovery(StartRecovery {
        claimed_email: claimed.map(email),
        proofs: policy
            .recovery
            .proofs
            .iter()
            .filter(|p| **p != Proof::RegisteredEmail)
            .map(|p| ProofResult { proof: *p, passed })
            .collect(),
        human_verified: true,
        new_email: None,
        link,
    })
}

#[test]
fn isspol_recovery_with_the_wrong_email_sends_nothing_and_the_right_one_sends_a_link() {
    let mut w = World::new(Policy::isspol());
    w.activated(T0);
    let (_, link) = w.token(TokenPurpose::Reset);
    let p = w.policy.clone();
    let d = w
        .apply(&recovery(link, Some("otra@example.ec"), true, &p), T0)
        .unwrap();
    assert_eq!(d.outcome, Outcome::ChecksFailed { remaining: None });
    assert_eq!(d.notices().count(), 0);
    assert_eq!(d.next.state.kind(), StateKind::Active);
    // The comparison ignores the case of the address.
    let d = w
        .apply(&recovery(link, Some("Ana.Quispe@EXAMPLE.ec"), true, &p), T0)
        .unwrap();
    assert_eq!(
        d.outcome,
        Outcome::ResetLinkSent {
            expires_at: T0 + Duration::minutes(25)
        }
    );
    assert_eq!(
        notices(&d),
        vec![(
            "ana.quispe@example.ec".into(),
            NoticeKind::ResetLink {
                expires_at: T0 + Duration::minutes(25)
            }
        )]
    );
    // ISSPOL changes emails only through staff.
    let Command::StartRecovery(mut r) = recovery(link, Some("ana.quispe@example.ec"), true, &p)
    else {
        panic!()
    };
    r.new_email = Some(email("nueva@example.ec"));
    assert_eq!(
        w.decide(&Command::StartRecovery(r), T0).unwrap_err(),
        Denied::EmailChangeNotAllowed
    );
}

#[test]
fn iess_recovery_budget_locks_on_the_fifth_failure() {
    let mut w = World::new(Policy::iess());
    w.activated(T0);
    let p = w.policy.clone();
    for i in 1..=4u32 {
        let (_, link) = w.token(TokenPurpose::Reset);
        let d = w
            .apply(
                &recovery(link, None, false, &p),
                T0 + Duration::minutes(i.into()),
            )
            .unwrap();
        assert_eq!(
            d.outcome,
            Outcome::ChecksFailed {
                remaining: Some(5 - i)
            }
        );
        assert_eq!(d.notices().count(), 0);
    }
    let (_, link) = w.token(TokenPurpose::Reset);
    let d = w
        .apply(&recovery(link, None, false, &p), T0 + Duration::minutes(5))
        .unwrap();
    assert_eq!(d.outcome, Outcome::ChecksFailed { remaining: Some(0) });
    assert_eq!(
        notices(&d),
        vec![(
            "ana.quispe@example.ec".into(),
            NoticeKind::Locked {
                reason: LockReason::FailedRecovery,
                until: None
            }
        )]
    );
    assert_eq!(
        w.record.state.lock().map(|l| l.reason),
        Some(LockReason::FailedRecovery)
    );
    // Even right answers get nowhere now, and nothing is mailed.
    let (_, link) = w.token(TokenPurpose::Reset);
    let d = w
        .apply(&recovery(link, None, true, &p), T0 + Duration::minutes(6))
        .unwrap();
    assert_eq!(d.outcome, Outcome::ChecksFailed { remaining: Some(0) });
    assert!(d.notices().next().is_none());
    assert_eq!(
        w.decide(&login(true), T0 + Duration::minutes(7))
            .unwrap()
            .outcome,
        Outcome::LoginRefusedLocked { until: None }
    );
}

#[test]
fn iess_recovery_with_a_new_email_notifies_the_old_address_and_needs_the_declaration() {
    let mut w = World::new(Policy::iess());
    w.activated(T0);
    let p = w.policy.clone();
    let (_, link) = w.token(TokenPurpose::Reset);
    let Command::StartRecovery(mut r) = recovery(link, None, true, &p) else {
        panic!()
    };
    r.new_email = Some(email("ana.nueva@example.com"));
    let d = w.apply(&Command::StartRecovery(r), T0).unwrap();
    let exp = T0 + Duration::minutes(15);
    assert_eq!(d.outcome, Outcome::ResetLinkSent { expires_at: exp });
    // Only the reset link goes to the replacement; the email changes when the reset
    // completes.
    assert_eq!(
        notices(&d),
        vec![(
            "ana.nueva@example.com".into(),
            NoticeKind::ResetLink { expires_at: exp }
        )]
    );
    assert_eq!(audits(&d), vec![AuditKind::RecoveryStarted]);
    assert_eq!(
        w.record.state.profile().unwrap().contact.email.as_str(),
        "ana.quispe@example.ec"
    );

    let pw = w.new_password("Yasuni8k3Tren");
    let reset = |declaration_accepted| Command::ResetPassword {
        link,
        password: pw.clone(),
        declaration_accepted,
    };
    assert_eq!(
        w.decide(&reset(false), T0 + Duration::minutes(1))
            .unwrap_err(),
        Denied::DeclarationRequired
    );
    assert_eq!(
        w.decide(&reset(true), exp).unwrap_err(),
        Denied::NotApplicable {
            state: StateKind::Active
        },
        "the reset link dies at 15:00 and the account returns to its standing"
    );
    let d = w.apply(&reset(true), exp - Duration::seconds(1)).unwrap();
    assert_eq!(d.outcome, Outcome::PasswordReset);
    assert_eq!(
        notices(&d),
        vec![
            (
                "ana.quispe@example.ec".into(),
                NoticeKind::EmailChangedFrom {
                    new_masked: "a***@example.com".into()
                }
            ),
            ("ana.nueva@example.com".into(), NoticeKind::EmailChangedTo),
            ("ana.nueva@example.com".into(), NoticeKind::PasswordChanged),
        ]
    );
    assert_eq!(
        audits(&d),
        vec![AuditKind::PasswordReset, AuditKind::EmailChanged]
    );
    assert_eq!(
        w.record.state.profile().unwrap().contact.email.as_str(),
        "ana.nueva@example.com"
    );
    assert!(
        w.decide(&reset(true), exp - Duration::seconds(1)).is_err(),
        "single use"
    );
}

#[test]
fn a_reset_unlocks_a_locked_account_unless_the_policy_keeps_locks() {
    for reset_unlocks in [true, false] {
        let mut policy = Policy::iess();
        policy.unlock.reset_unlocks = reset_unlocks;
        let mut w = World::new(policy);
        w.activated(T0);
        let _ = w.fail_logins(3, T0);
        let (_, link) = w.token(TokenPurpose::Reset);
        let p = w.policy.clone();
        assert!(matches!(
            w.apply(&recovery(link, None, true, &p), T0 + Duration::minutes(1))
                .unwrap()
                .outcome,
            Outcome::ResetLinkSent { .. }
        ));
        // Locked underneath: a login is still refused.
        assert!(matches!(
            w.decide(&login(true), T0 + Duration::minutes(2))
                .unwrap()
                .outcome,
            Outcome::LoginRefusedLocked { .. }
        ));
        let password = w.new_password("Yasuni8k3Tren");
        let _ = w
            .apply(
                &Command::ResetPassword {
                    link,
                    password,
                    declaration_accepted: true,
                },
                T0 + Duration::minutes(2),
            )
            .unwrap();
        let want = if reset_unlocks {
            StateKind::Active
        } else {
            StateKind::Locked
        };
        assert_eq!(w.record.state.kind(), want);
    }
}

#[test]
fn logging_in_with_the_old_password_cancels_a_pending_reset() {
    let mut w = World::new(Policy::recommended());
    w.activated(T0);
    let (_, link) = w.token(TokenPurpose::Reset);
    let p = w.policy.clone();
    let _ = w.apply(&recovery(link, None, true, &p), T0).unwrap();
    let d = w.apply(&login(true), T0 + Duration::minutes(1)).unwrap();
    assert_eq!(
        audits(&d),
        vec![AuditKind::ResetCancelled, AuditKind::LoginSucceeded]
    );
    let password = w.new_password("Atardecer en el Cotopaxi 2");
    assert!(
        w.decide(
            &Command::ResetPassword {
                link,
                password,
                declaration_accepted: false
            },
            T0 + Duration::minutes(2)
        )
        .is_err()
    );
}

// ---- staff -----------------------------------------------------------------------------

#[test]
fn staff_suspension_blocks_every_self_service_path_until_staff_unlocks() {
    let mut w = World::new(Policy::iess());
    w.activated(T0);
    assert_eq!(
        w.decide(
            &Command::Staff {
                actor: "agente".into(),
                reason: " ".into(),
                action: StaffAction::Suspend
            },
            T0
        )
        .unwrap_err(),
        Denied::MissingStaffReason
    );
    let d = w.apply(&staff(StaffAction::Suspend), T0).unwrap();
    assert_eq!(
        notices(&d),
        vec![(
            "ana.quispe@example.ec".into(),
            NoticeKind::Locked {
                reason: LockReason::Staff,
                until: None
            }
        )]
    );
    assert!(audits(&d).contains(&AuditKind::Staff {
        actor: "agente.quito".into(),
        reason: "ticket 4711".into(),
        action: "suspend".into()
    }));
    let later = T0 + Duration::days(30);
    let (_, link) = w.token(TokenPurpose::Unlock);
    assert_eq!(
        w.decide(
            &Command::RequestUnlock {
                link,
                human_verified: true
            },
            later
        )
        .unwrap()
        .outcome,
        Outcome::NotLocked
    );
    let p = w.policy.clone();
    assert_eq!(
        w.decide(&recovery(link, None, true, &p), later)
            .unwrap()
            .outcome,
        // Never a link, and answered (and counted) like wrong proofs.
        Outcome::ChecksFailed { remaining: Some(4) }
    );
    assert!(matches!(
        w.decide(&login(true), later).unwrap().outcome,
        Outcome::LoginRefusedLocked { .. }
    ));
    let d = w.apply(&staff(StaffAction::Unlock), later).unwrap();
    assert_eq!(
        notices(&d),
        vec![("ana.quispe@example.ec".into(), NoticeKind::Unlocked)]
    );
    assert_eq!(w.record.state.kind(), StateKind::Active);
}

#[test]
fn staff_email_change_notifies_both_addresses_and_kills_the_reset_link() {
    let mut w = World::new(Policy::isspol());
    w.policy.staff.confirm_email_change = false; // the immediate variant
    w.activated(T0);
    let (_, link) = w.token(TokenPurpose::Reset);
    let p = w.policy.clone();
    let _ = w
        .apply(&recovery(link, Some("ana.quispe@example.ec"), true, &p), T0)
        .unwrap();
    let d = w
        .apply(
            &staff(StaffAction::ChangeEmail {
                email: email("ana.gmail@gmail.com"),
                confirm_link: None,
            }),
            T0 + Duration::minutes(1),
        )
        .unwrap();
    assert_eq!(
        notices(&d),
        vec![
            (
                "ana.quispe@example.ec".into(),
                NoticeKind::EmailChangedFrom {
                    new_masked: "a***@gmail.com".into()
                }
            ),
            ("ana.gmail@gmail.com".into(), NoticeKind::EmailChangedTo),
        ]
    );
    let password = w.new_password("Policia2027x");
    assert!(
        w.decide(
            &Command::ResetPassword {
                link,
                password,
                declaration_accepted: false
            },
            T0 + Duration::minutes(2)
        )
        .is_err()
    );
    // The member recovers with the new address (the ISSPOL guide).
    let (_, link) = w.token(TokenPurpose::Reset);
    let d = w
        .apply(
            &recovery(link, Some("ana.gmail@gmail.com"), true, &p),
            T0 + Duration::minutes(3),
        )
        .unwrap();
    assert!(matches!(d.outcome, Outcome::ResetLinkSent { .. }));
}

#[test]
fn staff_enrolls_foreigners_only() {
    let mut w = World::for_member(Policy::iess(), "EXT-0042".replace('-', "").as_str());
    let d = w.apply(&staff(StaffAction::EnrollForeigner), T0).unwrap();
    assert_eq!(d.outcome, Outcome::StaffDone);
    let mut c = World::new(Policy::iess());
    assert_eq!(
        c.apply(&staff(StaffAction::EnrollForeigner), T0)
            .unwrap_err(),
        Denied::IdentifierNotAccepted(afiliado::MemberIdKind::Cedula)
    );
}

#[test]
fn staff_reset_mail_moves_to_resetting_without_checks() {
    let mut w = World::new(Policy::iess());
    w.activated(T0);
    let (_, link) = w.token(TokenPurpose::Reset);
    let d = w
        .apply(&staff(StaffAction::SendReset { link }), T0)
        .unwrap();
    assert_eq!(d.next.state.kind(), StateKind::Resetting);
    assert_eq!(
        notices(&d),
        vec![(
            "ana.quispe@example.ec".into(),
            NoticeKind::ResetLink {
                expires_at: T0 + Duration::minutes(15)
            }
        )]
    );
}

/// Links are paced, never capped: while a live link is in the member's inbox a new request
/// sends nothing (a stranger cannot replace it); once it is dead, the next one goes out at
/// once or, inside the cooldown, is queued for its end.
#[test]
fn a_live_link_is_never_replaced_and_the_next_waits_for_the_cooldown() {
    let mut w = World::new(Policy::iess()); // unlock link 3 min, cooldown 10 min
    w.activated(T0);
    let _ = w.fail_logins(3, T0);
    let unlock = |w: &mut World, at| {
        let (_, link) = w.token(TokenPurpose::Unlock);
        let d = w
            .apply(
                &Command::RequestUnlock {
                    link,
                    human_verified: true,
                },
                at,
            )
            .unwrap();
        (link, d)
    };
    let (a, d) = unlock(&mut w, T0);
    assert_eq!(d.notices().count(), 1);
    assert_eq!(
        d.notices().next().unwrap().not_before,
        None,
        "mailed at once"
    );
    // A stranger asks again while `a` is live: nothing is sent, only the request recorded.
    let (_, d) = unlock(&mut w, T0 + Duration::minutes(1));
    assert_eq!(d.outcome, Outcome::Throttled);
    assert_eq!(d.notices().count(), 0);
    assert!(d.audit().all(|e| e.kind == AuditKind::UnlockRequestIgnored));
    assert!(
        w.decide(&Command::Unlock { link: a }, T0 + Duration::minutes(2))
            .is_ok()
    );
    // `a` died at 3:00; a request at 4:00 is queued for the end of the cooldown (10:00).
    let (c, d) = unlock(&mut w, T0 + Duration::minutes(4));
    let due = T0 + Duration::minutes(10);
    let notice = d.notices().next().unwrap().clone();
    assert_eq!(notice.not_before, Some(due));
    assert_eq!(
        notice.kind,
        NoticeKind::UnlockLink {
            expires_at: due + Duration::minutes(3)
        }
    );
    // Queued but live: further requests add nothing.
    let (_, d) = unlock(&mut w, T0 + Duration::minutes(11));
    assert_eq!(d.outcome, Outcome::Throttled);
    assert!(
        w.decide(&Command::Unlock { link: c }, due + Duration::minutes(2))
            .is_ok()
    );
}

#[test]
fn stranger_triggered_notices_stop_at_the_daily_cap_but_proven_actions_are_always_announced() {
    let mut policy = Policy::recommended(); // 10 failures lock for 1 minute
    policy.notices.lock_warnings_per_day = 1;
    let mut w = World::new(policy);
    w.activated(T0);
    let mut now = T0 + Duration::minutes(1);
    // The first lock warning goes out.
    let d = w.fail_logins(10, now);
    assert_eq!(d.notices().count(), 1);
    // A stranger keeps locking the account: further warnings are suppressed and audited.
    now += Duration::minutes(5);
    let d = w.fail_logins(10, now);
    assert!(matches!(d.outcome, Outcome::Locked { .. }));
    assert_eq!(d.notices().count(), 0);
    assert!(audits(&d).contains(&AuditKind::NoticeSuppressed));
    // The member resets the password: that notice is never suppressed.
    now += Duration::hours(2);
    let (_, link) = w.token(TokenPurpose::Reset);
    let _ = w
        .apply(&staff(StaffAction::SendReset { link }), now)
        .unwrap();
    let password = w.new_password("Atardecer en el Cotopaxi 3");
    let d = w
        .apply(
            &Command::ResetPassword {
                link,
                password,
                declaration_accepted: false,
            },
            now,
        )
        .unwrap();
    assert_eq!(
        notices(&d),
        vec![("ana.quispe@example.ec".into(), NoticeKind::PasswordChanged)]
    );
    // The cap restarts the next day in Ecuador.
    let tomorrow = datetime!(2026-11-23 00:00 -5);
    let d = w.fail_logins(10, tomorrow);
    assert_eq!(d.notices().count(), 1);
}

#[test]
fn a_staff_suspension_kills_a_pending_reset_and_resets_never_lift_staff_locks() {
    let mut w = World::new(Policy::iess());
    w.activated(T0);
    let (_, link) = w.token(TokenPurpose::Reset);
    let _ = w
        .apply(&staff(StaffAction::SendReset { link }), T0)
        .unwrap();
    let d = w
        .apply(&staff(StaffAction::Suspend), T0 + Duration::minutes(1))
        .unwrap();
    assert_eq!(d.next.state.kind(), StateKind::Locked, "the reset is gone");
    let password = w.new_password("Yasuni8k3Tren");
    assert!(
        w.decide(
            &Command::ResetPassword {
                link,
                password,
                declaration_accepted: true
            },
            T0 + Duration::minutes(2)
        )
        .is_err(),
        "a link issued before the suspension cannot lift it"
    );
    // Staff may still send a new reset; completing it changes the password, not the lock.
    let (_, link) = w.token(TokenPurpose::Reset);
    let _ = w
        .apply(
            &staff(StaffAction::SendReset { link }),
            T0 + Duration::minutes(3),
        )
        .unwrap();
    let password = w.new_password("Yasuni8k3Tren");
    let _ = w
        .apply(
            &Command::ResetPassword {
                link,
                password,
                declaration_accepted: true,
            },
            T0 + Duration::minutes(4),
        )
        .unwrap();
    assert_eq!(
        w.record.state.lock().map(|l| l.reason),
        Some(LockReason::Staff)
    );
}

#[test]
fn an_email_change_kills_an_unlock_link_even_under_a_pending_reset() {
    let mut w = World::new(Policy::recommended());
    w.policy.staff.confirm_email_change = false; // the immediate variant
    w.activated(T0);
    let (_, reset) = w.token(TokenPurpose::Reset);
    let _ = w
        .apply(&staff(StaffAction::SendReset { link: reset }), T0)
        .unwrap();
    // Locked underneath the pending reset (10 failures from T0+1:00 lock until T0+2:30).
    let _ = w.fail_logins(10, T0 + Duration::minutes(1));
    let at = T0 + Duration::minutes(2);
    let (_, unlock) = w.token(TokenPurpose::Unlock);
    let d = w
        .apply(
            &Command::RequestUnlock {
                link: unlock,
                human_verified: true,
            },
            at,
        )
        .unwrap();
    assert!(matches!(d.outcome, Outcome::UnlockLinkSent { .. }));
    let _ = w
        .apply(
            &staff(StaffAction::ChangeEmail {
                email: email("nueva@example.ec"),
                confirm_link: None,
            }),
            at,
        )
        .unwrap();
    assert!(
        w.decide(&Command::Unlock { link: unlock }, at).is_err(),
        "a link mailed to the old address must not work after the email changed"
    );
}
