//! Per-client-IP rate limits on the login and registration routes (`THROTTLE_AUTH_RATE`),
//! counted as DRF's `SimpleRateThrottle` counts: a sliding window of request times per client,
//! and the wait it reports is until the oldest request in the window expires.

use std::{
    collections::{HashMap, VecDeque},
    net::{IpAddr, Ipv4Addr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{config::Rate, error::ApiError, forwarded::ClientAddress};

/// Past this many tracked clients, the ones whose windows are empty are forgotten.
const PRUNE_ABOVE_CLIENTS: usize = 10_000;

/// The request times of each client within the current window.
#[derive(Debug)]
pub struct Throttle {
    rate: Option<Rate>,
    history: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Throttle {
    /// A throttle allowing `rate`; `None` lets everything through.
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            rate,
            history: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request from `client` at `now`, or says how long it must wait (a refused request
    /// is not counted, as in DRF).
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if history.len() > PRUNE_ABOVE_CLIENTS {
            history.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|last| now.duration_since(*last) < rate.period)
            });
        }
        let times = history.entry(client).or_default();
        while times
            .front()
            .is_some_and(|oldest| now.duration_since(*oldest) >= rate.period)
        {
            times.pop_front();
        }
        if times.len() >= rate.requests as usize {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(rate.period.saturating_sub(now.duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }
}

/// Middleware: 429 with `Retry-After` for a client over the rate. The client is the
/// [`ClientAddress`]: the peer, or whom the trusted proxies forwarded for.
pub async fn limit(
    State(throttle): State<Arc<Throttle>>,
    request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ClientAddress>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |client| client.0);
    match throttle.check(client, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => ApiError::Throttled(wait).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_rate_until_the_oldest_expires() {
        let throttle = Throttle::new(Some("2/minute".parse().unwrap()));
        let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let start = Instant::now();
        assert_eq!(throttle.check(client, start), Ok(()));
        assert_eq!(
            throttle.check(client, start + Duration::from_secs(10)),
            Ok(())
        );
        assert_eq!(
            throttle.check(client, start + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        assert_eq!(
            throttle.check(other, start + Duration::from_secs(20)),
            Ok(())
        );
        assert_eq!(
            throttle.check(client, start + Duration::from_secs(60)),
            Ok(())
        );
    }

    #[test]
    fn off_lets_everything_through() {
        let throttle = Throttle::new(None);
        for _ in 0..100 {
            assert_eq!(
                throttle.check(IpAddr::V4(Ipv4Addr::LOCALHOST), Instant::now()),
                Ok(())
            );
        }
    }
}
