//! What the auth layer costs the inventory service: GetProduct calls per second through it
//! (each credential checked by its verdict cache or auth's ValidateToken) and, in the same run
//! on the same database, through a bare server whose only interceptor puts a fixed user into
//! the request. The layer serves from its verdict cache unless `VERDICT_CACHE_LEASE_MS=0` turns
//! caching off. Rounds alternate between the two so that load from elsewhere on the machine
//! hits both alike.

use std::time::Duration;

use inventory_service::{Application, Config, grpc::InventoryApi, store::ProductStore};
use proto::{
    auth::v1::{LoginRequest, auth_service_client::AuthServiceClient},
    inventory::v1::{
        CreateProductRequest, GetProductRequest, inventory_service_client::InventoryServiceClient,
        inventory_service_server::InventoryServiceServer,
    },
};
use service_kit::testing::TestDatabase;
use tokio::net::TcpListener;
use tonic::{Request, service::Routes, transport::Channel};

use crate::load;

const PASSWORD: &str = "Password123";
const CONCURRENCY: usize = 32;
const ROUND: Duration = Duration::from_secs(3);
const ROUNDS: usize = 2;

pub async fn run() {
    let (auth_db, inventory_db) = (TestDatabase::sqlite(), TestDatabase::sqlite());
    let mut auth_config = auth_service::Config::for_tests(auth_db.url());
    // `VERDICT_CACHE_LEASE_MS=0` measures the layer without its verdict cache.
    if let Ok(lease) = std::env::var("VERDICT_CACHE_LEASE_MS") {
        let millis = lease.parse().expect("VERDICT_CACHE_LEASE_MS is a number");
        auth_config.verdict_cache_lease = Duration::from_millis(millis);
    }
    auth_service::create_superuser(&auth_config, "bench", None, PASSWORD)
        .await
        .expect("a superuser");
    let auth = auth_service::Application::build(auth_config)
        .await
        .expect("auth starts");
    let auth_url = format!("http://{}", auth.local_addr());
    tokio::spawn(auth.run_until_stopped(std::future::pending()));
    let login = AuthServiceClient::new(load::channel(&auth_url).await)
        .login(LoginRequest {
            username: Some("bench".to_owned()),
            password: Some(PASSWORD.to_owned()),
            ..Default::default()
        })
        .await
        .expect("login")
        .into_inner();
    let token = login.token.expect("a token").key;
    let user = login.user.expect("the user");

    let config = Config::for_tests(inventory_db.url(), auth_url.parse().expect("a URL"));
    let checked = Application::build(config).await.expect("inventory starts");
    let checked_url = format!("http://{}", checked.local_addr());
    tokio::spawn(checked.run_until_stopped(std::future::pending()));

    // The same handlers and database, with a fixed caller instead of the auth layer.
    let store = ProductStore::connect(inventory_db.url())
        .await
        .expect("the database");
    let bare = InventoryServiceServer::with_interceptor(
        InventoryApi::new(store),
        move |mut request: Request<()>| {
            request.extensions_mut().insert(user.clone());
            Ok(request)
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let bare_url = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(service_kit::grpc::serve(
        listener,
        Routes::new(bare),
        service_kit::grpc::Limits::default(),
        std::future::pending(),
    ));

    let checked_channel = load::channel(&checked_url).await;
    let product = InventoryServiceClient::new(checked_channel.clone())
        .create_product(load::authorized(
            &token,
            CreateProductRequest {
                name: Some("Benchmark widget".to_owned()),
                price: Some("9.99".to_owned()),
                quantity: Some(10),
                ..Default::default()
            },
        ))
        .await
        .expect("a product")
        .into_inner();
    let bare_channel = load::channel(&bare_url).await;

    let (mut with_layer, mut without) = (0.0, 0.0);
    for round in 1..=ROUNDS {
        let checked = get_products(checked_channel.clone(), &token, product.id).await;
        let bare = get_products(bare_channel.clone(), &token, product.id).await;
        println!(
            "inventory: round {round}: GetProduct through the auth layer {checked:.0} calls/s, without it {bare:.0} calls/s"
        );
        with_layer += checked;
        without += bare;
    }
    println!(
        "inventory: GetProduct ({CONCURRENCY} concurrent, one HTTP/2 connection): through the auth layer {:.0} calls/s, without it {:.0} calls/s; the layer keeps {:.0}% of the bare throughput",
        with_layer / ROUNDS as f64,
        without / ROUNDS as f64,
        100.0 * with_layer / without
    );
}

async fn get_products(channel: Channel, token: &str, id: i64) -> f64 {
    let token = token.to_owned();
    let result = load::throughput(CONCURRENCY, ROUND, move || {
        let mut client = InventoryServiceClient::new(channel.clone());
        let request = load::authorized(&token, GetProductRequest { id });
        async move { client.get_product(request).await.is_ok() }
    })
    .await;
    assert_eq!(
        result.failures, 0,
        "a figure that counts failed calls would flatter the server"
    );
    result.calls_per_second
}
