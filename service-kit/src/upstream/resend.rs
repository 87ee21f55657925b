//! Sending a call, and sending it again when that is safe: what a call is ([`Resend`]), how its
//! first try ended, and the deadline both tries share (the caller's `grpc-timeout`, bounded by
//! [`Settings::timeout`](super::Settings::timeout)).

use std::time::Duration;

use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use proto::idempotency;
use tokio::time::Instant;
use tonic::{body::Body, transport::Channel};
use tower::ServiceExt;

use super::{BoxError, Upstream};

/// Whether a failed call may be sent again, by what it is: a read (in
/// [`idempotency::READS`], or a health check), a write that carries an idempotency key, or
/// another write, which is sent again only when it never left (its connection could not be
/// made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    Always,
    OnlyUnsent,
}

impl Resend {
    fn of<B>(request: &http::Request<B>) -> Self {
        let path = request.uri().path();
        let read = idempotency::READS.contains(&path) || path == HEALTH_CHECK;
        if read || request.headers().contains_key(idempotency::METADATA_KEY) {
            Self::Always
        } else {
            Self::OnlyUnsent
        }
    }

    /// Whether the first try's outcome calls for a second: UNAVAILABLE from a replica, or a
    /// transport failure (the replica died, or was never reached). Never after a timeout, which
    /// used up the caller's deadline.
    fn after(self, outcome: &Result<Answer, BoxError>) -> bool {
        match outcome {
            Ok(answer) => self == Self::Always && answer.unavailable,
            Err(error) if caused_by::<tonic::TimeoutExpired>(error.as_ref()) => false,
            // Nothing reached a replica that could not be connected to.
            Err(error) if caused_by::<tonic::ConnectError>(error.as_ref()) => true,
            Err(_) => self == Self::Always,
        }
    }
}

/// A replica's answer, and whether it says UNAVAILABLE (in its headers, or, for an answer read
/// whole, in its trailers).
struct Answer {
    response: http::Response<Body>,
    unavailable: bool,
}

fn says_unavailable(headers: &http::HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .is_some_and(|status| status == "14")
}

/// Whether `error` or one of its sources is an `E`.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<E>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// A call that failed without an answer, as its caller sees it: UNAVAILABLE, gRPC's code for
/// a transport failure (a connection refused or reset, a TLS handshake refused), which tonic
/// would otherwise report as UNKNOWN ("transport error"). A status already there, and a
/// timeout (tonic's CANCELLED), stay as they are.
pub(super) fn unreachable(error: BoxError) -> BoxError {
    if caused_by::<tonic::Status>(error.as_ref())
        || caused_by::<tonic::TimeoutExpired>(error.as_ref())
    {
        return error;
    }
    Box::new(tonic::Status::unavailable(format!(
        "no replica could be reached: {error}"
    )))
}

impl Upstream {
    /// Sends `request`, and once more when [`Resend`] allows it, both tries within one deadline.
    pub(super) async fn send(
        self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, BoxError> {
        let timeout = self.shared.timeout;
        let budget = grpc_timeout(request.headers()).map_or(timeout, |t| t.min(timeout));
        let deadline = Instant::now() + budget;
        let resend = Resend::of(&request);
        let (parts, body) = request.into_parts();
        let body = match tokio::time::timeout_at(deadline, body.collect()).await {
            Ok(collected) => collected?.to_bytes(),
            Err(_elapsed) => return Err(tonic::TimeoutExpired(()).into()),
        };
        let attempt = |channel: Channel| {
            let mut request = http::Request::new(Body::new(Full::new(body.clone())));
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = parts.headers.clone();
            if parts.headers.contains_key(GRPC_TIMEOUT) {
                let left = deadline.saturating_duration_since(Instant::now());
                set_grpc_timeout(request.headers_mut(), left);
            }
            async move {
                let response =
                    match tokio::time::timeout_at(deadline, channel.oneshot(request)).await {
                        Ok(answer) => answer.map_err(BoxError::from)?,
                        Err(_elapsed) => return Err(tonic::TimeoutExpired(()).into()),
                    };
                let unavailable = says_unavailable(response.headers());
                if resend == Resend::OnlyUnsent {
                    return Ok(Answer {
                        response,
                        unavailable,
                    });
                }
                // Read whole, so that a replica dying between the answer's head and its end
                // leaves a call that can be sent again, not a broken answer.
                let (head, body) = response.into_parts();
                let collected = match tokio::time::timeout_at(deadline, body.collect()).await {
                    Ok(collected) => collected.map_err(BoxError::from)?,
                    Err(_elapsed) => return Err(tonic::TimeoutExpired(()).into()),
                };
                let trailers = collected.trailers().cloned();
                let unavailable = unavailable || trailers.as_ref().is_some_and(says_unavailable);
                let mut frames = vec![Ok::<_, std::convert::Infallible>(Frame::data(
                    collected.to_bytes(),
                ))];
                frames.extend(trailers.map(|trailers| Ok(Frame::trailers(trailers))));
                let body = Body::new(StreamBody::new(tokio_stream::iter(frames)));
                Ok(Answer {
                    response: http::Response::from_parts(head, body),
                    unavailable,
                })
            }
        };
        let first = attempt(self.shared.channel.clone()).await;
        if !resend.after(&first) {
            return first.map(|answer| answer.response);
        }
        tracing::debug!(path = parts.uri.path(), "sending again, to another replica");
        crate::metrics::grpc::resent(parts.uri.path());
        if tokio::time::timeout_at(deadline, self.recheck())
            .await
            .is_err()
        {
            return first.map(|answer| answer.response);
        }
        attempt(self.shared.channel.clone())
            .await
            .map(|answer| answer.response)
    }
}

const GRPC_TIMEOUT: &str = "grpc-timeout";

/// A health check changes nothing either.
const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";

/// The `grpc-timeout` a caller set: digits, then a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

fn set_grpc_timeout(headers: &mut http::HeaderMap, left: Duration) {
    // At most 8 digits, as the protocol allows; a millisecond at least, so it is not "none".
    let millis = left.as_millis().clamp(1, 99_999_999);
    if let Ok(value) = http::HeaderValue::from_str(&format!("{millis}m")) {
        headers.insert(GRPC_TIMEOUT, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_keyed_writes_are_sent_again_other_writes_only_when_unsent() {
        let request = |path: &str, key: bool| {
            let mut request = http::Request::builder().uri(path);
            if key {
                request = request.header(idempotency::METADATA_KEY, "k1");
            }
            request.body(()).unwrap()
        };
        assert_eq!(
            Resend::of(&request("/auth.v1.AuthService/ValidateToken", false)),
            Resend::Always
        );
        assert_eq!(
            Resend::of(&request("/inventory.v1.InventoryService/AdjustStock", true)),
            Resend::Always
        );
        assert_eq!(
            Resend::of(&request(
                "/inventory.v1.InventoryService/AdjustStock",
                false
            )),
            Resend::OnlyUnsent
        );

        let answer = |unavailable| {
            Ok(Answer {
                response: http::Response::new(Body::empty()),
                unavailable,
            })
        };
        let unavailable = || answer(true);
        let never_connected: BoxError = tonic::ConnectError("connection refused".into()).into();
        let lost: BoxError = "connection reset".into();
        let timed_out: BoxError = tonic::TimeoutExpired(()).into();
        assert!(Resend::Always.after(&unavailable()));
        assert!(!Resend::OnlyUnsent.after(&unavailable()));
        assert!(Resend::OnlyUnsent.after(&Err(never_connected)));
        assert!(!Resend::OnlyUnsent.after(&Err(lost)));
        assert!(!Resend::Always.after(&Err(timed_out)));
        assert!(!Resend::Always.after(&answer(false)));
    }

    #[test]
    fn reads_and_writes_grpc_timeouts() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(grpc_timeout(&headers), None);
        set_grpc_timeout(&mut headers, Duration::from_millis(1500));
        assert_eq!(grpc_timeout(&headers), Some(Duration::from_millis(1500)));
        headers.insert(GRPC_TIMEOUT, http::HeaderValue::from_static("2S"));
        assert_eq!(grpc_timeout(&headers), Some(Duration::from_secs(2)));
        headers.insert(GRPC_TIMEOUT, http::HeaderValue::from_static("x"));
        assert_eq!(grpc_timeout(&headers), None);
    }
}
