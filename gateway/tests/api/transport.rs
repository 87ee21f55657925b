//! Every gRPC hop over mutual TLS (`https://` upstreams, `TLS_CA_FILE`, the client certificate
//! and each server's `TLS_CLIENT_CA_FILE`): the gateway reaches auth and inventory, inventory
//! reaches auth, each verifying the server against the CA and presenting its own certificate,
//! and the API answers as over plaintext; both verdict caches hold their leases as the
//! identities auth lists. A gateway that cannot be verified by the services, or cannot verify
//! them, serves no protected data: its calls fail closed. One with a good certificate for
//! another identity is served, but holds no verdict cache.

use reqwest::StatusCode;
use service_kit::{
    testing::{TestDatabase, certificates::TestCa},
    tls::ClientTls,
};

use crate::helpers::{Hops, expect_status, spawn_gateway, spawn_stack_on};

/// Whether `condition` holds within a second.
async fn eventually(condition: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if condition() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn every_hop_over_mutual_tls_serves_the_api_and_strangers_nothing() {
    let ca = TestCa::new();
    let databases = [TestDatabase::sqlite(), TestDatabase::sqlite()];
    let mut stack = spawn_stack_on(databases, Hops::MutualTls(&ca), |_| {}).await;
    let token = stack.clerk("sam").await;
    expect_status(stack.get("/api/me/", Some(&token)).await, StatusCode::OK).await;
    let inventory = stack.get("/api/inventory/", Some(&token)).await;
    expect_status(inventory, StatusCode::OK).await;
    let holding = || stack.gateway_verdicts.is_trusted() && stack.inventory_verdicts.is_trusted();
    assert!(eventually(holding).await, "the verdict caches hold leases");

    // Another identity, certified by the CA: served, but no cache holder.
    let stranger = ClientTls::from_pem(ca.certificate(), Some(ca.issue("stranger")));
    let (other, _running, verdicts) =
        spawn_gateway(&stack.auth_url, &stack.inventory_url, |config| {
            config.upstream_tls = Some(stranger);
        })
        .await;
    let me = stack.get_at(&other, "/api/me/", Some(&token)).await;
    expect_status(me, StatusCode::OK).await;
    let held = eventually(|| verdicts.is_trusted()).await;
    assert!(!held, "a gateway of another identity held a verdict cache");

    let inventory_url = stack.inventory_url.to_string();
    let stranger = TestCa::new();
    let strangers = [
        // Trusts the services' CA but presents no certificate.
        ClientTls::from_pem(ca.certificate(), None),
        // Presents a certificate of another CA.
        ClientTls::from_pem(ca.certificate(), Some(stranger.issue("gateway"))),
        // Its own certificate is good, but it trusts another CA.
        ClientTls::from_pem(stranger.certificate(), Some(ca.issue("gateway"))),
    ];
    for tls in strangers {
        let gateway = stack
            .extra_gateway(&inventory_url, |config| config.upstream_tls = Some(tls))
            .await;
        for path in ["/api/me/", "/api/inventory/"] {
            let answer = stack.get_at(&gateway, path, Some(&token)).await;
            expect_status(answer, StatusCode::SERVICE_UNAVAILABLE).await;
        }
    }
}
