//! Time as the services store it: unix microseconds in an `i64`, the one type SQLite and
//! PostgreSQL columns share. Conversions saturate instead of failing: a time before 1970 is the
//! epoch, one past the year 294,000 the largest value.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time as unix microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixMicros(pub i64);

impl UnixMicros {
    pub fn now() -> Self {
        SystemTime::now().into()
    }

    pub fn plus(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(micros_of(duration)))
    }

    pub fn minus(self, duration: Duration) -> Self {
        Self(self.0.saturating_sub(micros_of(duration)))
    }

    /// How long from `self` until `later` (zero if `later` is not later).
    pub fn until(self, later: UnixMicros) -> Duration {
        Duration::from_micros(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(u64::try_from(self.0).unwrap_or(0))
    }

    pub fn to_proto(self) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: self.0.div_euclid(1_000_000),
            nanos: i32::try_from(self.0.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
        }
    }
}

impl From<SystemTime> for UnixMicros {
    fn from(time: SystemTime) -> Self {
        Self(micros_of(
            time.duration_since(UNIX_EPOCH).unwrap_or_default(),
        ))
    }
}

/// `duration` in whole microseconds.
pub fn micros_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_proto_timestamps() {
        let t = UnixMicros(1_700_000_000_123_456).to_proto();
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 123_456_000));
    }

    #[test]
    fn round_trips_system_time_and_saturates() {
        let time = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(UnixMicros::from(time).to_system_time(), time);
        assert_eq!(UnixMicros(-5).to_system_time(), UNIX_EPOCH);
        assert_eq!(
            UnixMicros(i64::MAX).plus(Duration::from_secs(1)).0,
            i64::MAX
        );
        let start = UnixMicros(10);
        assert_eq!(
            start.until(start.plus(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            start.until(start.minus(Duration::from_secs(2))),
            Duration::ZERO
        );
    }
}
