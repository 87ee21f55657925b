//! The hashing threads: a pool of `hashing_concurrency` threads of their own, each at the
//! lowest scheduling priority (nice 19), so that a login storm can use every core while the
//! async runtime's threads, at normal priority, always run first when they have work: a
//! validation never waits behind a hash for a core. (On tokio's blocking pool, at normal
//! priority, the hashes had to be held to the CPUs less one to keep a core for the runtime.)

use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::oneshot;

use crate::error::AuthError;

/// The nice value of the hashing threads: the lowest priority a thread can have under the
/// normal scheduler. (`SCHED_IDLE` would let other busy processes starve logins entirely.)
const HASHING_NICE: i32 = 19;

pub(super) struct Pool {
    threads: rayon::ThreadPool,
}

impl Pool {
    /// `threads` hashing threads, started at once and at the lowest priority.
    pub(super) fn new(threads: usize) -> Result<Self, AuthError> {
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|index| format!("hashing-{index}"))
            .start_handler(|_| lower_this_threads_priority())
            .build()
            .map_err(AuthError::internal)?;
        Ok(Self { threads })
    }

    /// Runs `work` on a hashing thread and waits for its result without blocking the caller's
    /// thread. A panic in `work` is an internal error of this call, as on tokio's blocking pool.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let (answer, answered) = oneshot::channel();
        self.threads.spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(work))
                .unwrap_or_else(|_| Err(AuthError::internal("a hashing thread panicked")));
            // The caller may have gone; the work is done either way.
            let _ = answer.send(result);
        });
        answered.await.map_err(AuthError::internal)?
    }
}

/// Lowers the calling thread's priority (on Linux, nice is a thread's own). Where the system
/// refuses, the thread runs at normal priority, as hashes did before, and says so.
fn lower_this_threads_priority() {
    let this_thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(this_thread), HASHING_NICE) {
        tracing::warn!(%error, "hashing thread kept normal priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_run_on_threads_of_the_lowest_priority() {
        let pool = Pool::new(2).unwrap();
        let (name, nice) = pool
            .run(|| {
                let name = std::thread::current().name().map(str::to_owned);
                let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid()))
                    .map_err(AuthError::internal)?;
                Ok((name, nice))
            })
            .await
            .unwrap();
        assert!(name.is_some_and(|name| name.starts_with("hashing-")));
        assert_eq!(nice, HASHING_NICE);
    }

    #[tokio::test]
    async fn a_panicking_hash_is_an_error_of_its_call_only() {
        let pool = Pool::new(1).unwrap();
        let panicked = pool.run::<()>(|| panic!("boom")).await;
        assert!(matches!(panicked, Err(AuthError::Internal(_))));
        assert_eq!(pool.run(|| Ok(7)).await.unwrap(), 7);
    }
}
