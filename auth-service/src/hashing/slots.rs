//! The hashing slots: how many hashes run at once on the hashing threads, and the line behind
//! them, bounded in length and in time. Past either, a call is refused as overloaded at once
//! instead of queueing without end.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{error::AuthError, metrics};

/// How many hashes run at once, and how long the line behind them may get.
#[derive(Debug, Clone, Copy)]
pub struct HashingLimits {
    pub concurrency: usize,
    pub queue_limit: usize,
    pub queue_timeout: Duration,
}

pub(super) struct Slots {
    pub(super) permits: Arc<Semaphore>,
    limits: HashingLimits,
    /// Calls waiting for a permit now.
    waiting: Arc<AtomicUsize>,
    /// The queue's length and the hashes running, reported at each scrape.
    _observed: service_kit::metrics::Collecting,
}

impl Slots {
    pub(super) fn new(limits: HashingLimits) -> Self {
        let slots = limits.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(slots));
        let waiting = Arc::new(AtomicUsize::new(0));
        let observed = {
            let (permits, waiting) = (permits.clone(), waiting.clone());
            service_kit::metrics::on_scrape(move || {
                let running = slots.saturating_sub(permits.available_permits());
                metrics::hashing(waiting.load(Ordering::Relaxed), running);
            })
        };
        Self {
            permits,
            limits,
            waiting,
            _observed: observed,
        }
    }
}

impl Slots {
    /// A hashing slot: at once if one is free, else after a wait in a line of bounded length
    /// and time.
    pub(super) async fn permit(&self) -> Result<OwnedSemaphorePermit, AuthError> {
        let permits = Arc::clone(&self.permits);
        if let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
            return Ok(permit);
        }
        let limits = self.limits;
        let overloaded = AuthError::Overloaded {
            retry_after: limits.queue_timeout,
        };
        let _place = QueuePlace::take(&self.waiting, limits.queue_limit)
            .ok_or_else(|| overloaded_now(&limits))?;
        match tokio::time::timeout(limits.queue_timeout, permits.acquire_owned()).await {
            Ok(permit) => permit.map_err(AuthError::internal),
            Err(_) => {
                metrics::hashing_refused();
                Err(overloaded)
            }
        }
    }
}

fn overloaded_now(limits: &HashingLimits) -> AuthError {
    tracing::warn!(queue_limit = limits.queue_limit, "hashing queue full");
    metrics::hashing_refused();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Argon2Params, domain::Password, hashing::PasswordHasher};

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
        while hasher.inner.slots.permits.available_permits() > 0 {
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
        // The hash still runs on its hashing thread: the slot is not free for another at once.
        assert!(
            Arc::clone(&hasher.inner.slots.permits)
                .try_acquire_owned()
                .is_err(),
            "the permit stays with the running hash"
        );
        hasher.hash(&password).await.expect("served once it ends");
    }
}
