//! Everything that depends on the auth service: the tower layer that checks each caller's
//! credentials with auth's ValidateToken before a call reaches the inventory handlers (or with
//! the verdict cache, which auth's revocation leases keep exact: a hit costs no round trip),
//! and the watch on auth's health that this service's own health reports.
//!
//! tonic's `Interceptor` is synchronous, so the check is a layer around the inventory service
//! alone (health and reflection stay open). It fails closed: a call goes on only with the user
//! auth vouched for, in the request's extensions; every other outcome is answered right here.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use proto::{
    auth::v1::{User, ValidateTokenRequest, auth_service_client::AuthServiceClient},
    credentials,
};
use service_kit::{request_id, upstream::Upstream, verdicts::VerdictCache};
use tonic::{Code, body::Body, metadata::MetadataMap, server::NamedService};
use tonic_health::{
    ServingStatus,
    pb::{
        HealthCheckRequest, health_check_response::ServingStatus as AuthStatus,
        health_client::HealthClient,
    },
    server::HealthReporter,
};
use tower::{Layer, Service};

use crate::error::InventoryError;

/// Checks credentials with auth's replicas over long-lived channels (HTTP/2 multiplexes every
/// check onto them); a check a replica fails as UNAVAILABLE is asked again of another. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct TokenValidator {
    client: AuthServiceClient<Upstream>,
    /// Past this, a check counts as auth being unavailable.
    timeout: Duration,
    /// Auth's positive verdicts, served while auth's lease says they are still true.
    verdicts: VerdictCache,
}

impl TokenValidator {
    /// Also opens the revocation watch on auth's balanced channel for the cache.
    pub fn new(auth: Upstream, timeout: Duration) -> Self {
        Self {
            verdicts: VerdictCache::spawn(auth.channel(), "inventory"),
            client: AuthServiceClient::new(auth),
            timeout,
        }
    }

    /// The verdict cache (its state is what tests and benchmarks look at).
    pub fn verdicts(&self) -> &VerdictCache {
        &self.verdicts
    }

    /// The user behind the `authorization` metadata of an incoming call.
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn authenticate(&self, incoming: &MetadataMap) -> Result<User, InventoryError> {
        let (kind, key) = credentials::of_metadata(incoming)?;

        if let Some(user) = self.verdicts.lookup(kind, key).and_then(|hit| hit.user) {
            tracing::Span::current().record("user_id", user.id);
            return Ok(user);
        }
        // Taken before asking: an event arriving meanwhile keeps the answer out of the cache.
        let ticket = self.verdicts.ticket();
        let mut request = tonic::Request::new(ValidateTokenRequest {
            key: key.to_owned(),
            kind: kind.into(),
        });
        // Sent as grpc-timeout too, so auth can give up on a check nobody waits for.
        request.set_timeout(self.timeout);
        request_id::forward(incoming, request.metadata_mut());
        let mut client = self.client.clone();
        let response = tokio::time::timeout(self.timeout, client.validate_token(request))
            .await
            .map_err(|_elapsed| {
                InventoryError::AuthUnavailable(tonic::Status::deadline_exceeded(
                    "ValidateToken timed out",
                ))
            })?
            .map_err(classify_auth_failure)?;
        let verdict = response.into_inner();
        self.verdicts.insert(ticket, kind, key, &verdict);
        let user = verdict.user.ok_or_else(|| {
            InventoryError::AuthFailed(tonic::Status::internal("ValidateToken returned no user"))
        })?;
        tracing::Span::current().record("user_id", user.id);
        Ok(user)
    }
}

/// Sorts auth's refusals: a verdict on the credentials goes back to the caller unchanged; a
/// transport failure or timeout means auth is unavailable; anything else is a fault.
fn classify_auth_failure(status: tonic::Status) -> InventoryError {
    match status.code() {
        Code::Unauthenticated => InventoryError::CredentialsRejected(status),
        // tonic reports its own client-side timeout as CANCELLED, and a connection lost
        // mid-call as UNKNOWN: both mean auth did not answer.
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            InventoryError::AuthUnavailable(status)
        }
        _ => InventoryError::AuthFailed(status),
    }
}

/// Wraps a gRPC service so that only authenticated calls reach it.
#[derive(Debug, Clone)]
pub struct RequireAuthenticationLayer {
    validator: TokenValidator,
}

impl RequireAuthenticationLayer {
    pub fn new(validator: TokenValidator) -> Self {
        Self { validator }
    }
}

impl<S> Layer<S> for RequireAuthenticationLayer {
    type Service = RequireAuthentication<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAuthentication {
            inner,
            validator: self.validator.clone(),
        }
    }
}

/// The service [`RequireAuthenticationLayer`] makes. Rejections are gRPC responses (a status in
/// the headers), not service errors, because tonic's router takes only infallible services.
#[derive(Debug, Clone)]
pub struct RequireAuthentication<S> {
    inner: S,
    validator: TokenValidator,
}

impl<S: NamedService> NamedService for RequireAuthentication<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for RequireAuthentication<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The clone that was driven ready is the one to call; a fresh clone stays behind
        // (tower's rule for services called from a future).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let validator = self.validator.clone();
        Box::pin(async move {
            // Moved out and back rather than cloned: the headers are read, never changed.
            let metadata = MetadataMap::from_headers(std::mem::take(request.headers_mut()));
            let verdict = validator.authenticate(&metadata).await;
            *request.headers_mut() = metadata.into_headers();
            match verdict {
                Ok(user) => {
                    request.extensions_mut().insert(user);
                    inner.call(request).await
                }
                Err(error) => Ok(tonic::Status::from(error).into_http()),
            }
        })
    }
}

/// Keeps `service`'s health in step with auth's reachability: NOT_SERVING while no auth replica
/// answers its health check as SERVING (every call would fail), SERVING when one does.
/// Runs until dropped.
pub async fn watch_auth_health(
    auth: Upstream,
    timeout: Duration,
    interval: Duration,
    reporter: HealthReporter,
    service: &'static str,
) {
    let mut health = HealthClient::new(auth);
    let mut ticks = tokio::time::interval(interval);
    // After a stall, one check is enough; a burst of catch-up checks would tell nothing new.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        ticks.tick().await;
        let check = health.check(HealthCheckRequest {
            service: String::new(),
        });
        let status = match tokio::time::timeout(timeout, check).await {
            Ok(Ok(response)) if response.get_ref().status() == AuthStatus::Serving => {
                ServingStatus::Serving
            }
            _ => ServingStatus::NotServing,
        };
        if last != Some(status) {
            tracing::info!(?status, "auth reachability changed");
            reporter.set_service_status(service, status).await;
            last = Some(status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_failures_fail_closed() {
        let outcome = |code| match classify_auth_failure(tonic::Status::new(code, "x")) {
            InventoryError::CredentialsRejected(_) => "rejected",
            InventoryError::AuthUnavailable(_) => "unavailable",
            InventoryError::AuthFailed(_) => "failed",
            other => panic!("{other:?}"),
        };
        for (code, expected) in [
            (Code::Unauthenticated, "rejected"),
            (Code::Unavailable, "unavailable"),
            (Code::DeadlineExceeded, "unavailable"),
            (Code::Cancelled, "unavailable"),
            (Code::Unknown, "unavailable"),
            (Code::Internal, "failed"),
            (Code::PermissionDenied, "failed"),
            (Code::InvalidArgument, "failed"),
            (Code::Ok, "failed"),
        ] {
            assert_eq!(outcome(code), expected, "{code:?}");
        }
    }
}
