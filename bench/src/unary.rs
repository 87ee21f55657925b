//! Scenarios 2 and 3, measured in turns in one pass: auth's `ValidateToken` of a valid key
//! against a bare tonic server's unary `grpc.health.v1.Health/Check`, and inventory's
//! `GetProduct` through its auth layer (the binary) against the same handlers on the same
//! database without the layer (`baseline::serve_inventory_without_auth_layer`). Concurrent
//! streams over a few HTTP/2 connections, as `h2load -c4 -m8` makes them.

use std::future::Future;

use proto::{
    auth::v1::{CredentialKind, ValidateTokenRequest, auth_service_client::AuthServiceClient},
    inventory::v1::{GetProductRequest, inventory_service_client::InventoryServiceClient},
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    baseline::Baselines,
    load::{self, GRPC_CONNECTIONS, Rpc},
    report::{Report, ratio},
    stack::Stack,
};

/// Calls in flight at once, spread over [`GRPC_CONNECTIONS`] connections.
pub const STREAMS: usize = 32;

/// Which of the two scenarios to print.
pub struct Wanted {
    pub validate: bool,
    pub inventory: bool,
}

pub async fn run(stack: &Stack, baselines: &Baselines, wanted: Wanted, report: &mut Report) {
    let empty = callers(&format!("http://{}", baselines.grpc), |channel| {
        let mut client = HealthClient::new(channel);
        async move { client.check(HealthCheckRequest::default()).await.is_ok() }
    })
    .await;
    let key = stack.admin_key.clone();
    let validate = callers(&stack.auth.url(), move |channel| {
        let mut client = AuthServiceClient::new(channel);
        let request = ValidateTokenRequest {
            key: key.clone(),
            kind: CredentialKind::Token.into(),
        };
        async move { client.validate_token(request).await.is_ok() }
    })
    .await;
    let get_product = |url: String| {
        let (key, id) = (stack.admin_key.clone(), stack.product_id);
        async move {
            callers(&url, move |channel| {
                let mut client = InventoryServiceClient::new(channel);
                let request = load::authorized(&key, GetProductRequest { id });
                async move { client.get_product(request).await.is_ok() }
            })
            .await
        }
    };
    let through_layer = get_product(stack.inventory.url()).await;
    let without_layer = get_product(format!("http://{}", baselines.inventory)).await;
    for service in stack.services() {
        service.reset_peak();
    }
    let [empty, validate, through_layer, without_layer] =
        load::in_turns([empty, validate, through_layer, without_layer]).await;

    let setting = format!("{STREAMS} streams over {GRPC_CONNECTIONS} HTTP/2 connections");
    if wanted.validate {
        report.heading(&format!("2. ValidateToken of a valid key, {setting}"));
        report.table(&[
            ("auth ValidateToken", validate),
            ("empty tonic unary (health Check)", empty),
        ]);
        let share = ratio(validate.per_second, empty.per_second);
        report.check(
            "2 ValidateToken",
            ">= 60% of empty tonic",
            format!("{:.1}%", 100.0 * share),
            share >= 0.60,
        );
        report.memory(&[&stack.auth]);
    }
    if wanted.inventory {
        report.heading(&format!(
            "3. GetProduct with and without the auth layer, {setting}"
        ));
        report.table(&[
            (
                "inventory GetProduct, through the auth layer",
                through_layer,
            ),
            ("the same handlers without the layer", without_layer),
            ("empty tonic unary (health Check)", empty),
        ]);
        report.note(&format!(
            "GetProduct through the layer / empty tonic: {:.1}%",
            100.0 * ratio(through_layer.per_second, empty.per_second)
        ));
        let share = ratio(through_layer.per_second, without_layer.per_second);
        report.check(
            "3 GetProduct",
            "through the auth layer >= 90% of without",
            format!("{:.1}%", 100.0 * share),
            share >= 0.90,
        );
        report.memory(&[&stack.inventory, &stack.auth]);
    }
}

/// [`STREAMS`] callers of `url`, spread over [`GRPC_CONNECTIONS`] connections; `call` makes one
/// call on the channel it is given.
pub async fn callers<F, Fut>(url: &str, call: F) -> Vec<Rpc>
where
    F: Fn(Channel) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let channels = load::channels(url, GRPC_CONNECTIONS).await;
    (0..STREAMS)
        .map(|i| {
            let (channel, call) = (channels[i % channels.len()].clone(), call.clone());
            Rpc::new(move || call(channel.clone()))
        })
        .collect()
}
