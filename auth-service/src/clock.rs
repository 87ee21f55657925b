//! Time as a parameter: the service asks a [`Clock`] for "now", so tests can move time forward
//! (token expiry, lockout delays) without sleeping.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use service_kit::time::micros_of;

pub use service_kit::time::UnixMicros;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixMicros;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMicros {
        UnixMicros::now()
    }
}

/// A clock that stands still until told to move; clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Starts at the current wall-clock time.
    pub fn new() -> Self {
        Self(Arc::new(AtomicI64::new(SystemClock.now().0)))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(micros_of(by), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMicros {
        UnixMicros(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new();
        let start = clock.now();
        clock.advance(Duration::from_secs(2));
        assert_eq!(start.until(clock.now()), Duration::from_secs(2));
        assert_eq!(clock.now().until(start), Duration::ZERO);
    }
}
