//! `x-client-address` is believed only from trusted front ends (`TRUSTED_FRONTENDS`). Before
//! the fix any gRPC caller could name any address: nineteen wrong passwords naming nineteen
//! addresses locked nothing, and five failures naming someone else's address locked that
//! person out of the gateway with the right password.

use proto::auth::v1 as pb;
use service_kit::testing::TestDatabase;
use tonic::{Code, transport::Endpoint};

use crate::helpers::*;

service_kit::on_both_backends!(a_caller_that_is_no_front_end_is_counted_by_its_own_address);

/// The gateway's address in this test: its client binds this loopback source address.
const GATEWAY: [u8; 4] = [127, 0, 0, 2];
/// A person behind the gateway.
const PERSON: &str = "198.51.100.7";

async fn a_caller_that_is_no_front_end_is_counted_by_its_own_address(db: TestDatabase) {
    let mut config = auth_service::Config::for_tests(db.url());
    config.trusted_frontends = "127.0.0.2".parse().unwrap();
    let app = spawn_app_with(config).await;
    app.register("victim").await;
    let gateway = pb::auth_service_client::AuthServiceClient::new(
        Endpoint::from_shared(format!("http://{}", app.addr))
            .unwrap()
            .local_address(Some(GATEWAY.into()))
            .connect()
            .await
            .expect("a client from 127.0.0.2"),
    );

    // A direct caller (127.0.0.1) names the person's address five times: counted as its own.
    let mut direct = app.client();
    for _ in 0..5 {
        let status = direct
            .login(from_address(PERSON, login_request("victim", "Wrong1234")))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    // The person, through the gateway, is not locked out.
    gateway
        .clone()
        .login(from_address(PERSON, login_request("victim", PASSWORD)))
        .await
        .expect("the person behind the gateway logs in");

    // Naming a new address for every guess does not dodge the count either.
    let mut locked = 0;
    for guess in 0..10 {
        let address = format!("203.0.113.{guess}");
        let status = direct
            .login(from_address(&address, login_request("victim", "Wrong1234")))
            .await
            .unwrap_err();
        if status.code() == Code::ResourceExhausted {
            locked += 1;
        }
    }
    assert!(locked >= 5, "{locked} of 10 guesses were refused as locked");
}
