//! Service identity under mutual TLS: auth knows each caller by the name its client
//! certificate carries. Only the identities in `REVOCATION_HOLDERS` may open
//! `WatchRevocations` (a stranger holding a silent lease would make every logout wait it out);
//! only those in `TRUSTED_FRONTENDS` have their `x-client-address` believed. Every caller here
//! has a certificate from the one CA, so the handshake alone tells none apart.

use std::sync::Arc;

use auth_service::clock::ManualClock;
use proto::auth::v1::{self as pb, auth_service_client::AuthServiceClient};
use service_kit::{
    testing::{Running, TestDatabase, certificates::TestCa},
    tls::{ClientTls, ServerTls},
};
use tokio_stream::StreamExt as _;
use tonic::{Code, transport::Channel};

use crate::helpers::{PASSWORD, from_address, login_request, registration, run};

const PERSON: &str = "198.51.100.7";

/// Auth under mutual TLS, holders `gateway` and `inventory`, front end `gateway`; its address.
async fn serve(ca: &TestCa, db: &TestDatabase) -> (String, Running) {
    let (chain, key) = ca.issue("auth");
    let mut config = auth_service::Config::for_tests(db.url());
    config.tls = Some(ServerTls::from_pem(chain, key, Some(ca.certificate())).unwrap());
    config.revocation_holders = "gateway, inventory".parse().unwrap();
    config.trusted_frontends = "gateway".parse().unwrap();
    // A clock that stands still: a lockout lasts as long as the test needs.
    let clock = Arc::new(ManualClock::new());
    let app = auth_service::Application::build_with_clock(config, clock)
        .await
        .expect("auth starts");
    let addr = format!("https://{}", service_kit::program::Server::local_addr(&app));
    (addr, run(app))
}

/// A client of auth at `url` presenting a certificate for `identity`.
async fn client_as(ca: &TestCa, url: &str, identity: &str) -> AuthServiceClient<Channel> {
    let tls = ClientTls::from_pem(ca.certificate(), Some(ca.issue(identity)));
    let endpoint = Channel::from_shared(url.to_owned()).unwrap();
    let channel = endpoint.tls_config(tls.config("127.0.0.1")).unwrap();
    AuthServiceClient::new(channel.connect().await.expect("the client connects"))
}

async fn watch(client: &mut AuthServiceClient<Channel>) -> Result<(), tonic::Status> {
    let hello = pb::WatchRequest {
        message: Some(pb::watch_request::Message::Hello(pb::WatchHello {
            holder: "test".to_owned(),
        })),
    };
    let requests = tokio_stream::iter([hello]).chain(tokio_stream::pending());
    client.watch_revocations(requests).await.map(drop)
}

#[tokio::test]
async fn only_listed_identities_hold_caches_or_name_clients() {
    let (ca, db) = (TestCa::new(), TestDatabase::sqlite());
    let (url, _server) = serve(&ca, &db).await;
    let mut stranger = client_as(&ca, &url, "stranger").await;
    let mut inventory = client_as(&ca, &url, "inventory").await;
    let mut gateway = client_as(&ca, &url, "gateway").await;

    let refused = watch(&mut stranger).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    watch(&mut inventory)
        .await
        .expect("inventory holds a cache");
    watch(&mut gateway)
        .await
        .expect("the gateway holds a cache");

    // The stranger names the person's address five times: counted as its own.
    gateway.register(registration("victim")).await.unwrap();
    for _ in 0..5 {
        let wrong = from_address(PERSON, login_request("victim", "Wrong1234"));
        let status = stranger.login(wrong).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    let right = from_address(PERSON, login_request("victim", PASSWORD));
    gateway
        .login(right)
        .await
        .expect("the person is not locked out");
    // The gateway naming the person is believed: five failures lock the person's address.
    for _ in 0..5 {
        let wrong = from_address(PERSON, login_request("victim", "Wrong1234"));
        gateway.login(wrong).await.unwrap_err();
    }
    let right = from_address(PERSON, login_request("victim", PASSWORD));
    let locked = gateway.login(right).await.unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted, "{locked:?}");
    // The stranger's failures were counted on its own address, which is locked.
    let own = stranger
        .login(login_request("victim", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::ResourceExhausted, "{own:?}");
}
