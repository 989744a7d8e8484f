//! Enumeration bench: does the time a request takes tell anything about the ID?
//!
//! For each flow (login with a wrong password, registration with wrong proofs, recovery with
//! wrong proofs, unlock request) and each backend (memory, SQLite, PostgreSQL when
//! `DATABASE_URL` is set), it times requests about six classes of ID, interleaved round by
//! round in a rotating order:
//!
//! | class | what the ID is |
//! |---|---|
//! | unknown | a valid cédula the registry does not know (a fresh one each sample) |
//! | registry | a registry member with no account (a fresh one each sample) |
//! | pending | a registration waiting for activation |
//! | active | an active account (the baseline) |
//! | locked | an account locked by failed logins |
//! | suspended | an account suspended by staff |
//!
//! Accounts are put back to their starting record before every sample (untimed), so every
//! sample of a class sees the same state. It prints, per flow and backend, each class's median
//! latency ÷ the active account's, and the two-sample Kolmogorov–Smirnov p-value of the two
//! latency distributions. Targets: every ratio within 1.00 ± 0.03, and no p < 0.001.
//!
//! ```sh
//! cargo bench --bench enumeration --all-features                 # 1,000 samples per class
//! SAMPLES=200 FLOWS=register,unlock BACKENDS=sqlite cargo bench --bench enumeration --all-features
//! PRESET=isspol cargo bench --bench enumeration --all-features   # recommended by default
//! ```
#![allow(clippy::disallowed_methods)] // a bench reads the wall clock and the OS RNG

use std::sync::Arc;
use std::time::{Duration, Instant};

use afiliado::core::{
    AccountRecord, AccountState, Contact, IssuedToken, Lock, LockReason, Pending, Profile,
};
use afiliado::crypto::{DigestKey, hash_password};
use afiliado::identity::check_digit;
use afiliado::memory::{MemoryDirectory, MemoryStore};
use afiliado::policy::{Ask, Proof};
use afiliado::ports::{AccountStore, AlwaysPass, MemberDirectory, MemberFacts};
use afiliado::seal::SealKey;
use afiliado::service::{AccountService, Answers, RecoveryRequest, RegisterRequest};
use afiliado::{MemberId, Password, Policy};

const RIGHT: &str = "Atardecer en el Cotopaxi 2026";
const WRONG: &str = "Adivino en el Cotopaxi 2026";
const CLASSES: [&str; 6] = [
    "unknown",
    "registry",
    "pending",
    "active",
    "locked",
    "suspended",
];
const BASELINE: usize = 3;
const FLOWS: [&str; 4] = ["login", "register", "recovery", "unlock"];

fn cedula(n: u64) -> MemberId {
    let text = format!("{:02}{:07}", 1 + n % 24, 3_000_000 + n / 24);
    let mut nine = [0u8; 9];
    for (d, c) in nine.iter_mut().zip(text.bytes()) {
        *d = c - b'0';
    }
    format!("{text}{}", check_digit(&nine))
        .parse()
        .expect("valid cédula")
}

fn env_list(name: &str, default: &[&str]) -> Vec<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect())
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Two-sample Kolmogorov–Smirnov statistic D and its asymptotic p-value (with Stephens'
/// small-sample correction).
fn ks(a: &[f64], b: &[f64]) -> (f64, f64) {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    if d == 0.0 {
        return (0.0, 1.0);
    }
    let ne = (n * m / (n + m)).sqrt();
    let lambda = (ne + 0.12 + 0.11 / ne) * d;
    let mut p = 0.0;
    for k in 1..=100 {
        let k = f64::from(k);
        let term = 2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * lambda * lambda).exp();
        p += term;
        if term.abs() < 1e-12 {
            break;
        }
    }
    (d, p.clamp(0.0, 1.0))
}

// ---------------------------------------------------------------------------------------------
// One backend
// ---------------------------------------------------------------------------------------------

struct Backend {
    name: &'static str,
    store: Arc<dyn AccountStore>,
    directory: Arc<dyn MemberDirectory>,
}

struct Bench {
    policy: Policy,
    service: AccountService,
    store: Arc<dyn AccountStore>,
    directory: Arc<dyn MemberDirectory>,
    /// Starting records of pending, active, locked, suspended.
    accounts: Vec<AccountRecord>,
    /// An active account no sample asks about (restored by the other classes' setup).
    spare: AccountRecord,
    next_id: u64,
}

impl Bench {
    async fn new(policy: &Policy, backend: &Backend, base: u64) -> Self {
        let mut rng = rand::rng();
        let service = AccountService::builder(
            policy.clone(),
            DigestKey::generate(&mut rng),
            SealKey::generate(&mut rng),
        )
        .store(backend.store.clone())
        .directory(backend.directory.clone())
        .human_check(Arc::new(AlwaysPass))
        .build()
        .expect("service builds");
        let now = time::OffsetDateTime::now_utc();
        let hash = hash_password(RIGHT.as_bytes(), &policy.hashing, &mut rng).expect("hash");
        let mut accounts = Vec::new();
        for (i, class) in CLASSES.iter().enumerate().skip(2) {
            let member = cedula(base + i as u64);
            backend
                .directory
                .enroll(facts(member.clone()))
                .await
                .expect("enroll");
            let contact = Contact::email_only(
                format!("socio{}@example.ec", base + i as u64)
                    .parse()
                    .expect("email"),
            );
            let profile = Profile {
                password: hash.clone(),
                contact: contact.clone(),
                enrollment: Default::default(),
                activated_at: now,
                password_changed_at: now,
                last_login_at: None,
            };
            let lock = |reason| Lock {
                reason,
                since: now,
                auto_unlock_at: None,
                unlock_link: None,
            };
            let mut record = AccountRecord::new(member);
            record.state = match *class {
                "pending" => AccountState::PendingActivation(Pending {
                    link: IssuedToken {
                        digest: afiliado::crypto::Digest::from_bytes([i as u8; 32]),
                        issued_at: now,
                        expires_at: now + time::Duration::days(365),
                    },
                    code: None,
                    code_attempts_left: 0,
                    contact,
                    terms_accepted_at: Some(now),
                    enrollment: Default::default(),
                }),
                "active" => AccountState::Active {
                    profile,
                    failures: Vec::new(),
                },
                "locked" => AccountState::Locked {
                    profile,
                    lock: lock(LockReason::FailedLogins),
                },
                _ => AccountState::Locked {
                    profile,
                    lock: lock(LockReason::Staff),
                },
            };
            record.version = backend
                .store
                .commit(&record, 0, Vec::new(), Vec::new())
                .await
                .expect("seed account");
            accounts.push(record);
        }
        let mut spare = accounts[1].clone();
        spare.member = cedula(base + 7);
        spare.version = backend
            .store
            .commit(&spare, 0, Vec::new(), Vec::new())
            .await
            .expect("seed spare");
        Self {
            policy: policy.clone(),
            service,
            store: backend.store.clone(),
            directory: backend.directory.clone(),
            accounts,
            spare,
            next_id: base + 1_000,
        }
    }

    fn fresh(&mut self) -> MemberId {
        self.next_id += 1;
        cedula(self.next_id)
    }

    /// The ID of one sample of `class`, its record put back to the starting one (untimed).
    ///
    /// The setup is the same store work for every class (one registry insert, one record
    /// read and one commit), so that nothing it leaves behind (caches, background work of
    /// the store's threads) differs by class when the timed request starts.
    async fn subject(&mut self, class: usize) -> MemberId {
        let fresh = self.fresh();
        self.directory
            .enroll(facts(fresh.clone()))
            .await
            .expect("enroll");
        // Unknown and registry-only samples restore a spare account instead.
        let start = match class {
            0 | 1 => &self.spare,
            _ => &self.accounts[class - 2],
        };
        let current = self
            .store
            .load(&start.member)
            .await
            .expect("load")
            .expect("seeded");
        self.store
            .commit(start, current.version, Vec::new(), Vec::new())
            .await
            .expect("restore");
        match class {
            // A valid cédula the registry does not know.
            0 => self.fresh(),
            1 => fresh,
            _ => start.member.clone(),
        }
    }

    fn wrong_answers(&self, for_recovery: bool) -> Answers {
        let proofs = if for_recovery {
            &self.policy.recovery.proofs
        } else {
            &self.policy.registration.proofs
        };
        let mut a = Answers::default();
        if proofs.contains(&Proof::AffiliateNumber) {
            a.affiliate_number = Some("ISS-000000".into());
        }
        if proofs.contains(&Proof::BirthDayMonth) {
            a.birth_day_month = Some((1, 1));
        }
        a.record = self
            .service
            .record_questions(for_recovery)
            .into_iter()
            .map(|q| (q, "ninguna".to_owned()))
            .collect();
        for p in proofs {
            if let Proof::SecurityQuestions { count } = p {
                for q in 0..*count {
                    a.security.push((format!("q{q}"), "ninguna".into()));
                }
            }
            if *p == Proof::SecurityImage {
                a.security_image = Some("ninguna".into());
            }
        }
        a
    }

    /// One timed request of `flow` about `id`.
    async fn request(&self, flow: &str, id: &MemberId) -> Duration {
        let id = id.as_str();
        let reg = &self.policy.registration;
        // Requests from the network arrive at any instant. Without this the bench would start
        // each one at a fixed offset from the runtime's 1 ms timer tick (the previous answer
        // ended on one, and the untimed setup before it differs by class), and the response
        // floor's wake-up on the next tick would differ by that offset, not by the ID.
        let phase = rand::random_range(0..1_000u64);
        std::thread::sleep(Duration::from_micros(phase));
        let started = Instant::now();
        let answered = match flow {
            "login" => self
                .service
                .login(id, Password::new(WRONG))
                .await
                .map(|_| ()),
            "register" => {
                let mut req = RegisterRequest::new(id, "alguien@example.ec");
                if reg.mobile != Ask::No {
                    req.mobile = Some("0991234567".into());
                }
                if reg.landline != Ask::No {
                    req.landline = Some("02 234-5678".into());
                }
                req.terms_accepted = true;
                req.human_response = Some("ok".into());
                req.answers = self.wrong_answers(false);
                if reg.security_image {
                    req.answers.security_image = Some("Colibrí".into());
                }
                for q in 0..reg.security_questions {
                    req.answers
                        .security
                        .push((format!("q{q}"), "Portoviejo".into()));
                }
                self.service.register(req).await.map(|_| ())
            }
            "recovery" => {
                let mut req = RecoveryRequest::new(id);
                req.human_response = Some("ok".into());
                if self
                    .policy
                    .recovery
                    .proofs
                    .contains(&Proof::RegisteredEmail)
                {
                    req.email = Some("alguien@example.ec".into());
                }
                req.answers = self.wrong_answers(true);
                self.service.start_recovery(req).await.map(|_| ())
            }
            _ => self.service.request_unlock(id, Some("ok")).await,
        };
        let took = started.elapsed();
        if let Err(e) = answered {
            panic!("{flow} for {id}: {e:?}");
        }
        took
    }
}

fn facts(member: MemberId) -> MemberFacts {
    let mut f = MemberFacts::new(
        member,
        "SOCIO DE PRUEBA",
        time::macros::date!(1980 - 05 - 17),
    );
    f.affiliate_number = Some("ISS-204518".into());
    f.employers = vec!["Policía Nacional del Ecuador".into()];
    f.contribution_years = vec![2001, 2010, 2025];
    f
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async fn backends(wanted: &[String]) -> Vec<Backend> {
    let mut out = Vec::new();
    if wanted.iter().any(|b| b == "memory") {
        out.push(Backend {
            name: "memory",
            store: Arc::new(MemoryStore::new()),
            directory: Arc::new(MemoryDirectory::new()),
        });
    }
    #[cfg(feature = "sqlite")]
    if wanted.iter().any(|b| b == "sqlite") {
        let dir = std::env::temp_dir().join(format!("afiliado-enumeration-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("bench.db").display());
        let store = afiliado::sqlite::SqliteStore::open(&url)
            .await
            .expect("sqlite");
        store.migrate().await.expect("migrate");
        let store = Arc::new(store);
        out.push(Backend {
            name: "sqlite",
            store: store.clone(),
            directory: store,
        });
    }
    #[cfg(not(feature = "sqlite"))]
    println!("sqlite: not built (run with --all-features)");
    #[cfg(feature = "postgres")]
    if wanted.iter().any(|b| b == "postgres") {
        match std::env::var("DATABASE_URL") {
            Ok(url) => {
                let schema = format!("afiliado_enumeration_{}", std::process::id());
                let store = afiliado::postgres::PostgresStore::open_with(
                    &url,
                    afiliado::postgres::PoolSettings::default().schema(&schema),
                )
                .await
                .expect("postgres");
                store.migrate().await.expect("migrate");
                let store = Arc::new(store);
                out.push(Backend {
                    name: "postgres",
                    store: store.clone(),
                    directory: store,
                });
            }
            Err(_) => println!("postgres: skipped (DATABASE_URL not set)"),
        }
    }
    #[cfg(not(feature = "postgres"))]
    println!("postgres: not built (run with --all-features)");
    out
}

fn main() {
    let samples: usize = std::env::var("SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let flows = env_list("FLOWS", &FLOWS);
    let wanted = env_list("BACKENDS", &["memory", "sqlite", "postgres"]);
    let preset = std::env::var("PRESET").unwrap_or_else(|_| "recommended".into());
    let policy = match preset.as_str() {
        "isspol" => Policy::isspol(),
        "iess" => Policy::iess(),
        _ => Policy::recommended(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "enumeration bench: preset {}, {samples} interleaved samples per class, argon2id {:?}",
        policy.name, policy.hashing
    );
    println!("targets: median ratio to an active account within 1.00 ± 0.03; KS p ≥ 0.001\n");
    println!(
        "{:<9} {:<9} {:<10} {:>10} {:>7} {:>7} {:>9}  verdict",
        "flow", "backend", "class", "median ms", "ratio", "KS D", "KS p"
    );
    let mut failures = 0;
    rt.block_on(async {
        for (b, backend) in backends(&wanted).await.iter().enumerate() {
            for (f, flow) in flows.iter().enumerate() {
                if flow == "unlock" && policy.unlock.link_ttl.is_none() {
                    println!("{flow:<9} {:<9} (the preset offers no unlock link)", backend.name);
                    continue;
                }
                let base = 10_000 * (b as u64 * 10 + f as u64 + 1);
                let mut bench = Bench::new(&policy, backend, base).await;
                // Warm-up round, untimed.
                for class in 0..CLASSES.len() {
                    let id = bench.subject(class).await;
                    bench.request(flow, &id).await;
                }
                let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(samples); CLASSES.len()];
                for round in 0..samples {
                    for k in 0..CLASSES.len() {
                        let class = (round + k) % CLASSES.len();
                        let id = bench.subject(class).await;
                        let took = bench.request(flow, &id).await;
                        times[class].push(took.as_secs_f64() * 1e3);
                    }
                }
                let base_median = median(&times[BASELINE]);
                for (class, t) in times.iter().enumerate() {
                    let m = median(t);
                    let ratio = m / base_median;
                    let (d, p) = ks(t, &times[BASELINE]);
                    let ok = class == BASELINE || ((ratio - 1.0).abs() <= 0.03 && p >= 0.001);
                    if !ok {
                        failures += 1;
                    }
                    if std::env::var_os("QUANTILES").is_some() {
                        let mut v = t.clone();
                        v.sort_by(f64::total_cmp);
                        let q = |x: f64| v[((v.len() - 1) as f64 * x) as usize];
                        println!(
                            "  quantiles 1/10/25/50/75/90/99 %: {:.3} {:.3} {:.3} {:.3} {:.3} {:.3} {:.3}",
                            q(0.01), q(0.1), q(0.25), q(0.5), q(0.75), q(0.9), q(0.99)
                        );
                    }
                    println!(
                        "{flow:<9} {:<9} {:<10} {m:>10.3} {ratio:>7.3} {d:>7.3} {p:>9.4}  {}",
                        backend.name,
                        CLASSES[class],
                        if class == BASELINE {
                            "baseline"
                        } else if ok {
                            "ok"
                        } else {
                            "DISTINGUISHABLE"
                        }
                    );
                }
            }
        }
    });
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("DATABASE_URL") {
        // Leave the database as we found it.
        rt.block_on(async {
            use sqlx::Connection as _;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                let schema = format!("afiliado_enumeration_{}", std::process::id());
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut conn)
                    .await;
            }
        });
    }
    println!(
        "\n{}",
        if failures == 0 {
            "all comparisons within target".to_owned()
        } else {
            format!("{failures} comparison(s) outside target")
        }
    );
}
