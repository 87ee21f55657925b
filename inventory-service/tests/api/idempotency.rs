//! Writes with `idempotency-key` metadata: a repeat gets the first answer and changes nothing,
//! also when the first answer was lost on the way, when the repeat races the first on another
//! replica, and when the first was refused; a key reused with another request is refused; keys
//! are per user; an expired key is forgotten.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use proto::{
    auth::v1::Role,
    idempotency::{METADATA_KEY, REPLAYED_KEY, REUSED},
    inventory::v1::{
        AdjustStockRequest, DeleteProductRequest, GetProductRequest, ListProductsRequest,
        UpdateProductRequest, inventory_service_client::InventoryServiceClient,
    },
    reasons::inventory::INSUFFICIENT_STOCK,
};
use service_kit::testing::{TestDatabase, race::race};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tonic::{Code, Request, transport::Endpoint};

use crate::helpers::{
    TestApp, assert_reason, field_errors, spawn_app, spawn_app_with, start_inventory, widget,
    with_token,
};

service_kit::on_both_backends!(
    a_repeated_adjustment_applies_once,
    a_repeated_create_makes_one_product,
    every_write_answers_a_repeat_alike,
    a_key_reused_with_another_request_is_refused,
    a_refusal_is_answered_again,
    keys_are_per_user,
    an_expired_key_is_forgotten,
    a_malformed_key_is_invalid_argument,
    an_adjustment_retried_after_a_lost_answer_applies_once,
    duplicates_racing_on_two_replicas_apply_once,
);

/// `message` from `token` with `idempotency-key: key`.
fn keyed<T>(message: T, token: &str, key: &str) -> Request<T> {
    let mut request = with_token(message, token);
    request
        .metadata_mut()
        .insert(METADATA_KEY, key.parse().expect("ASCII metadata"));
    request
}

fn adjust(id: i64, delta: i64) -> AdjustStockRequest {
    AdjustStockRequest { id, delta }
}

async fn quantity(app: &TestApp, id: i64) -> i64 {
    app.inventory()
        .get_product(with_token(GetProductRequest { id }, &app.admin_token))
        .await
        .expect("get")
        .into_inner()
        .quantity
}

async fn a_repeated_adjustment_applies_once(db: TestDatabase) {
    let app = spawn_app(db).await;
    let token = &app.admin_token;
    let product = app.create_product(widget(10)).await;
    let mut inventory = app.inventory();

    let first = inventory
        .adjust_stock(keyed(adjust(product.id, 5), token, "add-5"))
        .await
        .expect("the first applies");
    assert!(first.metadata().get(REPLAYED_KEY).is_none());
    let first = first.into_inner();
    let again = inventory
        .adjust_stock(keyed(adjust(product.id, 5), token, "add-5"))
        .await
        .expect("the repeat is answered");
    assert_eq!(again.metadata().get(REPLAYED_KEY).unwrap(), "true");
    let again = again.into_inner();
    assert_eq!(first.quantity, 15);
    assert_eq!(
        again, first,
        "the repeat gets the first answer, updated_at and all"
    );
    assert_eq!(quantity(&app, product.id).await, 15, "applied once");

    // Without a key, the same request is a new adjustment each time.
    for expected in [20, 25] {
        let unkeyed = inventory
            .adjust_stock(with_token(adjust(product.id, 5), token))
            .await
            .expect("applies");
        assert_eq!(unkeyed.get_ref().quantity, expected);
    }
}

async fn a_repeated_create_makes_one_product(db: TestDatabase) {
    let app = spawn_app(db).await;
    let mut inventory = app.inventory();
    let create = || keyed(widget(3), &app.admin_token, "create-widget");
    let first = inventory.create_product(create()).await.expect("created");
    let again = inventory.create_product(create()).await.expect("answered");
    assert_eq!(
        again.get_ref(),
        first.get_ref(),
        "the same product, same id"
    );
    let listed = inventory
        .list_products(with_token(ListProductsRequest::default(), &app.admin_token))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.total_count, 1);
}

/// UpdateProduct and DeleteProduct: the repeat of an update is answered with the product as the
/// update left it (not as it is now), and the repeat of a delete with its success, though the
/// product is gone.
async fn every_write_answers_a_repeat_alike(db: TestDatabase) {
    let app = spawn_app(db).await;
    let token = &app.admin_token;
    let product = app.create_product(widget(1)).await;
    let mut inventory = app.inventory();
    let rename = || {
        keyed(
            UpdateProductRequest {
                id: product.id,
                name: Some("Gadget".to_owned()),
                ..Default::default()
            },
            token,
            "rename",
        )
    };
    let renamed = inventory.update_product(rename()).await.expect("updated");
    inventory
        .adjust_stock(with_token(adjust(product.id, 1), token))
        .await
        .expect("a later change");
    let again = inventory.update_product(rename()).await.expect("answered");
    assert_eq!(again.get_ref(), renamed.get_ref());
    assert_eq!(again.get_ref().quantity, 1, "as the update left it");

    let delete = || keyed(DeleteProductRequest { id: product.id }, token, "delete");
    inventory.delete_product(delete()).await.expect("deleted");
    inventory
        .delete_product(delete())
        .await
        .expect("the repeat succeeds as the first did");
    let unkeyed = inventory
        .delete_product(with_token(DeleteProductRequest { id: product.id }, token))
        .await
        .unwrap_err();
    assert_eq!(unkeyed.code(), Code::NotFound, "the product is gone");
}

async fn a_key_reused_with_another_request_is_refused(db: TestDatabase) {
    let app = spawn_app(db).await;
    let token = &app.admin_token;
    let product = app.create_product(widget(10)).await;
    let mut inventory = app.inventory();
    inventory
        .adjust_stock(keyed(adjust(product.id, 5), token, "k"))
        .await
        .expect("applies");
    let status = inventory
        .adjust_stock(keyed(adjust(product.id, 6), token, "k"))
        .await
        .unwrap_err();
    assert_reason(&status, Code::FailedPrecondition, REUSED);
    assert_eq!(quantity(&app, product.id).await, 15, "nothing more applied");

    // A key is per method: the same key on another write is another key.
    inventory
        .create_product(keyed(widget(1), token, "k"))
        .await
        .expect("another method, another key");
}

/// A refusal the request earned (not enough stock) is the answer too: the repeat is refused
/// again, even once there is stock enough.
async fn a_refusal_is_answered_again(db: TestDatabase) {
    let app = spawn_app(db).await;
    let token = &app.admin_token;
    let product = app.create_product(widget(5)).await;
    let mut inventory = app.inventory();
    let take = || keyed(adjust(product.id, -10), token, "take-10");
    let status = inventory.adjust_stock(take()).await.unwrap_err();
    assert_reason(&status, Code::FailedPrecondition, INSUFFICIENT_STOCK);
    inventory
        .adjust_stock(with_token(adjust(product.id, 10), token))
        .await
        .expect("restocked");
    let again = inventory.adjust_stock(take()).await.unwrap_err();
    assert_reason(&again, Code::FailedPrecondition, INSUFFICIENT_STOCK);
    assert_eq!(again.message(), status.message());
    assert_eq!(quantity(&app, product.id).await, 15);
}

async fn keys_are_per_user(db: TestDatabase) {
    let app = spawn_app(db).await;
    let manager = app.user_token("manager", Role::Manager, false).await;
    let product = app.create_product(widget(0)).await;
    let mut inventory = app.inventory();
    let by_admin = inventory
        .adjust_stock(keyed(adjust(product.id, 1), &app.admin_token, "shared"))
        .await
        .expect("the admin's applies");
    let by_manager = inventory
        .adjust_stock(keyed(adjust(product.id, 2), &manager, "shared"))
        .await
        .expect("the manager's applies: another user's key");
    assert_eq!(
        (by_admin.get_ref().quantity, by_manager.get_ref().quantity),
        (1, 3)
    );
}

async fn an_expired_key_is_forgotten(db: TestDatabase) {
    let app = spawn_app_with(db, |config| config.idempotency_key_ttl = Duration::ZERO).await;
    let token = &app.admin_token;
    let product = app.create_product(widget(0)).await;
    let mut inventory = app.inventory();
    for expected in [5, 10] {
        let adjusted = inventory
            .adjust_stock(keyed(adjust(product.id, 5), token, "k"))
            .await
            .expect("applies: the key expired at once");
        assert_eq!(adjusted.get_ref().quantity, expected);
    }
    inventory
        .adjust_stock(keyed(adjust(product.id, 7), token, "k"))
        .await
        .expect("an expired key may carry another request");
}

async fn a_malformed_key_is_invalid_argument(db: TestDatabase) {
    let app = spawn_app(db).await;
    let token = &app.admin_token;
    let product = app.create_product(widget(0)).await;
    let mut inventory = app.inventory();
    for (key, message) in [
        (
            "k".repeat(256),
            "Idempotency-Key must be at most 255 characters long.",
        ),
        (
            "tab\there".to_owned(),
            "Idempotency-Key must be printable ASCII characters only.",
        ),
    ] {
        let status = inventory
            .adjust_stock(keyed(adjust(product.id, 1), token, &key))
            .await
            .unwrap_err();
        assert_eq!(
            field_errors(&status),
            [(METADATA_KEY.to_owned(), message.to_owned())]
        );
    }
    assert_eq!(quantity(&app, product.id).await, 0);
}

/// A proxy to `upstream` for one connection that can stop passing the server's bytes on: what
/// the client then sends still arrives, and the answers are lost.
struct LossyProxy {
    addr: std::net::SocketAddr,
    answers_lost: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl LossyProxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound");
        let answers_lost = Arc::new(AtomicBool::new(false));
        let lost = Arc::clone(&answers_lost);
        let task = tokio::spawn(async move {
            let (client, _) = listener.accept().await.expect("the client connects");
            let server = TcpStream::connect(upstream).await.expect("upstream");
            let (mut client_reads, mut client_writes) = client.into_split();
            let (mut server_reads, mut server_writes) = server.into_split();
            let requests = tokio::io::copy(&mut client_reads, &mut server_writes);
            let answers = async {
                let mut buffer = [0; 16 * 1024];
                loop {
                    let read = server_reads.read(&mut buffer).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    if !lost.load(Ordering::SeqCst)
                        && client_writes.write_all(&buffer[..read]).await.is_err()
                    {
                        return;
                    }
                }
            };
            let _ = tokio::join!(requests, answers);
        });
        Self {
            addr,
            answers_lost,
            task,
        }
    }
}

/// The named case: the first AdjustStock reaches the service and applies, its answer never
/// reaches the client (the connection dies), the client retries with the same key: the stock
/// moved once, and the retry gets the answer the first call lost.
async fn an_adjustment_retried_after_a_lost_answer_applies_once(db: TestDatabase) {
    let app = spawn_app(db).await;
    let token = app.admin_token.clone();
    let product = app.create_product(widget(10)).await;
    let proxy = LossyProxy::start(app.inventory_addr()).await;
    let channel = Endpoint::from_shared(format!("http://{}", proxy.addr))
        .expect("a valid URL")
        .connect()
        .await
        .expect("connects through the proxy");
    let mut through_proxy = InventoryServiceClient::new(channel);
    // One call first, so the HTTP/2 handshake is behind us when the answers start to be lost.
    through_proxy
        .get_product(with_token(GetProductRequest { id: product.id }, &token))
        .await
        .expect("answered through the proxy");

    proxy.answers_lost.store(true, Ordering::SeqCst);
    let request = keyed(adjust(product.id, 5), &token, "lost-answer");
    let lost_call = tokio::spawn(async move { through_proxy.adjust_stock(request).await });
    let mut applied = false;
    for _ in 0..1000 {
        if quantity(&app, product.id).await == 15 {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(applied, "the first call never reached the service");
    proxy.task.abort();
    lost_call
        .await
        .expect("the call ends")
        .expect_err("its answer was lost");

    let retried = app
        .inventory()
        .adjust_stock(keyed(adjust(product.id, 5), &token, "lost-answer"))
        .await
        .expect("the retry is answered")
        .into_inner();
    assert_eq!(retried.quantity, 15, "the answer the first call lost");
    assert_eq!(quantity(&app, product.id).await, 15, "applied once");
}

/// Two replicas on one database, each sent the same keyed adjustment at the same moment, for
/// many keys: every pair applies once and both of its callers get the same answer.
async fn duplicates_racing_on_two_replicas_apply_once(db: TestDatabase) {
    const PAIRS: usize = 20;
    // Two servers share a SQLite file only if neither caches products (one that does holds
    // the file alone); on PostgreSQL both cache, on the product feed.
    let app = spawn_app_with(db, |config| {
        if config.database_url.as_str().starts_with("sqlite") {
            config.product_cache.lease = Duration::ZERO;
        }
    })
    .await;
    let second = start_inventory(app.config.clone()).await;
    let product = app.create_product(widget(0)).await;
    let mut calls = Vec::with_capacity(2 * PAIRS);
    for pair in 0..PAIRS {
        for replica in [app.own_inventory_connection().await, second.client()] {
            let mut replica = replica;
            let request = keyed(
                adjust(product.id, 1),
                &app.admin_token,
                &format!("pair-{pair}"),
            );
            calls.push(async move { replica.adjust_stock(request).await });
        }
    }
    let raced = race(calls).await;
    assert!(raced.overlapped(), "the duplicates never overlapped");
    let answers: Vec<_> = raced
        .results
        .into_iter()
        .map(|answer| answer.expect("every duplicate is answered").into_inner())
        .collect();
    for pair in answers.chunks(2) {
        assert_eq!(pair[0], pair[1], "both callers of a pair get one answer");
    }
    assert_eq!(
        quantity(&app, product.id).await,
        PAIRS as i64,
        "each key applied once"
    );
}
