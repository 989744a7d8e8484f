//! Performance budget: a pure core transition ≤ 1 µs. Measures `decide` for the hot commands on
//! realistic records (the ratio against the 1 µs budget is printed by criterion's estimate).
//!
//! ```sh
//! cargo bench --bench core
//! ```
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;

use afiliado::core::{
    AccountRecord, AccountState, Command, Contact, Locale, Profile, ProofResult, Register,
    SecurityEnrollment, decide,
};
use afiliado::crypto::{DigestKey, HashParams, Token, TokenPurpose, hash_password};
use afiliado::policy::{Policy, Proof};
use afiliado::{Email, MemberId};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use time::macros::datetime;

fn bench(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let policy = Policy::isspol();
    let key = DigestKey::generate(&mut rng);
    let member: MemberId = "1710034065".parse().unwrap();
    let email: Email = "ana.quispe@example.ec".parse().unwrap();
    let now = datetime!(2026-11-22 10:00 -5);
    let hash = hash_password(
        b"Policia2026x",
        &HashParams::danger_insecure_for_tests(),
        &mut rng,
    )
    .unwrap();

    let mut active = AccountRecord::new(member.clone());
    active.state = AccountState::Active {
        profile: Profile {
            password: hash,
            contact: Contact::email_only(email.clone()),
            enrollment: SecurityEnrollment::default(),
            activated_at: now,
            password_changed_at: now,
            last_login_at: None,
        },
        failures: vec![
            now - time::Duration::minutes(3),
            now - time::Duration::minutes(2),
        ],
    };
    let fail = Command::Login {
        password_matched: false,
        rehash: None,
    };
    let ok = Command::Login {
        password_matched: true,
        rehash: None,
    };
    c.bench_function("decide/login_failure", |b| {
        b.iter(|| decide(black_box(&active), &fail, now, &policy))
    });
    c.bench_function("decide/login_success", |b| {
        b.iter(|| decide(black_box(&active), &ok, now, &policy))
    });

    let fresh = AccountRecord::new(member.clone());
    let register = Command::Register(Register {
        contact: Contact {
            email,
            mobile: Some("0991234567".parse().unwrap()),
            landline: None,
        },
        terms_accepted: true,
        proofs: vec![ProofResult::passed(Proof::AffiliateNumber)],
        human_verified: false,
        link: key.digest_token(TokenPurpose::Activation, &Token::generate(&mut rng)),
        code: Some(key.digest_token(TokenPurpose::ActivationCode, &Token::generate(&mut rng))),
        enrollment: SecurityEnrollment::default(),
        locale: Locale::EsEc,
    });
    c.bench_function("decide/register", |b| {
        b.iter(|| decide(black_box(&fresh), &register, now, &policy))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
