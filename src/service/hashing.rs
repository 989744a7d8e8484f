//! Password hashing off the async executor, with bounded capacity.
//!
//! Argon2id at the OWASP parameters takes ~19 MiB and tens of milliseconds per call. The
//! [`HashPool`] runs every hash and verification on tokio's blocking threads, at most
//! `workers` at a time, with at most `queue` more callers waiting; beyond that a call fails
//! fast with [`Busy`] instead of queueing another 19 MiB allocation. Dummy verifications for
//! unknown IDs go through the same pool, so they cost and queue exactly like real ones.

use std::fmt;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::crypto::{
    CryptoError, DummyHash, HashParams, PasswordHash, hash_password, needs_rehash, verify_password,
};

/// The hashing port: argon2id in production, a counting or failing one in tests.
///
/// Methods are synchronous and slow; the service calls them only through a [`HashPool`].
pub trait PasswordHasher: Send + Sync + fmt::Debug {
    /// Hashes a new password with the configured parameters.
    fn hash(&self, password: &[u8]) -> Result<PasswordHash, CryptoError>;
    /// Verifies against a stored hash (with the parameters stored in it).
    fn verify(&self, password: &[u8], hash: &PasswordHash) -> Result<bool, CryptoError>;
    /// Costs one verification and returns `false`: for unknown IDs and accounts without a
    /// password, so every login path performs exactly one verification.
    fn verify_dummy(&self, password: &[u8]) -> bool;
    /// Whether a stored hash should be replaced on the next successful login.
    fn needs_rehash(&self, hash: &PasswordHash) -> bool;
    /// The parameters [`hash`](Self::hash) makes new hashes with (and the dummy hash
    /// costs). [`ServiceBuilder::build`](crate::service::ServiceBuilder::build) refuses a
    /// hasher whose parameters differ from the policy's `hashing`: the core accepts only
    /// new hashes made with the policy's parameters.
    fn params(&self) -> HashParams;
}

/// Argon2id with the policy's parameters.
#[derive(Debug)]
pub struct Argon2Hasher {
    params: HashParams,
    dummy: DummyHash,
}

impl Argon2Hasher {
    /// A hasher for `params`; builds the dummy hash once (one hashing operation).
    pub fn new(params: HashParams) -> Result<Self, CryptoError> {
        #[allow(clippy::disallowed_methods)] // adapter: the OS-seeded thread RNG is its job
        let mut rng = rand::rng();
        let dummy = DummyHash::new(&params, &mut rng)?;
        Ok(Self { params, dummy })
    }
}

impl PasswordHasher for Argon2Hasher {
    fn hash(&self, password: &[u8]) -> Result<PasswordHash, CryptoError> {
        #[allow(clippy::disallowed_methods)] // adapter: salts come from the OS-seeded RNG
        let mut rng = rand::rng();
        hash_password(password, &self.params, &mut rng)
    }

    fn verify(&self, password: &[u8], hash: &PasswordHash) -> Result<bool, CryptoError> {
        verify_password(password, hash)
    }

    fn verify_dummy(&self, password: &[u8]) -> bool {
        self.dummy.verify(password)
    }

    fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        needs_rehash(hash, &self.params)
    }

    fn params(&self) -> HashParams {
        self.params
    }
}

/// A [`PasswordHasher`] that counts its calls, for tests that assert how much hashing a flow
/// does (for example: exactly one verification per login, whatever the ID).
#[cfg(feature = "test-util")]
#[derive(Debug)]
pub struct CountingHasher<H = Argon2Hasher> {
    inner: H,
    hash: std::sync::atomic::AtomicUsize,
    verify: std::sync::atomic::AtomicUsize,
    dummy: std::sync::atomic::AtomicUsize,
}

#[cfg(feature = "test-util")]
impl<H: PasswordHasher> CountingHasher<H> {
    /// Counts the calls made to `inner`.
    pub fn new(inner: H) -> Self {
        Self {
            inner,
            hash: Default::default(),
            verify: Default::default(),
            dummy: Default::default(),
        }
    }

    /// `(hash, verify, verify_dummy)` calls since the last `take`, and resets them.
    pub fn take(&self) -> (usize, usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.hash.swap(0, SeqCst),
            self.verify.swap(0, SeqCst),
            self.dummy.swap(0, SeqCst),
        )
    }
}

#[cfg(feature = "test-util")]
impl<H: PasswordHasher> PasswordHasher for CountingHasher<H> {
    fn hash(&self, password: &[u8]) -> Result<PasswordHash, CryptoError> {
        self.hash.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.hash(password)
    }
    fn verify(&self, password: &[u8], hash: &PasswordHash) -> Result<bool, CryptoError> {
        self.verify
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.verify(password, hash)
    }
    fn verify_dummy(&self, password: &[u8]) -> bool {
        self.dummy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.verify_dummy(password)
    }
    fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        self.inner.needs_rehash(hash)
    }
    fn params(&self) -> HashParams {
        self.inner.params()
    }
}

/// The pool is full: the caller should answer "try again later" (HTTP 503).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("hashing capacity exhausted; try again later")]
pub struct Busy;

/// Bounded hashing capacity shared by every request of a service.
#[derive(Clone, Debug)]
pub struct HashPool {
    workers: Arc<Semaphore>,
    admission: Arc<Semaphore>,
}

/// Why a pooled job did not produce its value.
#[derive(Debug)]
pub(crate) enum PoolError {
    Busy,
    /// The blocking task panicked or the runtime is shutting down.
    Lost,
}

impl HashPool {
    /// `workers` concurrent hashes (about one per core), `queue` more callers waiting.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            workers: Arc::new(Semaphore::new(workers)),
            admission: Arc::new(Semaphore::new(workers.saturating_add(queue))),
        }
    }

    /// One worker per available core, and a queue of 64 per worker.
    pub fn per_core() -> Self {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(n, n.saturating_mul(64))
    }

    pub(crate) async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let admitted = self
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| PoolError::Busy)?;
        let worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Lost)?;
        // The permits move into the job: a blocking task cannot be cancelled, so they must
        // stay taken until argon2 has finished even if the caller gave up (client gone).
        tokio::task::spawn_blocking(move || {
            let _held = (admitted, worker);
            job()
        })
        .await
        .map_err(|_| PoolError::Lost)
    }
}

impl Default for HashPool {
    fn default() -> Self {
        Self::per_core()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_fails_fast_with_busy_and_drains_afterwards() {
        // One worker, one waiting slot.
        let pool = HashPool::new(1, 1);
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let job = |gate: Arc<Mutex<mpsc::Receiver<()>>>, value: u8| {
            move || {
                let _ = gate.lock().map(|g| g.recv());
                value
            }
        };
        let running = tokio::spawn({
            let pool = pool.clone();
            let g = gate.clone();
            async move { pool.run(job(g, 1)).await }
        });
        let waiting = tokio::spawn({
            let pool = pool.clone();
            let g = gate.clone();
            async move { pool.run(job(g, 2)).await }
        });
        while pool.admission.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // Capacity is taken: the next caller is refused at once, nothing is queued.
        assert!(matches!(pool.run(|| 3u8).await, Err(PoolError::Busy)));
        release.send(()).unwrap();
        release.send(()).unwrap();
        let mut got = vec![
            running.await.unwrap().unwrap(),
            waiting.await.unwrap().unwrap(),
        ];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        // Capacity is back.
        assert_eq!(pool.run(|| 4u8).await.unwrap(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_call_keeps_its_capacity_until_the_hash_finishes() {
        let pool = HashPool::new(1, 0);
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let caller = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    let _ = gate.lock().map(|g| g.recv());
                    1u8
                })
                .await
            }
        });
        while pool.admission.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // The client went away, but argon2 cannot be cancelled: the capacity stays taken.
        caller.abort();
        let _ = caller.await;
        assert!(matches!(pool.run(|| 2u8).await, Err(PoolError::Busy)));
        release.send(()).unwrap();
        for _ in 0..1000 {
            if pool.admission.available_permits() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(pool.run(|| 3u8).await.unwrap(), 3);
    }
}
