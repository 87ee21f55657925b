//! The product cache keeps the verdict caches' rule: once a write has returned, no replica
//! answers as if it had not happened, however warm its copy was. Each test first shows that the
//! copy is there (so a pass is no database read in disguise), then writes, then reads at once.

use std::time::Duration;

use inventory_service::import::import_django_file;
use proto::inventory::v1::{
    AdjustStockRequest, CreateProductRequest, DeleteProductRequest, GetProductRequest,
    ListProductsRequest, Product, UpdateProductRequest,
    inventory_service_client::InventoryServiceClient,
};
use service_kit::testing::TestDatabase;
use sqlx::{AnyConnection, Connection};
use tonic::{Code, transport::Channel};

use crate::helpers::{
    RunningInventory, TestApp, spawn_app, spawn_app_with, start_inventory, widget, with_token,
};

service_kit::on_both_backends!(
    every_write_is_read_back_at_once_from_a_warm_cache,
    an_import_beside_the_server_is_served_when_it_returns,
    a_table_too_big_to_keep_is_read_from_the_database,
    without_a_lease_nothing_is_cached,
);

service_kit::on_postgres!(
    a_write_on_one_replica_is_read_at_once_on_another,
    a_replica_whose_feed_connection_broke_misses_no_write_and_recovers,
    an_operators_own_sql_reaches_the_cache,
    without_the_database_the_copy_is_not_served,
    concurrent_writes_share_their_wait_for_the_replicas,
);

const ROUNDS: usize = 100;

async fn list(inventory: &mut InventoryServiceClient<Channel>, token: &str) -> Vec<Product> {
    inventory
        .list_products(with_token(ListProductsRequest::default(), token))
        .await
        .expect("a list")
        .into_inner()
        .products
}

async fn get(
    inventory: &mut InventoryServiceClient<Channel>,
    token: &str,
    id: i64,
) -> Result<Product, tonic::Status> {
    inventory
        .get_product(with_token(GetProductRequest { id }, token))
        .await
        .map(tonic::Response::into_inner)
}

/// Lists through `inventory` until the copy of the table in `products` (that replica's) is there
/// and trusted: the state every round starts from. A list may fail meanwhile (while the
/// replica recovers).
async fn warm(
    products: &inventory_service::cache::Products,
    inventory: &InventoryServiceClient<Channel>,
    token: &str,
) {
    for _ in 0..500 {
        let _ = inventory
            .clone()
            .list_products(with_token(ListProductsRequest::default(), token))
            .await;
        if products.is_trusted() && products.cached().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the product cache never held the table");
}

/// What a round of writes does, in turn: each kind of write, and what a read must then show.
#[derive(Debug, Clone, Copy)]
enum Write {
    Create,
    Update,
    Adjust,
    Delete,
}

const WRITES: [Write; 4] = [Write::Create, Write::Update, Write::Adjust, Write::Delete];

/// Applies `write` to the product `id` (Create makes a new one) through `inventory`; what a
/// read of the table must find afterwards: the product as written, or its id gone.
async fn apply(
    write: Write,
    inventory: &mut InventoryServiceClient<Channel>,
    token: &str,
    id: i64,
    round: usize,
) -> (i64, Option<Product>) {
    let answer = match write {
        Write::Create => inventory
            .create_product(with_token(
                CreateProductRequest {
                    name: Some(format!("Made in round {round}")),
                    ..widget(1)
                },
                token,
            ))
            .await
            .map(tonic::Response::into_inner),
        Write::Update => inventory
            .update_product(with_token(
                UpdateProductRequest {
                    id,
                    name: Some(format!("Renamed in round {round}")),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(tonic::Response::into_inner),
        Write::Adjust => inventory
            .adjust_stock(with_token(AdjustStockRequest { id, delta: 3 }, token))
            .await
            .map(tonic::Response::into_inner),
        Write::Delete => {
            inventory
                .delete_product(with_token(DeleteProductRequest { id }, token))
                .await
                .expect("the write returns");
            return (id, None);
        }
    };
    let written = answer.expect("the write returns");
    (written.id, Some(written))
}

/// Checks that `inventory` answers with what `write` left, in a list and in a get.
async fn assert_read_back(
    inventory: &mut InventoryServiceClient<Channel>,
    token: &str,
    (id, expected): &(i64, Option<Product>),
    context: &str,
) {
    let listed = list(inventory, token).await;
    let found = listed.iter().find(|product| product.id == *id);
    assert_eq!(found, expected.as_ref(), "list, {context}");
    match (get(inventory, token, *id).await, expected) {
        (Ok(product), Some(expected)) => assert_eq!(&product, expected, "get, {context}"),
        (Err(status), None) => assert_eq!(status.code(), Code::NotFound, "get, {context}"),
        (answer, _) => panic!("get, {context}: {answer:?}"),
    }
}

/// Writes on `writer` and reads on `reader` (the same replica or another), round after round,
/// each round from a warm copy on the reader.
async fn write_then_read(app: &TestApp, writer: &RunningInventory, reader: &RunningInventory) {
    let token = &app.admin_token;
    let (mut writes, mut reads) = (writer.client(), reader.client());
    let mut id = app.create_product(widget(5)).await.id;
    for round in 0..ROUNDS {
        let write = WRITES[round % WRITES.len()];
        warm(&reader.products, &reads, token).await;
        let written = apply(write, &mut writes, token, id, round).await;
        assert_read_back(
            &mut reads,
            token,
            &written,
            &format!("round {round}, {write:?}"),
        )
        .await;
        if let Write::Create = write {
            id = written.0;
        }
        if let Write::Delete = write {
            id = app.create_product(widget(5)).await.id;
        }
    }
}

async fn every_write_is_read_back_at_once_from_a_warm_cache(db: TestDatabase) {
    let app = spawn_app(db).await;
    write_then_read(&app, app.running_inventory(), app.running_inventory()).await;
}

async fn a_write_on_one_replica_is_read_at_once_on_another(db: TestDatabase) {
    let app = spawn_app(db).await;
    let second = start_inventory(app.config.clone()).await;
    write_then_read(&app, &second, app.running_inventory()).await;
    write_then_read(&app, app.running_inventory(), &second).await;
    second.stop().await;
}

async fn an_import_beside_the_server_is_served_when_it_returns(db: TestDatabase) {
    let app = spawn_app(db).await;
    let token = &app.admin_token;
    app.create_product(widget(1)).await;
    let mut inventory = app.inventory();
    warm(app.products(), &inventory, token).await;
    let dump = tempfile::NamedTempFile::new().expect("a file");
    std::fs::write(
        dump.path(),
        r#"[{"model": "shop.product", "pk": 100, "fields": {"name": "Imported", "price": "1.00"}},
            {"model": "shop.product", "pk": 101, "fields": {"name": "Also", "price": "2.00"}}]"#,
    )
    .expect("the dump");
    let report = import_django_file(&app.config, dump.path(), None)
        .await
        .expect("the import");
    assert_eq!(report.imported, 2);
    let ids: Vec<i64> = list(&mut inventory, token)
        .await
        .iter()
        .map(|product| product.id)
        .collect();
    assert_eq!(ids, [1, 100, 101], "the imported products, at once");
}

async fn a_table_too_big_to_keep_is_read_from_the_database(db: TestDatabase) {
    let app = spawn_app_with(db, |config| config.product_cache.max_products = 3).await;
    let token = &app.admin_token;
    let mut inventory = app.inventory();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.create_product(widget(1)).await.id);
    }
    warm(app.products(), &inventory, token).await;
    ids.push(app.create_product(widget(1)).await.id);
    for _ in 0..3 {
        let listed: Vec<i64> = list(&mut inventory, token)
            .await
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(listed, ids, "four products, from the database");
        assert_eq!(app.products().cached(), None, "more than the cache keeps");
    }
    let last = ids.pop().expect("four");
    inventory
        .delete_product(with_token(DeleteProductRequest { id: last }, token))
        .await
        .expect("a delete");
    let listed: Vec<i64> = list(&mut inventory, token)
        .await
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(app.products().cached(), Some(3), "small enough again");
}

async fn without_a_lease_nothing_is_cached(db: TestDatabase) {
    let app = spawn_app_with(db, |config| config.product_cache.lease = Duration::ZERO).await;
    let product = app.create_product(widget(2)).await;
    let mut inventory = app.inventory();
    for _ in 0..3 {
        assert_eq!(
            list(&mut inventory, &app.admin_token).await,
            std::slice::from_ref(&product)
        );
    }
    assert_eq!(app.products().cached(), None);
    assert!(!app.products().is_trusted());
}

/// A connection to the inventory's database, as an operator's `psql` would have.
async fn operator(app: &TestApp) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(app.config.database_url.as_str())
        .await
        .expect("the operator connects")
}

async fn a_replica_whose_feed_connection_broke_misses_no_write_and_recovers(db: TestDatabase) {
    let app = spawn_app(db).await;
    let second = start_inventory(app.config.clone()).await;
    let token = &app.admin_token;
    let product = app.create_product(widget(5)).await;
    let (mut reads, mut writes) = (app.inventory(), second.client());
    let mut sql = operator(&app).await;
    for round in 0..10 {
        warm(app.products(), &reads, token).await;
        // Every feed listener of the database loses its connection; PostgreSQL drops what
        // was announced to it meanwhile.
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .execute(&mut sql)
        .await
        .expect("the operator ends the listeners");
        let written = apply(Write::Adjust, &mut writes, token, product.id, round).await;
        assert_read_back(&mut reads, token, &written, &format!("round {round}")).await;
    }
    warm(app.products(), &reads, token).await;
    second.stop().await;
}

async fn an_operators_own_sql_reaches_the_cache(db: TestDatabase) {
    let app = spawn_app(db).await;
    let token = &app.admin_token;
    let product = app.create_product(widget(5)).await;
    let mut inventory = app.inventory();
    warm(app.products(), &inventory, token).await;
    sqlx::query("UPDATE products SET quantity = 77 WHERE id = $1")
        .bind(product.id)
        .execute(&mut operator(&app).await)
        .await
        .expect("the operator's update");
    // The operator's session waits for no replica, so the drop comes when the replica hears it.
    for _ in 0..500 {
        if get(&mut inventory, token, product.id)
            .await
            .expect("a get")
            .quantity
            == 77
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the operator's update never reached the cache");
}

async fn without_the_database_the_copy_is_not_served(db: TestDatabase) {
    let app = spawn_app(db).await;
    let token = &app.admin_token;
    app.create_product(widget(5)).await;
    let mut inventory = app.inventory();
    warm(app.products(), &inventory, token).await;
    let mut admin = postgres_admin().await;
    let name = database_name(&app);
    let allow = |allowed: bool| {
        format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {}",
            if allowed { "true" } else { "false" }
        )
    };
    sqlx::query(sqlx::AssertSqlSafe(allow(false)))
        .execute(&mut admin)
        .await
        .expect("no new connections");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&mut admin)
        .await
        .expect("every connection ends");
    for _ in 0..500 {
        if !app.products().is_trusted() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!app.products().is_trusted(), "no renewal, no trust");
    let status = inventory
        .list_products(with_token(ListProductsRequest::default(), token))
        .await
        .expect_err("nothing is served from the copy");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    sqlx::query(sqlx::AssertSqlSafe(allow(true)))
        .execute(&mut admin)
        .await
        .expect("connections again");
    warm(app.products(), &inventory, token).await;
}

async fn postgres_admin() -> sqlx::PgConnection {
    let url = std::env::var(service_kit::testing::POSTGRES_URL_VAR).expect("PostgreSQL tests");
    sqlx::PgConnection::connect(&url)
        .await
        .expect("the administrative connection")
}

fn database_name(app: &TestApp) -> String {
    let url = app.config.database_url.as_str();
    let path = url.rsplit('/').next().expect("a database in the URL");
    path.split('?').next().unwrap_or(path).to_owned()
}

/// Writes that overlap wait for the replicas together: one mark, drawn after all their
/// commits, answers for all of them (the feed writer's rounds), and each is still read back.
async fn concurrent_writes_share_their_wait_for_the_replicas(db: TestDatabase) {
    const WRITES: i64 = 16;
    let app = spawn_app(db).await;
    let token = &app.admin_token;
    let product = app.create_product(widget(0)).await;
    let mut inventory = app.inventory();
    warm(app.products(), &inventory, token).await;
    let before = marks_drawn(&app).await;
    let writes = (0..WRITES).map(|_| {
        let mut inventory = app.inventory();
        let request = with_token(
            AdjustStockRequest {
                id: product.id,
                delta: 1,
            },
            token,
        );
        tokio::spawn(async move { inventory.adjust_stock(request).await })
    });
    for write in writes.collect::<Vec<_>>() {
        write
            .await
            .expect("the write ran")
            .expect("the write applied");
    }
    let drawn = marks_drawn(&app).await - before;
    assert!(
        drawn < WRITES,
        "{WRITES} overlapping writes drew {drawn} marks: each waited for the replicas alone"
    );
    let read = get(&mut inventory, token, product.id).await.expect("a get");
    assert_eq!(read.quantity, WRITES);
}

/// How many marks the feed's writers have drawn (the sequence's last value).
async fn marks_drawn(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT last_value FROM inventory_change_marks")
        .fetch_one(&mut operator(app).await)
        .await
        .expect("the marks drawn")
}
