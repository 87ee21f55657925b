//! Password hashing with argon2id, off the async workers: every hash and verify runs on the
//! hashing threads ([`pool`], at the lowest priority) in one of a bounded number of slots
//! ([`slots`]), so logins never stall other calls and a burst of them cannot take more memory than `hashing_concurrency` hashes at once
//! (each in a working memory kept between hashes, [`memory`]). A failed check takes as long as
//! the costliest kind of stored hash ([`floor`]).
//!
//! The `password_hash` column holds our argon2id PHC string, an unusable marker (`!…`, as
//! Django writes for users who cannot log in with a password), or a hash imported from Django
//! ([`django`]). A successful login with anything but argon2id at today's `ARGON2_*`
//! parameters hands back a fresh hash to store, so imported and old hashes fade out.

pub mod django;
mod floor;
mod memory;
mod pool;
mod slots;

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordVerifier as _, Version,
    password_hash::{Output, ParamsString, SaltString, rand_core::OsRng},
};
use subtle::ConstantTimeEq as _;
use tracing::Span;

use crate::{config::Argon2Params, domain::HashedPassword, domain::Password, error::AuthError};
use memory::WorkingMemory;
use pool::Pool;
use slots::Slots;

pub use django::{DjangoHash, HashFormatError};
pub use slots::HashingLimits;

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
        rehashed: Option<HashedPassword>,
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

struct Inner {
    argon2: Argon2<'static>,
    slots: Slots,
    /// One thread for each slot.
    pool: Pool,
    memory: WorkingMemory,
    /// A real hash of a random password, verified against when the user does not exist (or
    /// has no usable password), so that these cost the same time as a wrong password.
    dummy_hash: HashedPassword,
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
        let memory = WorkingMemory::new(params.block_count());
        let mut inner = Inner {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            slots: Slots::new(limits),
            pool: Pool::new(limits.concurrency)?,
            memory,
            dummy_hash: HashedPassword::new(String::new()),
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
    pub async fn hash(&self, password: &Password) -> Result<HashedPassword, AuthError> {
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
        stored: Option<HashedPassword>,
    ) -> Result<Verified, AuthError> {
        let password = password.clone();
        let kind = floor::kind_of(stored.as_ref().unwrap_or(&self.inner.dummy_hash).expose());
        let (verified, took) = self
            .run(move |inner| {
                let started = std::time::Instant::now();
                let verified = inner.verify(
                    password.expose(),
                    stored.as_ref().map(HashedPassword::expose),
                );
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

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let permit = self.inner.slots.permit().await?;
        let inner = Arc::clone(&self.inner);
        let span = Span::current();
        // The permit moves into the closure: a caller that gives up does not free its slot
        // while its hash still runs.
        self.inner
            .pool
            .run(move || {
                let _permit = permit;
                span.in_scope(|| work(&inner))
            })
            .await
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
                let dummy =
                    PasswordHash::new(self.dummy_hash.expose()).map_err(AuthError::internal)?;
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
    fn hash_new(&self, password: &str) -> Result<HashedPassword, AuthError> {
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
        Ok(HashedPassword::new(hash.to_string()))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        assert!(a.expose().starts_with("$argon2id$"));
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
        let parsed = PasswordHash::new(ours.expose()).unwrap();
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
        let theirs = hasher.inner.argon2.hash_password(b"Password123", &salt);
        let theirs = HashedPassword::new(theirs.unwrap().to_string());
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
        let kept = hasher.inner.memory.kept();
        assert!(kept <= 2, "at most one buffer per slot: {kept}");
    }

    #[tokio::test]
    async fn learning_the_costs_at_start_up_keeps_no_working_memory() {
        let hasher = cheap();
        // The dummy's kind, checked in argon2's working memory.
        hasher.learn_costs(Vec::new()).await;
        assert!(
            hasher.inner.costs.floor() > Duration::ZERO,
            "a cost was learnt"
        );
        assert_eq!(hasher.inner.memory.kept(), 0, "an idle server holds none");
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
        assert!(new.expose().starts_with("$argon2id$v=19$m=128,t=2,p=1$"));
        assert_eq!(
            stronger.verify(&password, Some(new)).await.unwrap(),
            Verified::Match { rehashed: None }
        );

        for vector in django::vectors().into_iter().filter(|v| !v.slow) {
            let right = Password::unchecked(&vector.password).unwrap();
            let stored = HashedPassword::new(vector.encoded.clone());
            let verdict = stronger.verify(&right, Some(stored.clone())).await.unwrap();
            assert!(
                matches!(verdict, Verified::Match { rehashed: Some(ref h) } if h.expose().starts_with("$argon2id$")),
                "{}: {verdict:?}",
                vector.encoded
            );
            let wrong = Password::unchecked(&format!("{}!", vector.password)).unwrap();
            assert_eq!(
                stronger.verify(&wrong, Some(stored)).await.unwrap(),
                Verified::Mismatch
            );
        }
    }

    #[tokio::test]
    async fn an_unusable_password_never_verifies() {
        let hasher = cheap();
        for stored in ["!", "!Qh4aVWpbqbm0vqS8Bba6e7bt2yAFFWdtxrDcIgyR", ""] {
            let password = Password::unchecked(stored.trim_start_matches('!'))
                .unwrap_or_else(|_| Password::unchecked("x").unwrap());
            assert_eq!(
                hasher
                    .verify(&password, Some(HashedPassword::new(stored.to_owned())))
                    .await
                    .unwrap(),
                Verified::Mismatch,
                "{stored:?}"
            );
        }
    }
}
