//! Per-source throttling (password spraying): one source trying one password on each of
//! 1,000 cédulas is stopped at `policy.sources.threshold` failures, while another source is
//! unaffected; the count is shared by every instance on one store and ends with its window.
#![cfg(all(feature = "memory", feature = "sqlite"))]
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use afiliado::crypto::{DigestKey, HashParams};
use afiliado::memory::{MemoryDirectory, MemoryStore};
use afiliado::ports::{AccountStore, ManualClock, SourceThrottle};
use afiliado::seal::SealKey;
use afiliado::service::{AccountService, LoginOutcome, ServiceError};
use afiliado::sqlite::SqliteStore;
use afiliado::{Password, Policy};
use rand::SeedableRng;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// 08:00 Ecuador = 13:00 UTC: the start of a 15-minute window.
const T0: OffsetDateTime = datetime!(2026-11-22 08:00 -5);

/// A valid cédula from a counter (province 01–24, third digit 0–5, correct check digit).
fn cedula(n: u64) -> String {
    let text = format!(
        "{:02}{}{:06}",
        1 + n % 24,
        (n / 24) % 6,
        (n / 144) % 1_000_000
    );
    let mut nine = [0u8; 9];
    for (d, c) in nine.iter_mut().zip(text.bytes()) {
        *d = c - b'0';
    }
    format!("{text}{}", afiliado::identity::check_digit(&nine))
}

fn service<S>(store: Arc<S>, clock: Arc<ManualClock>, seed: u64) -> AccountService
where
    S: AccountStore + SourceThrottle + 'static,
{
    let mut policy = Policy::isspol();
    policy.hashing = HashParams::danger_insecure_for_tests();
    // The same keys on every instance, as a real deployment has.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    AccountService::builder(
        policy,
        DigestKey::generate(&mut rng),
        SealKey::generate(&mut rng),
    )
    .store(store.clone())
    .throttle(store)
    .directory(Arc::new(MemoryDirectory::new()))
    .clock(clock)
    .response_floor(std::time::Duration::ZERO)
    .build()
    .unwrap()
}

/// Sprays `n` cédulas from `svc`; returns how many attempts were answered before throttling
/// and the `retry_after` it was told.
async fn spray(svc: &AccountService, from: u64, n: u64) -> (u64, Option<OffsetDateTime>) {
    for i in 0..n {
        match svc
            .login(&cedula(from + i), Password::new("Ecuador2026!"))
            .await
        {
            Ok(LoginOutcome::Failed) => {}
            Err(ServiceError::Throttled { retry_after }) => return (i, Some(retry_after)),
            other => panic!("attempt {i}: {other:?}"),
        }
    }
    (n, None)
}

async fn spraying_is_stopped<S>(a: Arc<S>, b: Arc<S>)
where
    S: AccountStore + SourceThrottle + 'static,
{
    let clock = Arc::new(ManualClock::new(T0));
    // Two instances on one store.
    let one = service(a, clock.clone(), 7);
    let two = service(b, clock.clone(), 7);
    let threshold = u64::from(one.policy().sources.threshold);

    let attacker = one.for_source("203.0.113.7");
    let (answered, retry) = spray(&attacker, 0, 1_000).await;
    assert_eq!(answered, threshold, "stopped at the threshold");
    let window_end = T0 + Duration::minutes(15);
    assert_eq!(retry, Some(window_end));
    // The other instance knows it too.
    let (answered, _) = spray(&two.for_source("203.0.113.7"), 5_000, 10).await;
    assert_eq!(answered, 0, "shared by every instance on the store");
    // Another source is unaffected.
    let (answered, retry) = spray(&two.for_source("198.51.100.20"), 10_000, 20).await;
    assert_eq!((answered, retry), (20, None));
    // Calls without a source are not counted.
    let (answered, _) = spray(&one, 20_000, 60).await;
    assert_eq!(answered, 60);
    // The next window starts afresh.
    clock.set(window_end);
    let (answered, _) = spray(&attacker, 30_000, 10).await;
    assert_eq!(answered, 10);
}

#[tokio::test]
async fn one_source_spraying_1000_cedulas_is_stopped_on_memory() {
    let store = Arc::new(MemoryStore::new());
    spraying_is_stopped(store.clone(), store).await;
}

#[tokio::test]
async fn one_source_spraying_1000_cedulas_is_stopped_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("throttle.db").display());
    let a = SqliteStore::open(&url).await.unwrap();
    a.migrate().await.unwrap();
    let b = SqliteStore::open(&url).await.unwrap();
    spraying_is_stopped(Arc::new(a), Arc::new(b)).await;
}
