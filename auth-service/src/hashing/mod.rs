//! Password hashing with argon2id, off the async workers: every hash and verify runs on tokio's
//! blocking pool behind a semaphore, so logins never stall other calls and a burst of them
//! cannot take more memory than `hashing_concurrency` hashes at once. The wait for a slot is
//! bounded in length and in time; past either, the call is refused as overloaded at once
//! instead of queueing without end.
//!
//! The `password_hash` column holds our argon2id PHC string, an unusable marker (`!…`, as
//! Django writes for users who cannot log in with a password), or a hash imported from Django
//! ([`django`]). A successful login with anything but argon2id at today's `ARGON2_*`
//! parameters hands back a fresh hash to store, so imported and old hashes fade out.

pub mod django;
mod floor;

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordVerifier as _, Version,
    password_hash::{Output, ParamsString, SaltString, rand_core::OsRng},
};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;
use tracing::Span;

use crate::{config::Argon2Params, domain::Password, error::AuthError};

pub use django::{DjangoHash, HashFormatError};

/// Django's prefix for a password that never verifies (`set_unusable_password`).
const UNUSABLE_PREFIX: char = '!';

/// What a stored `password_hash` is.
#[derive(Debug)]
pub enum StoredHash<'a> {
    /// Our own argon2 PHC string.
    Native(PasswordHash<'a>),
    Django(DjangoHash),
    /// No password logs in (Django's `!…`, or an empty value).
    Unusable,
}

impl<'a> StoredHash<'a> {
    pub fn parse(stored: &'a str) -> Result<Self, HashFormatError> {
        if stored.is_empty() || stored.starts_with(UNUSABLE_PREFIX) {
            Ok(Self::Unusable)
        } else if stored.starts_with("$argon2") {
            PasswordHash::new(stored)
                .map(Self::Native)
                .map_err(|err| HashFormatError::new(format!("malformed argon2 hash: {err}")))
        } else {
            DjangoHash::parse(stored).map(Self::Django)
        }
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    Mismatch,
    /// The password is right; `rehashed` is a new hash to store in place of an imported one or
    /// one made with other parameters than today's.
    Match {
        rehashed: Option<String>,
    },
}

impl Verified {
    pub fn matches(&self) -> bool {
        matches!(self, Self::Match { .. })
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

/// How many hashes run at once, and how long the line behind them may get.
#[derive(Debug, Clone, Copy)]
pub struct HashingLimits {
    pub concurrency: usize,
    pub queue_limit: usize,
    pub queue_timeout: Duration,
}

struct Inner {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    limits: HashingLimits,
    /// Calls waiting for a permit now.
    waiting: AtomicUsize,
    memory: WorkingMemory,
    /// A real hash of a random password, verified against when the user does not exist (or
    /// has no usable password), so that these cost the same time as a wrong password.
    dummy_hash: String,
    /// What checking each kind of hash costs: the floor under a failed check.
    costs: floor::Costs,
}

impl PasswordHasher {
    pub fn new(params: Argon2Params, limits: HashingLimits) -> Result<Self, AuthError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(AuthError::internal)?;
        let memory = WorkingMemory {
            blocks: params.block_count(),
            free: Mutex::new(Vec::new()),
        };
        let mut inner = Inner {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            permits: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            limits,
            waiting: AtomicUsize::new(0),
            memory,
            dummy_hash: String::new(),
            costs: floor::Costs::default(),
        };
        // Made in memory of its own, which goes back at once: until its first login the
        // service keeps no working memory.
        inner.dummy_hash = WorkingMemory::unkept(&inner.memory, || {
            inner.hash_new(crate::domain::TokenKey::generate().expose())
        })?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The PHC string of a new salted argon2id hash.
    pub async fn hash(&self, password: &Password) -> Result<String, AuthError> {
        let password = password.clone();
        self.run(move |inner| inner.hash_new(password.expose()))
            .await
    }

    /// Checks `password` against `stored`; with no stored hash (unknown user) it verifies
    /// against the dummy hash and answers [`Verified::Mismatch`]. A mismatch answers no sooner
    /// than the costliest kind of hash takes to check ([`floor`]), whatever `stored` is.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<String>,
    ) -> Result<Verified, AuthError> {
        let password = password.clone();
        let kind = floor::kind_of(stored.as_deref().unwrap_or(&self.inner.dummy_hash));
        let (verified, took) = self
            .run(move |inner| {
                let started = std::time::Instant::now();
                let verified = inner.verify(password.expose(), stored.as_deref());
                verified.map(|verified| (verified, started.elapsed()))
            })
            .await?;
        self.inner.costs.record(kind, took);
        if !verified.matches() {
            let floor = self.inner.costs.floor();
            if took < floor {
                tokio::time::sleep(floor - took).await;
            }
        }
        Ok(verified)
    }

    /// Learns what checking each kind of hash among `stored` costs (and the dummy's), so that
    /// the first failed check of an imported account costs no more than any other. Kinds
    /// already known are skipped; each unknown one is checked once, with a wrong password.
    pub async fn learn_costs(&self, stored: Vec<String>) {
        let mut kinds: Vec<(String, Option<String>)> =
            vec![(floor::kind_of(&self.inner.dummy_hash), None::<String>)];
        for hash in stored {
            let kind = floor::kind_of(&hash);
            if !kinds.iter().any(|(known, _)| *known == kind) {
                kinds.push((kind, Some(hash)));
            }
        }
        let Ok(wrong) = Password::unchecked(crate::domain::TokenKey::generate().expose()) else {
            return;
        };
        for (kind, hash) in kinds {
            if self.inner.costs.knows(&kind) {
                continue;
            }
            if let Err(err) = self.verify(&wrong, hash).await {
                tracing::warn!(%err, "a password hash's cost could not be measured");
            }
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let permit = self.permit().await?;
        let inner = Arc::clone(&self.inner);
        let span = Span::current();
        // The permit moves into the closure: a caller that gives up does not free its slot
        // while its hash still runs.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            span.in_scope(|| work(&inner))
        })
        .await
        .map_err(AuthError::internal)?
    }
}

impl PasswordHasher {
    /// A hashing slot: at once if one is free, else after a wait in a line of bounded length
    /// and time.
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AuthError> {
        let permits = Arc::clone(&self.inner.permits);
        if let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
            return Ok(permit);
        }
        let limits = self.inner.limits;
        let overloaded = AuthError::Overloaded {
            retry_after: limits.queue_timeout,
        };
        let _place = QueuePlace::take(&self.inner.waiting, limits.queue_limit)
            .ok_or_else(|| overloaded_now(&limits))?;
        match tokio::time::timeout(limits.queue_timeout, permits.acquire_owned()).await {
            Ok(permit) => permit.map_err(AuthError::internal),
            Err(_) => Err(overloaded),
        }
    }
}

fn overloaded_now(limits: &HashingLimits) -> AuthError {
    tracing::warn!(queue_limit = limits.queue_limit, "hashing queue full");
    AuthError::Overloaded {
        retry_after: limits.queue_timeout,
    }
}

/// A place in the line for a hashing slot, given back when dropped (served or given up).
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    fn take(waiting: &'a AtomicUsize, limit: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now < limit).then_some(now + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Inner {
    fn verify(&self, password: &str, stored: Option<&str>) -> Result<Verified, AuthError> {
        let stored = match stored {
            Some(stored) => StoredHash::parse(stored).map_err(AuthError::internal)?,
            None => StoredHash::Unusable,
        };
        let (matches, current) = match &stored {
            StoredHash::Native(hash) => {
                let current = self.is_current(hash);
                (self.check_native(password, hash, current), current)
            }
            StoredHash::Django(hash) => (hash.verify(password), false),
            StoredHash::Unusable => {
                let dummy = PasswordHash::new(&self.dummy_hash).map_err(AuthError::internal)?;
                let _ = self.check_native(password, &dummy, true);
                (false, true)
            }
        };
        if !matches {
            return Ok(Verified::Mismatch);
        }
        let rehashed = if current {
            None
        } else {
            Some(self.hash_new(password)?)
        };
        Ok(Verified::Match { rehashed })
    }

    /// Whether `hash` is argon2id with exactly today's parameters.
    fn is_current(&self, hash: &PasswordHash<'_>) -> bool {
        let configured = self.argon2.params();
        let output_len = configured
            .output_len()
            .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        Algorithm::try_from(hash.algorithm) == Ok(Algorithm::Argon2id)
            && hash.version == Some(Version::V0x13.into())
            && Params::try_from(hash).is_ok_and(|params| {
                params.m_cost() == configured.m_cost()
                    && params.t_cost() == configured.t_cost()
                    && params.p_cost() == configured.p_cost()
            })
            && hash.hash.is_some_and(|output| output.len() == output_len)
    }

    /// The PHC string of a new salted argon2id hash at today's parameters, computed in a
    /// working memory kept from an earlier hash.
    fn hash_new(&self, password: &str) -> Result<String, AuthError> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt
            .as_salt()
            .decode_b64(&mut salt_bytes)
            .map_err(AuthError::internal)?;
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.memory
            .with(|blocks| {
                self.argon2.hash_password_into_with_memory(
                    password.as_bytes(),
                    raw_salt,
                    &mut output,
                    blocks,
                )
            })
            .map_err(AuthError::internal)?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(self.argon2.params()).map_err(AuthError::internal)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output).map_err(AuthError::internal)?),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` makes `hash`. A hash at today's parameters (`current`) is computed in
    /// the kept working memory; another one, as the argon2 crate does it.
    fn check_native(&self, password: &str, hash: &PasswordHash<'_>, current: bool) -> bool {
        let (true, Some(salt), Some(expected)) = (current, hash.salt, hash.hash) else {
            return self
                .argon2
                .verify_password(password.as_bytes(), hash)
                .is_ok();
        };
        let mut salt_bytes = [0u8; 64];
        let Ok(raw_salt) = salt.decode_b64(&mut salt_bytes) else {
            return false;
        };
        let mut output = vec![0u8; expected.len()];
        let computed = self.memory.with(|blocks| {
            self.argon2.hash_password_into_with_memory(
                password.as_bytes(),
                raw_salt,
                &mut output,
                blocks,
            )
        });
        computed.is_ok() && bool::from(output.ct_eq(expected.as_bytes()))
    }
}

/// Argon2's working memory (`ARGON2_MEMORY_KIB` for each hash), kept between hashes: at most
/// one buffer per hashing slot. Allocated afresh for every hash, it came from the allocator
/// each time: glibc kept what it got back in per-thread arenas, so auth grew to many times the
/// slots' worth (about 280 MiB in a login storm with 19 MiB hashes; BENCHMARKS.md), and any
/// allocator that gives the pages back pays their faults again on the next hash.
struct WorkingMemory {
    blocks: usize,
    free: Mutex<Vec<Vec<Block>>>,
}

impl WorkingMemory {
    /// Runs `work`, then gives back every buffer it left (memory needed once, at start-up).
    fn unkept<T>(memory: &Self, work: impl FnOnce() -> T) -> T {
        let result = work();
        memory
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        result
    }

    fn with<T>(&self, work: impl FnOnce(&mut [Block]) -> T) -> T {
        let kept = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut blocks = kept.unwrap_or_else(|| vec![Block::default(); self.blocks]);
        let result = work(&mut blocks);
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(blocks);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        let params = Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        PasswordHasher::new(params, limits(2)).unwrap()
    }

    fn limits(concurrency: usize) -> HashingLimits {
        HashingLimits {
            concurrency,
            queue_limit: 8,
            queue_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let hasher = cheap();
        let password = Password::parse("Password123").unwrap();
        let (a, b) = (
            hasher.hash(&password).await.unwrap(),
            hasher.hash(&password).await.unwrap(),
        );
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert_eq!(
            hasher.verify(&password, Some(a.clone())).await.unwrap(),
            Verified::Match { rehashed: None }
        );
        let wrong = Password::parse("Password124").unwrap();
        assert_eq!(
            hasher.verify(&wrong, Some(a)).await.unwrap(),
            Verified::Mismatch
        );
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::PasswordHasher as _;
        let hasher = cheap();
        let password = Password::parse("Password123").unwrap();
        let ours = hasher.hash(&password).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        // The argon2 crate's own verifier, with the same parameters, accepts ours...
        assert!(
            hasher
                .inner
                .argon2
                .verify_password(b"Password123", &parsed)
                .is_ok()
        );
        // ...and a hash the crate makes verifies here, in the kept working memory.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = hasher
            .inner
            .argon2
            .hash_password(b"Password123", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            hasher.verify(&password, Some(theirs)).await.unwrap(),
            Verified::Match { rehashed: None }
        );
    }

    #[tokio::test]
    async fn the_working_memory_is_kept_not_grown() {
        let hasher = cheap();
        let password = Password::parse("Password123").unwrap();
        for _ in 0..5 {
            let hash = hasher.hash(&password).await.unwrap();
            hasher.verify(&password, Some(hash)).await.unwrap();
        }
        let kept = hasher.inner.memory.free.lock().unwrap().len();
        assert!(kept <= 2, "at most one buffer per slot: {kept}");
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = cheap();
        let password = Password::parse("Password123").unwrap();
        assert_eq!(
            hasher.verify(&password, None).await.unwrap(),
            Verified::Mismatch
        );
    }

    #[tokio::test]
    async fn other_parameters_and_django_hashes_are_rehashed_on_a_match() {
        let password = Password::parse("Password123").unwrap();
        let old = cheap().hash(&password).await.unwrap();
        let stronger = PasswordHasher::new(
            Argon2Params {
                memory_kib: 128,
                iterations: 2,
                parallelism: 1,
            },
            limits(1),
        )
        .unwrap();
        let Verified::Match {
            rehashed: Some(new),
        } = stronger.verify(&password, Some(old)).await.unwrap()
        else {
            panic!("a match with a new hash");
        };
        assert!(new.starts_with("$argon2id$v=19$m=128,t=2,p=1$"), "{new}");
        assert_eq!(
            stronger.verify(&password, Some(new)).await.unwrap(),
            Verified::Match { rehashed: None }
        );

        for vector in django::vectors().into_iter().filter(|v| !v.slow) {
            let right = Password::unchecked(&vector.password).unwrap();
            let verdict = stronger
                .verify(&right, Some(vector.encoded.clone()))
                .await
                .unwrap();
            assert!(
                matches!(verdict, Verified::Match { rehashed: Some(ref h) } if h.starts_with("$argon2id$")),
                "{}: {verdict:?}",
                vector.encoded
            );
            let wrong = Password::unchecked(&format!("{}!", vector.password)).unwrap();
            assert_eq!(
                stronger.verify(&wrong, Some(vector.encoded)).await.unwrap(),
                Verified::Mismatch
            );
        }
    }

    /// Slow hashes (64 MiB, 4 passes: a tenth of a second or more) hold the only slot while
    /// others line up.
    fn one_slow_slot(queue_limit: usize, queue_timeout: Duration) -> PasswordHasher {
        let params = Argon2Params {
            memory_kib: 65536,
            iterations: 4,
            parallelism: 1,
        };
        let limits = HashingLimits {
            concurrency: 1,
            queue_limit,
            queue_timeout,
        };
        PasswordHasher::new(params, limits).unwrap()
    }

    /// Waits until a hash holds the only slot.
    async fn until_busy(hasher: &PasswordHasher) {
        while hasher.inner.permits.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_queue_limit_calls_are_refused_at_once() {
        let hasher = one_slow_slot(2, Duration::from_secs(60));
        let password = Password::parse("Password123").unwrap();
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (hasher, password) = (hasher.clone(), password.clone());
                tokio::spawn(async move { hasher.hash(&password).await })
            })
            .collect();
        let mut overloaded = 0;
        let mut hashed = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok(_) => hashed += 1,
                Err(AuthError::Overloaded { .. }) => overloaded += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
        // One runs, two wait; the other five are turned away without waiting.
        assert_eq!((hashed, overloaded), (3, 5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_past_the_deadline_is_refused_and_frees_its_place() {
        let hasher = one_slow_slot(1, Duration::from_millis(1));
        let password = Password::parse("Password123").unwrap();
        let busy = {
            let (hasher, password) = (hasher.clone(), password.clone());
            tokio::spawn(async move { hasher.hash(&password).await })
        };
        until_busy(&hasher).await;
        for _ in 0..3 {
            let refused = hasher.hash(&password).await;
            assert!(
                matches!(refused, Err(AuthError::Overloaded { .. })),
                "{refused:?}"
            );
        }
        busy.await.unwrap().unwrap();
        hasher
            .hash(&password)
            .await
            .expect("the slot is free again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_gives_up_keeps_its_slot_until_its_hash_ends() {
        let hasher = one_slow_slot(4, Duration::from_secs(60));
        let password = Password::parse("Password123").unwrap();
        let abandoned = {
            let (hasher, password) = (hasher.clone(), password.clone());
            tokio::spawn(async move { hasher.hash(&password).await })
        };
        until_busy(&hasher).await;
        abandoned.abort();
        // The hash still runs on the blocking pool: the slot is not free for another at once.
        assert!(
            Arc::clone(&hasher.inner.permits)
                .try_acquire_owned()
                .is_err(),
            "the permit stays with the running hash"
        );
        hasher.hash(&password).await.expect("served once it ends");
    }

    #[tokio::test]
    async fn an_unusable_password_never_verifies() {
        let hasher = cheap();
        for stored in ["!", "!Qh4aVWpbqbm0vqS8Bba6e7bt2yAFFWdtxrDcIgyR", ""] {
            let password = Password::unchecked(stored.trim_start_matches('!'))
                .unwrap_or_else(|_| Password::unchecked("x").unwrap());
            assert_eq!(
                hasher
                    .verify(&password, Some(stored.to_owned()))
                    .await
                    .unwrap(),
                Verified::Mismatch,
                "{stored:?}"
            );
        }
    }
}
