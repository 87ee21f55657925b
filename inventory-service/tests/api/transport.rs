//! Inventory over TLS. Given a certificate it speaks TLS only: grpcurl verifying it against the
//! CA lists it (reflection) and calls it (a call with no token is refused UNAUTHENTICATED by the
//! auth layer: an answer, over TLS), while `-plaintext` fails. Given a client CA it also
//! requires a certificate that CA signed. And the suite's PostgreSQL half passes again over
//! `sslmode=verify-full` to a server that takes TLS only. (Its `METRICS_LISTEN` is here too: a
//! listener of its own beside the gRPC one.)

use inventory_service::{Application, Config};
use service_kit::{
    program::Server,
    testing::{
        Running, TestDatabase,
        certificates::TestCa,
        grpcurl::grpcurl,
        printed,
        scrape::{promtool_accepts, scrape, value},
        tls_postgres::TlsPostgres,
    },
    tls::ServerTls,
};

/// grpcurl's exit status and what it printed; run off the runtime, which serves the server.
async fn call(args: Vec<String>) -> Option<(bool, String)> {
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        grpcurl(&args)
    });
    let output = output.await.expect("grpcurl ran")?;
    Some((output.status.success(), printed(&output)))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|&arg| arg.to_owned()).collect()
}

#[tokio::test]
async fn grpcurl_reaches_inventory_over_tls_and_mutual_tls_only() {
    let ca = TestCa::new();
    let (chain, key) = ca.issue("inventory");
    let db = TestDatabase::sqlite();
    for client_ca in [None, Some(ca.certificate())] {
        let mutual = client_ca.is_some();
        // No auth answers: inventory serves (NOT_SERVING) and refuses calls without a token.
        let mut config = Config::for_tests(db.url(), "http://127.0.0.1:1".parse().unwrap());
        config.tls = Some(ServerTls::from_pem(chain.clone(), key.clone(), client_ca).unwrap());
        let app = Application::build(config).await.expect("inventory starts");
        let addr = app.local_addr().to_string();
        let server = Running::spawn(|shutdown| async move {
            app.run_until_stopped(shutdown)
                .await
                .expect("inventory runs");
        });
        ca.issue("gateway");
        let path = |file: &str| ca.path(file).to_str().unwrap().to_owned();
        let mut trusted = strings(&["-cacert", &path("ca.pem")]);
        if mutual {
            let Some((anonymous, refused)) =
                call([trusted.clone(), strings(&[&addr, "list"])].concat()).await
            else {
                return;
            };
            assert!(
                !anonymous,
                "a caller with no certificate was served: {refused}"
            );
            trusted.extend(strings(&[
                "-cert",
                &path("gateway.pem"),
                "-key",
                &path("gateway.key"),
            ]));
        }
        let Some((listed, services)) =
            call([trusted.clone(), strings(&[&addr, "list"])].concat()).await
        else {
            return;
        };
        assert!(
            listed && services.contains("inventory.v1.InventoryService"),
            "{services}"
        );
        let list = strings(&[
            "-d",
            "{}",
            &addr,
            "inventory.v1.InventoryService/ListProducts",
        ]);
        let (_, answer) = call([trusted.clone(), list].concat()).await.unwrap();
        assert!(
            answer.contains("Unauthenticated"),
            "mutual {mutual}: {answer}"
        );
        let (plaintext, refused) = call(strings(&["-plaintext", &addr, "list"])).await.unwrap();
        assert!(!plaintext, "plaintext was served: {refused}");
        server.stop().await;
    }
}

#[test]
fn the_postgresql_half_of_the_suite_passes_over_tls() {
    let Some(server) = TlsPostgres::start() else {
        return;
    };
    server.rerun_postgres_half(10);
}

/// `METRICS_LISTEN` serves inventory's calls as Prometheus series: one refused for want of a
/// token is counted under its method and code, beside the caches', the pool's and the
/// balancer's series, and promtool passes it all.
#[tokio::test]
async fn inventory_calls_are_counted_on_metrics_listen() {
    let db = TestDatabase::sqlite();
    let mut config = Config::for_tests(db.url(), "http://127.0.0.1:1".parse().unwrap());
    config.metrics_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let app = Application::build(config).await.expect("inventory starts");
    let (addr, metrics) = (
        app.local_addr(),
        app.metrics_addr().expect("a metrics port"),
    );
    let server = Running::spawn(|shutdown| async move {
        app.run_until_stopped(shutdown)
            .await
            .expect("inventory runs");
    });
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client =
        proto::inventory::v1::inventory_service_client::InventoryServiceClient::new(channel);
    let refused = client
        .list_products(proto::inventory::v1::ListProductsRequest::default())
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::Unauthenticated);

    let exposed = scrape(metrics).await;
    let refused = [
        r#"grpc_service="inventory.v1.InventoryService""#,
        r#"grpc_method="ListProducts""#,
        r#"grpc_code="Unauthenticated""#,
    ];
    assert!(
        value(&exposed, "grpc_server_handled_total", &refused) >= Some(1.0),
        "{exposed}"
    );
    // The series of what the service holds, registered as it starts: its caches, its pool,
    // and its balancer over auth's replicas (the one target, unanswering, stays in).
    for (name, labels) in [
        ("product_cache_reads_total", &[r#"result="hit""#][..]),
        ("product_cache_products", &[][..]),
        (
            "verdict_cache_lookups_total",
            &[r#"holder="inventory""#, r#"result="miss""#][..],
        ),
        ("verdict_cache_entries", &[r#"holder="inventory""#][..]),
        (
            "db_pool_connections",
            &[r#"pool="inventory""#, r#"state="in_use""#][..],
        ),
        (
            "db_pool_acquire_seconds_count",
            &[r#"pool="inventory""#][..],
        ),
        // SQLite's writes commit in batches.
        ("db_write_batch_size_count", &[r#"pool="inventory""#][..]),
    ] {
        assert!(value(&exposed, name, labels).is_some(), "{name}: {exposed}");
    }
    let replicas = [r#"grpc_service="auth.v1.AuthService""#];
    assert!(
        value(&exposed, "grpc_client_replicas", &replicas) >= Some(1.0),
        "{exposed}"
    );
    promtool_accepts(&exposed);
    server.stop().await;
}

#[test]
fn the_binary_answers_version_and_help_without_serving() {
    let binary = env!("CARGO_BIN_EXE_inventory-service");
    let version = env!("CARGO_PKG_VERSION");
    service_kit::testing::assert_command_line(binary, "inventory-service", version);
}
