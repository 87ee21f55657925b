//! Password hashing with argon2id, off the async workers: every hash and verify runs on tokio's
//! blocking pool behind a semaphore, so logins never stall other calls and a burst of them
//! cannot take more memory than `hashing_concurrency` hashes at once.

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;
use tracing::Span;

use crate::{config::Argon2Params, domain::Password, error::AuthError};

#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    argon2: Argon2<'static>,
    permits: Semaphore,
    /// A real hash of a random password, verified against when the user does not exist, so
    /// that an unknown username costs the same time as a wrong password.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(params: Argon2Params, concurrency: usize) -> Result<Self, AuthError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(AuthError::internal)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = hash_with(&argon2, crate::domain::TokenKey::generate().expose())?;
        Ok(Self {
            inner: Arc::new(Inner {
                argon2,
                permits: Semaphore::new(concurrency.max(1)),
                dummy_hash,
            }),
        })
    }

    /// The PHC string of a new salted argon2id hash.
    pub async fn hash(&self, password: &Password) -> Result<String, AuthError> {
        let password = password.clone();
        self.run(move |inner| hash_with(&inner.argon2, password.expose()))
            .await
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown user) it verifies
    /// against the dummy hash, taking the same time, and answers false.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<String>,
    ) -> Result<bool, AuthError> {
        let password = password.clone();
        self.run(move |inner| {
            let known = stored.is_some();
            let phc = stored.as_deref().unwrap_or(&inner.dummy_hash);
            let parsed = PasswordHash::new(phc).map_err(AuthError::internal)?;
            let matches = inner
                .argon2
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok();
            Ok(known && matches)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(AuthError::internal)?;
        let inner = Arc::clone(&self.inner);
        let span = Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| work(&inner)))
            .await
            .map_err(AuthError::internal)?
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(AuthError::internal)
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
        PasswordHasher::new(params, 2).unwrap()
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
        assert!(hasher.verify(&password, Some(a.clone())).await.unwrap());
        let wrong = Password::parse("Password124").unwrap();
        assert!(!hasher.verify(&wrong, Some(a)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = cheap();
        let password = Password::parse("Password123").unwrap();
        assert!(!hasher.verify(&password, None).await.unwrap());
    }
}
