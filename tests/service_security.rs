//! Regression tests for the security review of `AccountService` (src/service/mod.rs):
//!
//! 1. IESS recovery counts distinct security questions only (one answer sent twice is one).
//! 2. Registration form errors are checked before the registry lookup: same answer for known
//!    and unknown IDs.
//! 3. Recovery form errors and ineligible accounts answer like unknown IDs.
//! 4. A locked account never rehashes on login (no right-vs-wrong password timing oracle).
//! 5. Registration enrolls exactly the policy's number of security answers, to distinct
//!    questions, and refuses anything else before hashing.
//! 6. Staff foreigner enrollment writes the registry only for a command the core accepts.
#![cfg(all(feature = "memory", feature = "service", feature = "test-util"))]
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use afiliado::core::{
    AccountRecord, AccountState, Contact, Denied, EnrolledAnswer, NoticeKind, Profile,
    SecurityEnrollment,
};
use afiliado::crypto::{DigestKey, HashParams, PasswordHash, hash_password};
use afiliado::memory::{MemoryDirectory, MemoryStore};
use afiliado::policy::Proof;
use afiliado::ports::{AccountStore, AlwaysPass, ManualClock, MemberDirectory, MemberFacts};
use afiliado::seal::SealKey;
use afiliado::service::{
    AccountService, Answers, Argon2Hasher, LoginOutcome, PasswordHasher, RecordQuestion,
    RecoveryOutcome, RecoveryRequest, RegisterOutcome, RegisterRequest, ServiceError, StaffRequest,
    normalize_answer,
};
use afiliado::{MemberId, Password, Policy};
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::OffsetDateTime;
use time::macros::{date, datetime};

const MEMBER: &str = "1710034065";
const EMAIL: &str = "luis.mora@example.ec";
const MOBILE: &str = "0991234567";
const AFFILIATE: &str = "AF-771203";
/// Well-formed cédula the registry does not know.
const UNKNOWN: &str = "0926687856";
const FOREIGNER: &str = "EXT20240001";
/// Letters and digits, 8–15: valid under the IESS password rules.
const PASSWORD: &str = "Manglar2026";
const WRONG: &str = "Manglar2025";
const HUMAN: &str = "captcha-ok";
const IMAGE: &str = "Colibrí";
const SECURITY: [(&str, &str); 2] = [("mascota", "Firulais"), ("ciudad_natal", "Portoviejo")];
const NOW: OffsetDateTime = datetime!(2026-11-22 19:36 -5);

fn id(s: &str) -> MemberId {
    s.parse().unwrap()
}

fn test_policy(mut policy: Policy) -> Policy {
    policy.hashing = HashParams::danger_insecure_for_tests();
    policy
}

fn facts_for(member: &str) -> MemberFacts {
    let mut f = MemberFacts::new(id(member), "LUIS ALBERTO MORA VÉLEZ", date!(1985 - 03 - 14));
    f.affiliate_number = Some(AFFILIATE.to_owned());
    f.employers = vec!["Banco del Pacífico S.A.".to_owned()];
    f.contribution_years = vec![2008, 2012, 2019, 2025];
    f
}

fn record_answer(q: RecordQuestion, f: &MemberFacts) -> String {
    match q {
        RecordQuestion::Employer => f.employers[0].to_uppercase(),
        RecordQuestion::FirstContributionYear => {
            f.contribution_years.iter().min().unwrap().to_string()
        }
        RecordQuestion::LastContributionYear => {
            f.contribution_years.iter().max().unwrap().to_string()
        }
        other => panic!("unexpected record question {other:?}"),
    }
}

/// Counts hasher calls, delegating to argon2id at the test parameters.
type CountingHasher = afiliado::service::CountingHasher<Argon2Hasher>;

fn counting_hasher() -> CountingHasher {
    CountingHasher::new(Argon2Hasher::new(HashParams::danger_insecure_for_tests()).unwrap())
}

struct Setup {
    store: Arc<MemoryStore>,
    directory: Arc<MemoryDirectory>,
    hasher: Arc<CountingHasher>,
    service: AccountService,
}

/// A service under `policy` (test hashing parameters) with a counting hasher, whose
/// registry knows `members`.
fn setup(policy: Policy, members: &[&str]) -> Setup {
    let mut rng = StdRng::seed_from_u64(0x5EC_2026);
    let store = Arc::new(MemoryStore::new());
    let directory = Arc::new(
        members
            .iter()
            .fold(MemoryDirectory::new(), |d, m| d.with(facts_for(m))),
    );
    let hasher = Arc::new(counting_hasher());
    let service = AccountService::builder(
        test_policy(policy),
        DigestKey::generate(&mut rng),
        SealKey::generate(&mut rng),
    )
    .store(store.clone())
    .directory(directory.clone())
    .human_check(Arc::new(AlwaysPass))
    .clock(Arc::new(ManualClock::new(NOW)))
    .hasher(hasher.clone())
    .build()
    .unwrap();
    Setup {
        store,
        directory,
        hasher,
        service,
    }
}

fn argon2(secret: &str) -> PasswordHash {
    let mut rng = StdRng::seed_from_u64(7);
    hash_password(
        secret.as_bytes(),
        &HashParams::danger_insecure_for_tests(),
        &mut rng,
    )
    .unwrap()
}

/// The IESS enrollment of [`SECURITY`], hashed as the service stores it (normalised).
fn enrolled_security() -> SecurityEnrollment {
    SecurityEnrollment {
        image: Some(argon2(&normalize_answer(IMAGE))),
        answers: SECURITY
            .iter()
            .map(|(q, a)| EnrolledAnswer {
                question: (*q).to_owned(),
                answer: argon2(&normalize_answer(a)),
            })
            .collect(),
    }
}

/// Commits an Active account directly into the store (as an import would).
async fn commit_active(
    store: &MemoryStore,
    member: &str,
    password: PasswordHash,
    enrollment: SecurityEnrollment,
) {
    let since = datetime!(2026-11-01 08:00 -5);
    let mut record = AccountRecord::new(id(member));
    record.state = AccountState::Active {
        profile: Profile {
            password,
            contact: Contact::email_only(EMAIL.parse().unwrap()),
            enrollment,
            activated_at: since,
            password_changed_at: since,
            last_login_at: None,
        },
        failures: Vec::new(),
    };
    store
        .commit(&record, 0, Vec::new(), Vec::new())
        .await
        .unwrap();
}

fn denied<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> Denied {
    match r {
        Err(ServiceError::Denied(d)) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// A complete, valid IESS registration form for `member`.
fn iess_form(svc: &AccountService, member: &str) -> RegisterRequest {
    let f = facts_for(member);
    let mut req = RegisterRequest::new(member, EMAIL);
    req.mobile = Some(MOBILE.to_owned());
    req.terms_accepted = true;
    req.human_response = Some(HUMAN.to_owned());
    let mut a = Answers::default();
    a.birth_day_month = Some((f.birth_date.day(), u8::from(f.birth_date.month())));
    a.record = svc
        .record_questions(false)
        .into_iter()
        .map(|q| (q, record_answer(q, &f)))
        .collect();
    a.security_image = Some(IMAGE.to_owned());
    a.security = SECURITY
        .iter()
        .map(|(q, ans)| ((*q).to_owned(), (*ans).to_owned()))
        .collect();
    req.answers = a;
    req
}

/// An IESS recovery form with right birth day/month and record answers, and `security`.
fn iess_recovery(svc: &AccountService, member: &str, security: &[(&str, &str)]) -> RecoveryRequest {
    let f = facts_for(member);
    let mut req = RecoveryRequest::new(member);
    req.human_response = Some(HUMAN.to_owned());
    let mut a = Answers::default();
    a.birth_day_month = Some((f.birth_date.day(), u8::from(f.birth_date.month())));
    a.record = svc
        .record_questions(true)
        .into_iter()
        .map(|q| (q, record_answer(q, &f)))
        .collect();
    a.security = security
        .iter()
        .map(|(q, ans)| ((*q).to_owned(), (*ans).to_owned()))
        .collect();
    req.answers = a;
    req
}

/// A complete ISSPOL registration form.
fn isspol_form(member: &str) -> RegisterRequest {
    let mut req = RegisterRequest::new(member, EMAIL);
    req.mobile = Some(MOBILE.to_owned());
    req.terms_accepted = true;
    let mut a = Answers::default();
    a.affiliate_number = Some(AFFILIATE.to_owned());
    req.answers = a;
    req
}

fn reset_links_queued(store: &MemoryStore) -> usize {
    store
        .outbox()
        .iter()
        .filter(|m| matches!(m.notice.kind, NoticeKind::ResetLink { .. }))
        .count()
}

async fn state_of(store: &MemoryStore, member: &str) -> Option<AccountState> {
    store.load(&id(member)).await.unwrap().map(|r| r.state)
}

// ---------------------------------------------------------------------------------------------
// 1. Duplicate security answers
// ---------------------------------------------------------------------------------------------

/// Old code: `answers.security.iter().take(count)` verified the same (question, answer) pair
/// twice and counted two passes, so knowing ONE answer passed `SecurityQuestions { count: 2 }`
/// and a reset link went out (`Submitted`, account `Resetting`). Now only distinct questions
/// count.
#[tokio::test]
async fn iess_recovery_with_one_security_answer_sent_twice_fails() {
    let s = setup(Policy::iess(), &[MEMBER]);
    commit_active(&s.store, MEMBER, argon2(PASSWORD), enrolled_security()).await;
    assert_eq!(
        s.service.policy().recovery.proofs[2],
        Proof::SecurityQuestions { count: 2 }
    );

    let known = SECURITY[0];
    for attack in [
        vec![known, known],
        // Padding with a wrong answer to the other question does not help either.
        vec![known, known, (SECURITY[1].0, "Manta")],
    ] {
        // Since the one-answer-per-question rule, a repeated question is a field error (that
        // still counts as a failed attempt).
        match s
            .service
            .start_recovery(iess_recovery(&s.service, MEMBER, &attack))
            .await
        {
            Err(ServiceError::InvalidInput { field, .. }) => {
                assert_eq!(field, "security_answers", "{attack:?}")
            }
            other => panic!("{attack:?}: {other:?}"),
        }
        assert_eq!(reset_links_queued(&s.store), 0, "no reset mail: {attack:?}");
        let state = state_of(&s.store, MEMBER).await.unwrap();
        assert!(
            !matches!(state, AccountState::Resetting { .. }),
            "{state:?}"
        );
    }

    // Control: the same form with both real answers does recover, so the failures above
    // come from the duplicate alone.
    let out = s
        .service
        .start_recovery(iess_recovery(&s.service, MEMBER, &SECURITY))
        .await
        .unwrap();
    assert_eq!(out, RecoveryOutcome::Submitted);
    assert_eq!(reset_links_queued(&s.store), 1);
    assert!(matches!(
        state_of(&s.store, MEMBER).await.unwrap(),
        AccountState::Resetting { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// 2. Registration form errors answer alike for known and unknown IDs
// ---------------------------------------------------------------------------------------------

/// Old code: the terms and contact rules lived only in the core, which an unknown ID never
/// reached (the service answered `Ok(ChecksFailed)` first), so a registry member got
/// `Err(TermsNotAccepted)` / `Err(MissingContact)` and a stranger `Ok(ChecksFailed)`: an
/// enumeration oracle. Now the form is checked before the registry lookup.
#[tokio::test]
async fn registration_form_errors_are_the_same_for_known_and_unknown_ids() {
    let s = setup(Policy::isspol(), &[MEMBER]);

    let no_terms = |m: &str| {
        let mut req = isspol_form(m);
        req.terms_accepted = false;
        req
    };
    let known = denied(s.service.register(no_terms(MEMBER)).await);
    let unknown = denied(s.service.register(no_terms(UNKNOWN)).await);
    assert_eq!(known, Denied::TermsNotAccepted);
    assert_eq!(unknown, known);

    let no_mobile = |m: &str| {
        let mut req = isspol_form(m);
        req.mobile = None;
        req
    };
    let known = denied(s.service.register(no_mobile(MEMBER)).await);
    let unknown = denied(s.service.register(no_mobile(UNKNOWN)).await);
    assert_eq!(known, Denied::MissingContact("mobile"));
    assert_eq!(unknown, known);

    assert!(s.store.outbox().is_empty());
    assert_eq!(state_of(&s.store, MEMBER).await, None);
    assert_eq!(state_of(&s.store, UNKNOWN).await, None);
}

// ---------------------------------------------------------------------------------------------
// 3. Recovery form errors and ineligible accounts answer alike
// ---------------------------------------------------------------------------------------------

/// Old code: the missing registered email and the forbidden email change were refused by
/// the core only, so an active account answered `Err(..)` while an unknown ID answered
/// `Ok(Submitted)`. Now both are checked on the form first.
#[tokio::test]
async fn isspol_recovery_form_errors_are_the_same_for_active_and_unknown_ids() {
    let s = setup(Policy::isspol(), &[MEMBER]);
    commit_active(
        &s.store,
        MEMBER,
        argon2(PASSWORD),
        SecurityEnrollment::default(),
    )
    .await;

    // No email at all.
    let known = denied(s.service.start_recovery(RecoveryRequest::new(MEMBER)).await);
    let unknown = denied(
        s.service
            .start_recovery(RecoveryRequest::new(UNKNOWN))
            .await,
    );
    assert_eq!(known, Denied::MissingProof(Proof::RegisteredEmail));
    assert_eq!(unknown, known);

    // The right email, plus a replacement ISSPOL does not allow.
    let with_new_email = |m: &str| {
        let mut req = RecoveryRequest::new(m);
        req.email = Some(EMAIL.to_owned());
        req.new_email = Some("otro@example.ec".to_owned());
        req
    };
    let known = denied(s.service.start_recovery(with_new_email(MEMBER)).await);
    let unknown = denied(s.service.start_recovery(with_new_email(UNKNOWN)).await);
    assert_eq!(known, Denied::EmailChangeNotAllowed);
    assert_eq!(unknown, known);

    assert!(s.store.outbox().is_empty());
    assert!(matches!(
        state_of(&s.store, MEMBER).await.unwrap(),
        AccountState::Active { .. }
    ));
    assert_eq!(state_of(&s.store, UNKNOWN).await, None);
}

/// Old code: a pending registration made the core answer `NotEligible`, which the service
/// mapped to `Submitted`, while an unknown ID heard `ChecksFailed` (with knowledge checks):
/// "Submitted" told a stranger the ID had started a registration. Now both are
/// `ChecksFailed`.
#[tokio::test]
async fn iess_recovery_for_a_pending_registration_answers_like_an_unknown_id() {
    let s = setup(Policy::iess(), &[MEMBER]);
    assert_eq!(
        s.service
            .register(iess_form(&s.service, MEMBER))
            .await
            .unwrap(),
        RegisterOutcome::Submitted
    );
    assert!(matches!(
        state_of(&s.store, MEMBER).await.unwrap(),
        AccountState::PendingActivation(_)
    ));

    let wrong = [(SECURITY[0].0, "Manta"), (SECURITY[1].0, "Quito")];
    let mut pending = iess_recovery(&s.service, MEMBER, &wrong);
    pending.answers.birth_day_month = Some((1, 1));
    let mut unknown = iess_recovery(&s.service, UNKNOWN, &wrong);
    unknown.answers.birth_day_month = Some((1, 1));

    let pending = s.service.start_recovery(pending).await.unwrap();
    let unknown = s.service.start_recovery(unknown).await.unwrap();
    assert_eq!(pending, RecoveryOutcome::ChecksFailed);
    assert_eq!(unknown, pending);
    assert_eq!(reset_links_queued(&s.store), 0);
}

// ---------------------------------------------------------------------------------------------
// 4. No rehash on a locked account
// ---------------------------------------------------------------------------------------------

/// Old code rehashed whenever the password matched and the hash needed an upgrade, even
/// when the account was locked and the login refused: the right password cost one argon2
/// hash more than a wrong one (a timing oracle to guess passwords of locked accounts). Now
/// it rehashes only when the core would log the member in.
async fn locked_account_never_rehashes(stored: PasswordHash) {
    assert!(
        Argon2Hasher::new(HashParams::danger_insecure_for_tests())
            .unwrap()
            .needs_rehash(&stored)
    );
    // IESS: 3 failures lock, no automatic unlock, the lock is not revealed.
    let s = setup(Policy::iess(), &[MEMBER]);
    commit_active(
        &s.store,
        MEMBER,
        stored.clone(),
        SecurityEnrollment::default(),
    )
    .await;

    for _ in 0..s.service.policy().lockout.threshold {
        let out = s.service.login(MEMBER, Password::new(WRONG)).await.unwrap();
        assert_eq!(out, LoginOutcome::Failed);
        assert_eq!(s.hasher.take(), (0, 1, 0));
    }
    assert!(matches!(
        state_of(&s.store, MEMBER).await.unwrap(),
        AccountState::Locked { .. }
    ));

    for pw in [PASSWORD, WRONG, PASSWORD] {
        let out = s.service.login(MEMBER, Password::new(pw)).await.unwrap();
        assert_eq!(out, LoginOutcome::Failed, "locked: {pw}");
        assert_eq!(
            s.hasher.take(),
            (0, 1, 0),
            "one verification, no hash: {pw}"
        );
    }
    let record = s.store.load(&id(MEMBER)).await.unwrap().unwrap();
    assert_eq!(
        record.password_hash(),
        Some(&stored),
        "not upgraded while locked"
    );

    s.service
        .staff(
            "mquintanilla",
            "verificación presencial de identidad",
            MEMBER,
            StaffRequest::Unlock,
        )
        .await
        .unwrap();
    assert_eq!(s.hasher.take(), (0, 0, 0));

    let out = s
        .service
        .login(MEMBER, Password::new(PASSWORD))
        .await
        .unwrap();
    assert_eq!(out, LoginOutcome::Success { member: id(MEMBER) });
    assert_eq!(
        s.hasher.take(),
        (1, 1, 0),
        "upgraded on the successful login"
    );
    let upgraded = s
        .store
        .load(&id(MEMBER))
        .await
        .unwrap()
        .unwrap()
        .password_hash()
        .unwrap()
        .clone();
    assert_ne!(upgraded, stored);
    assert!(!upgraded.is_legacy());
    assert_eq!(upgraded.algorithm(), "argon2id");
    assert_eq!(
        upgraded.params(),
        Some(HashParams::danger_insecure_for_tests())
    );

    // Upgraded once: the next login only verifies.
    let out = s
        .service
        .login(MEMBER, Password::new(PASSWORD))
        .await
        .unwrap();
    assert_eq!(out, LoginOutcome::Success { member: id(MEMBER) });
    assert_eq!(s.hasher.take(), (0, 1, 0));
}

#[tokio::test]
async fn locked_account_with_legacy_bcrypt_hash_never_rehashes() {
    let legacy = PasswordHash::parse(&bcrypt::hash(PASSWORD, 4).unwrap()).unwrap();
    assert!(legacy.is_legacy());
    locked_account_never_rehashes(legacy).await;
}

#[tokio::test]
async fn locked_account_with_argon2_at_other_params_never_rehashes() {
    let other = HashParams {
        m_cost_kib: 16,
        t_cost: 2,
        p_cost: 1,
    };
    assert_ne!(other, HashParams::danger_insecure_for_tests());
    let mut rng = StdRng::seed_from_u64(11);
    let hash = hash_password(PASSWORD.as_bytes(), &other, &mut rng).unwrap();
    locked_account_never_rehashes(hash).await;
}

// ---------------------------------------------------------------------------------------------
// 5. Bounded enrollment hashing
// ---------------------------------------------------------------------------------------------

/// Old code hashed every security answer of the form (before the registry lookup) and the
/// core only checked there were *at least* enough: 300 answers cost 300 argon2 hashes per
/// request (denial of service), and extra or duplicate answers were enrolled. Now the form
/// must carry exactly the enrolled number of answers, to distinct questions, and is refused
/// before any hashing.
#[tokio::test]
async fn iess_registration_with_wrong_security_answer_count_hashes_nothing() {
    let s = setup(Policy::iess(), &[MEMBER]);
    assert_eq!(s.service.policy().registration.security_questions, 2);

    let too_many: Vec<(String, String)> = (0..300)
        .map(|i| (format!("pregunta_{i}"), format!("respuesta {i}")))
        .collect();
    let mut three: Vec<(String, String)> = SECURITY
        .iter()
        .map(|(q, a)| ((*q).to_owned(), (*a).to_owned()))
        .collect();
    three.push(("color".to_owned(), "Verde".to_owned()));
    let same_question = vec![
        ("mascota".to_owned(), "Firulais".to_owned()),
        ("mascota".to_owned(), "Rocky".to_owned()),
    ];

    for security in [too_many, three, same_question] {
        let n = security.len();
        let mut req = iess_form(&s.service, MEMBER);
        req.answers.security = security;
        match s.service.register(req).await {
            Err(ServiceError::InvalidInput { field, .. }) => {
                assert_eq!(field, "security_answers", "{n} answers");
            }
            other => panic!("{n} answers: expected InvalidInput, got {other:?}"),
        }
        assert_eq!(s.hasher.take(), (0, 0, 0), "{n} answers: nothing hashed");
    }
    assert_eq!(state_of(&s.store, MEMBER).await, None);
    assert!(s.store.outbox().is_empty());

    // Control: the valid form hashes the image and the two answers, and registers.
    assert_eq!(
        s.service
            .register(iess_form(&s.service, MEMBER))
            .await
            .unwrap(),
        RegisterOutcome::Submitted
    );
    assert_eq!(s.hasher.take(), (3, 0, 0));
}

// ---------------------------------------------------------------------------------------------
// 6. Staff foreigner enrollment
// ---------------------------------------------------------------------------------------------

const ACTOR: &str = "mquintanilla";
const REASON: &str = "verificación presencial de identidad";

/// Old code wrote the registry before the core checked the command, so a refused request
/// (blank reason) still enrolled the member. Now the core decides first.
#[tokio::test]
async fn enroll_foreigner_with_a_blank_reason_leaves_the_registry_alone() {
    let s = setup(Policy::iess(), &[]);
    let facts = facts_for(FOREIGNER);

    let err = s
        .service
        .staff(
            ACTOR,
            "  ",
            FOREIGNER,
            StaffRequest::EnrollForeigner(facts.clone()),
        )
        .await;
    assert_eq!(denied(err), Denied::MissingStaffReason);
    assert_eq!(s.directory.find(&id(FOREIGNER)).await.unwrap(), None);
    assert_eq!(state_of(&s.store, FOREIGNER).await, None);
    assert!(s.store.audit_log(&id(FOREIGNER)).await.unwrap().is_empty());

    // Control: with a reason it enrolls.
    s.service
        .staff(
            ACTOR,
            REASON,
            FOREIGNER,
            StaffRequest::EnrollForeigner(facts.clone()),
        )
        .await
        .unwrap();
    assert_eq!(s.directory.find(&id(FOREIGNER)).await.unwrap(), Some(facts));
}

/// Old code let staff overwrite the registry facts (birth date, names, employers: the
/// recovery proofs) of a foreigner who already had an activated account, and only then did
/// the core refuse the command. Now the refusal comes first and the facts stay.
#[tokio::test]
async fn enroll_foreigner_with_an_activated_account_keeps_the_registry_facts() {
    let s = setup(Policy::iess(), &[FOREIGNER]);
    let original = facts_for(FOREIGNER);
    commit_active(&s.store, FOREIGNER, argon2(PASSWORD), enrolled_security()).await;

    let mut forged = MemberFacts::new(id(FOREIGNER), "OTRA PERSONA", date!(2000 - 01 - 01));
    forged.employers = vec!["Empresa Ficticia".to_owned()];
    forged.contribution_years = vec![2024];
    let err = s
        .service
        .staff(
            ACTOR,
            REASON,
            FOREIGNER,
            StaffRequest::EnrollForeigner(forged),
        )
        .await;
    assert!(
        matches!(denied(err), Denied::NotApplicable { .. }),
        "an activated account cannot be enrolled again"
    );
    assert_eq!(
        s.directory.find(&id(FOREIGNER)).await.unwrap(),
        Some(original)
    );
    assert!(matches!(
        state_of(&s.store, FOREIGNER).await.unwrap(),
        AccountState::Active { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// 7. No argon2 work before the proofs pass
// ---------------------------------------------------------------------------------------------

/// Old code hashed the security image and answers of every registration form before the
/// registry lookup (3 argon2 hashes under IESS), so anonymous forms with wrong proofs could
/// fill the hashing pool and starve logins with `Busy`. Now the form, the registry and the
/// proofs are checked first and enrollment answers are hashed last.
#[tokio::test]
async fn registration_hashes_nothing_until_the_proofs_pass() {
    let s = setup(Policy::iess(), &[MEMBER]);
    for member in [MEMBER, UNKNOWN] {
        let mut wrong = iess_form(&s.service, member);
        wrong.answers.birth_day_month = Some((1, 1));
        assert_eq!(
            s.service.register(wrong).await.unwrap(),
            RegisterOutcome::ChecksFailed,
            "{member}"
        );
        assert_eq!(s.hasher.take(), (0, 0, 0), "{member}: nothing hashed");
    }
    assert!(s.store.outbox().is_empty());
    // Control: right proofs hash the image and the two answers once, then register.
    assert_eq!(
        s.service
            .register(iess_form(&s.service, MEMBER))
            .await
            .unwrap(),
        RegisterOutcome::Submitted
    );
    assert_eq!(s.hasher.take(), (3, 0, 0));
}

/// Registrations that cannot register hash nothing either: a correct form once the day's
/// failure budget is spent, and a correct form against an already active account.
#[tokio::test]
async fn refused_or_redundant_registrations_hash_nothing() {
    let s = setup(Policy::iess(), &[MEMBER]);
    for _ in 0..5 {
        let mut wrong = iess_form(&s.service, MEMBER);
        wrong.answers.birth_day_month = Some((1, 1));
        s.service.register(wrong).await.unwrap();
    }
    s.hasher.take();
    assert_eq!(
        s.service
            .register(iess_form(&s.service, MEMBER))
            .await
            .unwrap(),
        RegisterOutcome::ChecksFailed
    );
    assert_eq!(s.hasher.take(), (0, 0, 0), "budget spent: nothing hashed");

    let s = setup(Policy::iess(), &[MEMBER]);
    commit_active(&s.store, MEMBER, argon2(PASSWORD), enrolled_security()).await;
    for _ in 0..20 {
        assert_eq!(
            s.service
                .register(iess_form(&s.service, MEMBER))
                .await
                .unwrap(),
            RegisterOutcome::Submitted
        );
    }
    assert_eq!(s.hasher.take(), (0, 0, 0), "already active: nothing hashed");
}
