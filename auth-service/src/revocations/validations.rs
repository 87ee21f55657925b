//! This replica's own cache of the credentials it validated, so that checking a cached key
//! costs no database read. It is kept exact as every holder's cache is: the hub evicts from it
//! as it announces each revocation, before any holder can acknowledge; it serves only while the
//! hub may grant leases (on PostgreSQL: while the feed is heard); and it forgets everything when
//! the feed may have lost announcements.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use super::Revocation;
use crate::{
    clock::UnixMicros,
    domain::{CredentialKind, Principal, TokenDigest},
};

/// Past this many entries the cache starts again empty: a bound on memory with no bookkeeping
/// per hit (a cached verdict is a few hundred bytes).
const MAX_ENTRIES: usize = 10_000;

/// Taken before a verdict is read from the database, so one read across a revocation is not
/// remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

pub(super) struct Validations {
    /// Off with a zero lease: nothing is announced to keep it exact.
    enabled: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<TokenDigest, Principal>,
    /// Bumped by every revocation.
    epoch: u64,
}

impl Validations {
    pub(super) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a single map operation or assignment: a poisoned lock holds
        // consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached principal of `digest`, if it was validated as `kind` and has not expired by
    /// `now` (an expired key takes the database path, which deletes it).
    pub(super) fn get(
        &self,
        digest: &TokenDigest,
        kind: CredentialKind,
        now: UnixMicros,
    ) -> Option<Principal> {
        let state = self.state();
        let principal = state.entries.get(digest)?;
        (principal.kind == kind && now < principal.expires_at).then(|| principal.clone())
    }

    pub(super) fn ticket(&self) -> Ticket {
        Ticket(self.state().epoch)
    }

    /// Keeps `principal` unless a revocation came since `ticket`.
    pub(super) fn remember(&self, ticket: Ticket, principal: &Principal) {
        if !self.enabled {
            return;
        }
        let mut state = self.state();
        if state.epoch != ticket.0 {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        state
            .entries
            .insert(principal.digest.clone(), principal.clone());
    }

    pub(super) fn forget(&self, revocation: &Revocation) {
        let mut state = self.state();
        state.epoch += 1;
        match revocation {
            Revocation::Credentials(digests) => {
                for digest in digests {
                    state.entries.remove(digest);
                }
            }
            Revocation::User(id) => state
                .entries
                .retain(|_, principal| principal.user.id != *id),
        }
    }

    pub(super) fn forget_all(&self) {
        let mut state = self.state();
        state.epoch += 1;
        state.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::User;

    fn principal(digest: &str, user_id: i64, expires_at: i64) -> Principal {
        Principal {
            user: User::plain(user_id),
            kind: CredentialKind::Token,
            digest: TokenDigest(digest.to_owned()),
            family: digest.to_owned(),
            expires_at: UnixMicros(expires_at),
            credentials_version: 0,
        }
    }

    fn holds(cache: &Validations, digest: &str) -> bool {
        cache
            .get(
                &TokenDigest(digest.to_owned()),
                CredentialKind::Token,
                UnixMicros(0),
            )
            .is_some()
    }

    #[test]
    fn serves_what_it_was_told_until_a_revocation_names_it() {
        let cache = Validations::new(true);
        let now = UnixMicros(100);
        for (digest, user) in [("a", 1), ("b", 1), ("c", 2)] {
            let ticket = cache.ticket();
            cache.remember(ticket, &principal(digest, user, 1000));
        }
        let a = TokenDigest("a".to_owned());
        assert!(cache.get(&a, CredentialKind::Token, now).is_some());
        assert!(
            cache.get(&a, CredentialKind::Session, now).is_none(),
            "a token is no session"
        );
        assert!(
            cache
                .get(&a, CredentialKind::Token, UnixMicros(1000))
                .is_none(),
            "expired"
        );

        cache.forget(&Revocation::Credentials(vec![a.clone()]));
        assert!(cache.get(&a, CredentialKind::Token, now).is_none());
        cache.forget(&Revocation::User(1));
        assert!(
            cache
                .get(&TokenDigest("b".to_owned()), CredentialKind::Token, now)
                .is_none()
        );
        assert!(
            cache
                .get(&TokenDigest("c".to_owned()), CredentialKind::Token, now)
                .is_some()
        );
        cache.forget_all();
        assert!(
            cache
                .get(&TokenDigest("c".to_owned()), CredentialKind::Token, now)
                .is_none()
        );
    }

    #[test]
    fn a_read_across_a_revocation_is_not_remembered() {
        let cache = Validations::new(true);
        let ticket = cache.ticket();
        cache.forget(&Revocation::User(7));
        cache.remember(ticket, &principal("a", 1, 1000));
        assert!(!holds(&cache, "a"));
    }

    #[test]
    fn off_with_a_zero_lease() {
        let cache = Validations::new(false);
        let ticket = cache.ticket();
        cache.remember(ticket, &principal("a", 1, 1000));
        assert!(!holds(&cache, "a"));
    }
}
