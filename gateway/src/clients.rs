//! The long-lived gRPC channels to the replicas of the auth and inventory services
//! ([`service_kit::upstream`]: balanced over the healthy ones, a failed read sent again to
//! another), the metadata every call carries (the request id and the caller's credential), and
//! the cache of auth's verdicts on the credentials the gateway checks itself (sessions). Channels
//! connect lazily, so the gateway starts, and answers `/healthz`, while the services are still
//! down; `/readyz` asks them.

use std::{sync::Arc, time::Duration};

use service_kit::{
    upstream::{self, Targets, Upstream},
    verdicts::VerdictCache,
};

use http::uri::PathAndQuery;
use prost::bytes::Bytes;
use proto::{
    auth::v1::{CredentialKind, auth_service_client::AuthServiceClient, auth_service_server},
    codec::UndecodedReplies,
    credentials,
    inventory::v1::{
        ListProductsRequest, inventory_service_client::InventoryServiceClient,
        inventory_service_server,
    },
};
use secrecy::{ExposeSecret, SecretString};
use tonic::{Status, metadata::MetadataValue};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::config::Config;

/// How long a connection attempt may take before the call fails as UNAVAILABLE (503).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The method [`Upstreams::list_products_reply`] calls.
const LIST_PRODUCTS: &str = "/inventory.v1.InventoryService/ListProducts";

/// How long `/readyz` waits for each health check.
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// A key the caller presented, and how: header token or cookie session. Services are told
/// which, because a session must not pass for a token (and the other way round).
/// The key is a bearer secret, so a `secrecy` string: never in a log line.
#[derive(Clone, Debug)]
pub struct Credential {
    pub kind: CredentialKind,
    pub key: SecretString,
}

/// Wraps `message` with the metadata every call carries: `x-request-id`, so the services log
/// the same id, and `authorization` when there is a credential to present.
pub fn request<T>(
    message: T,
    request_id: &str,
    credential: Option<&Credential>,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    service_kit::request_id::set(metadata, request_id);
    if let Some(credential) = credential {
        // A key that cannot be metadata (control characters) authenticates nobody; sending none
        // makes the service answer CREDENTIALS_MISSING instead of failing here.
        if let Ok(value) = MetadataValue::try_from(credentials::format(
            credential.kind,
            credential.key.expose_secret(),
        )) {
            metadata.insert(credentials::METADATA_KEY, value);
        }
    }
    request
}

/// Clients of both services, sharing one balanced channel each. A clone is one pointer's: every
/// request takes one.
#[derive(Debug, Clone)]
pub struct Upstreams {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    auth: Upstream,
    inventory: Upstream,
    /// Auth's positive verdicts, kept exact by its revocation leases.
    verdicts: VerdictCache,
}

impl Upstreams {
    /// Channels that connect on first use and reconnect by themselves; the verdict cache's
    /// revocation watch starts on the auth channel.
    pub fn connect_lazy(config: &Config) -> Self {
        let settings = upstream::Settings {
            resolve_interval: config.resolve_interval,
            timeout: config.upstream_timeout,
            connect_timeout: CONNECT_TIMEOUT,
            tls: config.upstream_tls.clone(),
        };
        let spawn =
            |service, targets: &Targets| Upstream::spawn(service, targets, settings.clone());
        let auth = spawn(auth_service_server::SERVICE_NAME, &config.auth_url);
        Self {
            shared: Arc::new(Shared {
                verdicts: VerdictCache::spawn(auth.channel(), "gateway"),
                auth,
                inventory: spawn(
                    inventory_service_server::SERVICE_NAME,
                    &config.inventory_url,
                ),
            }),
        }
    }

    pub fn verdicts(&self) -> &VerdictCache {
        &self.shared.verdicts
    }

    pub fn auth(&self) -> AuthServiceClient<Upstream> {
        AuthServiceClient::new(self.shared.auth.clone())
    }

    pub fn inventory(&self) -> InventoryServiceClient<Upstream> {
        InventoryServiceClient::new(self.shared.inventory.clone())
    }

    /// Inventory's `ListProducts`, its reply left as the bytes it came in (see
    /// [`crate::shapes::ReplyMemo`], which writes each distinct reply's JSON once).
    pub async fn list_products_reply(
        &self,
        request: tonic::Request<ListProductsRequest>,
    ) -> Result<Bytes, Status> {
        // What the generated client's method does, with another decoder.
        let mut grpc = tonic::client::Grpc::new(self.shared.inventory.clone());
        grpc.ready()
            .await
            .map_err(|error| Status::unknown(format!("inventory was not ready: {error}")))?;
        let path = PathAndQuery::from_static(LIST_PRODUCTS);
        let reply = grpc
            .unary(request, path, UndecodedReplies::default())
            .await?;
        Ok(reply.into_inner())
    }

    /// Each service's name and whether it answers its health check as SERVING.
    pub async fn readiness(&self) -> [(&'static str, bool); 2] {
        let (auth, inventory) = tokio::join!(
            serving(&self.shared.auth, auth_service_server::SERVICE_NAME),
            serving(
                &self.shared.inventory,
                inventory_service_server::SERVICE_NAME
            ),
        );
        [("auth", auth), ("inventory", inventory)]
    }
}

/// Whether a replica behind `upstream` reports `service` as SERVING. By name, not the whole
/// server (""): that is SERVING as long as the process runs, while inventory reports its own
/// service NOT_SERVING when it cannot reach auth and so cannot check a single caller.
async fn serving(upstream: &Upstream, service: &str) -> bool {
    let mut client = HealthClient::new(upstream.clone());
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    request.set_timeout(HEALTH_CHECK_TIMEOUT);
    match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, client.check(request)).await {
        Ok(Ok(response)) => response.into_inner().status() == ServingStatus::Serving,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_carries_the_request_id_and_the_credential() {
        let session = Credential {
            kind: CredentialKind::Session,
            key: "k1".into(),
        };
        let request = request((), "rid-1", Some(&session));
        let metadata = request.metadata();
        assert_eq!(
            metadata.get(service_kit::request_id::HEADER).unwrap(),
            "rid-1"
        );
        assert_eq!(
            metadata.get(credentials::METADATA_KEY).unwrap(),
            "Session k1"
        );

        let anonymous = super::request((), "rid-2", None);
        assert!(
            anonymous
                .metadata()
                .get(credentials::METADATA_KEY)
                .is_none()
        );
    }

    #[test]
    fn the_undecoded_list_calls_the_method_the_generated_client_calls() {
        assert_eq!(
            LIST_PRODUCTS,
            format!("/{}/ListProducts", inventory_service_server::SERVICE_NAME)
        );
        assert!(proto::idempotency::READS.contains(&LIST_PRODUCTS));
    }

    #[test]
    fn never_logs_a_key() {
        let token = Credential {
            kind: CredentialKind::Token,
            key: "secret-key".into(),
        };
        assert!(!format!("{token:?}").contains("secret-key"));
    }
}
