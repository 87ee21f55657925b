//! The floor under a failed password check, so that a wrong password costs the same whatever
//! hash the account has. An imported Django PBKDF2 hash takes several times as long to check as
//! our argon2id (an outside review timed 0.14–0.20 s against 0.02–0.04 s on the release build),
//! so without it the time of a wrong password told which accounts came from Django. Each kind of hash (its algorithm and work factors,
//! never its salt) has a cost: the shortest check of that kind seen, which load can only
//! lengthen. A failed check answers no sooner than the costliest kind's cost after it began.
//! Successful checks are not held: only the password's owner sees their time.
//!
//! The kinds stored are measured at start from a sample of the table, so the first wrong
//! password of an imported account does not stand out either; a kind imported later is learnt
//! by its first check.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use crate::domain::{HashedPassword, Password, TokenKey};

/// How many kinds are remembered; a table holds a handful (one per Django version's defaults).
const MAX_KINDS: usize = 64;

/// The cost of each kind of hash checked so far.
#[derive(Debug, Default)]
pub(super) struct Costs {
    shortest: Mutex<HashMap<String, Duration>>,
}

impl Costs {
    /// A check of `kind` took `took` (on the hashing pool, without its wait for a slot).
    pub(super) fn record(&self, kind: String, took: Duration) {
        let mut shortest = self.shortest.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = shortest.get_mut(&kind) {
            *known = (*known).min(took);
        } else if shortest.len() < MAX_KINDS {
            shortest.insert(kind, took);
        }
    }

    /// How long a failed check takes at least: the cost of the costliest kind.
    pub(super) fn floor(&self) -> Duration {
        let shortest = self.shortest.lock().unwrap_or_else(PoisonError::into_inner);
        shortest.values().copied().max().unwrap_or_default()
    }

    pub(super) fn knows(&self, kind: &str) -> bool {
        let shortest = self.shortest.lock().unwrap_or_else(PoisonError::into_inner);
        shortest.contains_key(kind)
    }
}

/// The kind of a stored hash: the hash with its salt and output left off (its algorithm and
/// work factors), e.g. `pbkdf2_sha256$870000`, `$argon2id$v=19$m=19456,t=2,p=1`,
/// `bcrypt_sha256$$2b$12`.
pub(super) fn kind_of(stored: &str) -> String {
    let fields: Vec<&str> = stored.split('$').collect();
    // bcrypt's last field is its salt and output together (22 + 31 characters).
    let kept = match fields.last() {
        Some(last) if last.len() == 53 && stored.starts_with("bcrypt") => fields.len() - 1,
        _ => fields.len().saturating_sub(2),
    };
    fields[..kept].join("$")
}

impl super::PasswordHasher {
    /// Learns what checking each kind of hash among `stored` costs (and the dummy's), so that
    /// the first failed check of an imported account costs no more than any other. Kinds
    /// already known are skipped; each unknown one is checked once, with a wrong password.
    pub async fn learn_costs(&self, stored: Vec<String>) {
        let mut kinds: Vec<(String, Option<String>)> =
            vec![(kind_of(self.inner.dummy_hash.expose()), None::<String>)];
        for hash in stored {
            let kind = kind_of(&hash);
            if !kinds.iter().any(|(known, _)| *known == kind) {
                kinds.push((kind, Some(hash)));
            }
        }
        let Ok(wrong) = Password::unchecked(TokenKey::generate().expose()) else {
            return;
        };
        for (kind, hash) in kinds {
            if self.inner.costs.knows(&kind) {
                continue;
            }
            if let Err(err) = self.verify(&wrong, hash.map(HashedPassword::new)).await {
                tracing::warn!(%err, "a password hash's cost could not be measured");
            }
        }
        self.inner.memory.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_the_algorithm_and_work_factors_without_salt_or_output() {
        let cases = [
            (
                "pbkdf2_sha256$870000$c2FsdA$aGFzaA==",
                "pbkdf2_sha256$870000",
            ),
            (
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
                "$argon2id$v=19$m=19456,t=2,p=1",
            ),
            (
                "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA",
                "argon2$argon2id$v=19$m=102400,t=2,p=8",
            ),
            (
                "bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
                "bcrypt_sha256$$2b$12",
            ),
        ];
        for (stored, kind) in cases {
            assert_eq!(kind_of(stored), kind, "{stored}");
        }
    }

    #[test]
    fn the_floor_is_the_costliest_kinds_shortest_check() {
        let costs = Costs::default();
        assert_eq!(costs.floor(), Duration::ZERO);
        costs.record("argon2".into(), Duration::from_millis(30));
        costs.record("pbkdf2".into(), Duration::from_millis(400));
        costs.record("pbkdf2".into(), Duration::from_millis(150));
        costs.record("pbkdf2".into(), Duration::from_millis(900));
        assert_eq!(costs.floor(), Duration::from_millis(150));
        assert!(costs.knows("argon2") && !costs.knows("bcrypt"));
    }
}
