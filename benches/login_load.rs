//! Login load bench (the performance budget), printing ratios measured in one run:
//!
//! * service login throughput on the memory store ÷ raw argon2id verify throughput, both on
//!   all cores (budget ≥ 0.97);
//! * median latency of an unknown-ID login ÷ a known-ID wrong-password login (budget within
//!   3 %: the answer must not tell whether the ID exists).
//!
//! ```sh
//! cargo bench --bench login_load
//! LOGINS=800 cargo bench --bench login_load    # more samples
//! ```
#![allow(clippy::disallowed_methods)] // a bench reads the wall clock and the OS RNG

use std::sync::Arc;
use std::time::{Duration, Instant};

use afiliado::core::{AccountRecord, AccountState, Contact, Profile};
use afiliado::crypto::{DigestKey, hash_password, verify_password};
use afiliado::identity::check_digit;
use afiliado::memory::{MemoryDirectory, MemoryStore};
use afiliado::ports::AccountStore;
use afiliado::seal::SealKey;
use afiliado::service::{AccountService, HashPool, LoginOutcome};
use afiliado::{MemberId, Password, Policy};

const RIGHT: &str = "Atardecer en el Cotopaxi";

fn cedula(n: u64) -> MemberId {
    let text = format!("17{:07}", 2_000_000 + n);
    let mut nine = [0u8; 9];
    for (d, c) in nine.iter_mut().zip(text.bytes()) {
        *d = c - b'0';
    }
    format!("{text}{}", check_digit(&nine))
        .parse()
        .expect("valid cédula")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let logins: usize = std::env::var("LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut policy = Policy::recommended(); // OWASP argon2id: m=19456 KiB, t=2, p=1
    policy.lockout.threshold = 1_000; // measure hashing, not lockouts
    let mut rng = rand::rng();
    let hash = hash_password(RIGHT.as_bytes(), &policy.hashing, &mut rng).expect("hash");

    // 1. Raw argon2id verification throughput on all cores.
    let raw = rt.block_on(async {
        let t = Instant::now();
        let per_core = logins.div_ceil(cores);
        let tasks: Vec<_> = (0..cores)
            .map(|_| {
                let h = hash.clone();
                tokio::task::spawn_blocking(move || {
                    for _ in 0..per_core {
                        let _ = verify_password(b"equivocada equivocada", &h);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("join");
        }
        (per_core * cores) as f64 / t.elapsed().as_secs_f64()
    });

    // 2. The same number of wrong-password logins through the service.
    let (service, accounts) = rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let now = time::OffsetDateTime::now_utc();
        let accounts = 100u64;
        for n in 0..accounts {
            let mut r = AccountRecord::new(cedula(n));
            r.state = AccountState::Active {
                profile: Profile {
                    password: hash.clone(),
                    contact: Contact::email_only("afiliado@example.ec".parse().expect("email")),
                    enrollment: Default::default(),
                    activated_at: now,
                    password_changed_at: now,
                    last_login_at: None,
                },
                failures: Vec::new(),
            };
            store.commit(&r, 0, vec![], vec![]).await.expect("commit");
        }
        let service = AccountService::builder(
            policy.clone(),
            DigestKey::generate(&mut rng),
            SealKey::generate(&mut rng),
        )
        .store(store)
        .directory(Arc::new(MemoryDirectory::new()))
        .human_check(Arc::new(afiliado::ports::AlwaysPass))
        .pool(HashPool::new(cores, logins))
        // This bench measures what the service adds to hashing, so no response floor (with
        // it every answer would wait for the floor; see `benches/enumeration.rs`).
        .response_floor(Duration::ZERO)
        .build()
        .expect("service");
        (service, accounts)
    });
    let through_service = rt.block_on(async {
        let t = Instant::now();
        let tasks: Vec<_> = (0..logins)
            .map(|i| {
                let s = service.clone();
                let id = cedula(i as u64 % accounts).as_str().to_owned();
                tokio::spawn(
                    async move { s.login(&id, Password::new("equivocada equivocada")).await },
                )
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.expect("join").expect("login"), LoginOutcome::Failed);
        }
        logins as f64 / t.elapsed().as_secs_f64()
    });

    // 3. Sequential latency: unknown ID vs known ID with a wrong password, interleaved.
    let (unknown, wrong) = rt.block_on(async {
        let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
        for i in 0..(logins / 4).max(20) {
            let t = Instant::now();
            let out = service
                .login(
                    cedula(10_000 + i as u64).as_str(),
                    Password::new("equivocada equivocada"),
                )
                .await;
            unknown.push(t.elapsed());
            assert_eq!(out.expect("login"), LoginOutcome::Failed);
            let t = Instant::now();
            let out = service
                .login(
                    cedula(i as u64 % accounts).as_str(),
                    Password::new("equivocada equivocada"),
                )
                .await;
            wrong.push(t.elapsed());
            assert_eq!(out.expect("login"), LoginOutcome::Failed);
        }
        (median(unknown), median(wrong))
    });

    println!("cores: {cores}, logins: {logins}, argon2id m=19456 KiB t=2 p=1");
    println!("raw argon2id verify : {raw:8.1} /s");
    println!("service login       : {through_service:8.1} /s");
    println!(
        "throughput ratio    : {:.3} (budget ≥ 0.97)",
        through_service / raw
    );
    println!("median unknown ID   : {:?}", unknown);
    println!("median wrong pass   : {:?}", wrong);
    println!(
        "latency ratio       : {:.3} (budget within 0.97–1.03)",
        unknown.as_secs_f64() / wrong.as_secs_f64()
    );
}
