//! The store on a real database: [`ADJUST_STOCK`] and a keyed AdjustStock in two transactions
//! interleaved by hand, and the readers across a database that dropped its connections, on
//! PostgreSQL (SQLite lets one writer at a time hold the whole database, so two of its writes
//! never interleave); expired idempotency keys purged, on both.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use service_kit::{idempotency::Keyed, testing::TestDatabase, time::UnixMicros};
use sqlx::{AnyConnection, Connection, Row};
use tokio::sync::oneshot;
use tonic::{Code, Request, Response, Status};

use super::{Page, ProductStore, writes::ADJUST_STOCK};
use crate::{
    domain::{NewProduct, Price, ProductName, Quantity, StockDelta},
    error::InventoryError,
};

/// A product with `quantity` in stock; its id.
async fn product(store: &ProductStore, quantity: i64) -> i64 {
    let product = NewProduct {
        name: ProductName::parse(Some("Widget".to_owned())).unwrap(),
        description: String::new(),
        price: Price::parse("1.00").unwrap(),
        quantity: Quantity::parse(quantity).unwrap(),
    };
    let mut connection = store.pool.acquire().await.unwrap();
    ProductStore::create(&mut connection, &product, SystemTime::now())
        .await
        .unwrap()
        .id
}

/// The guarded UPDATE on `connection`: the new quantity, or `None` when the guard refused.
async fn adjust(connection: &mut AnyConnection, id: i64, delta: i64) -> Option<i64> {
    sqlx::query(ADJUST_STOCK)
        .bind(delta)
        .bind(UnixMicros::now().0)
        .bind(id)
        .bind(Quantity::MAX)
        .fetch_optional(connection)
        .await
        .expect("the UPDATE runs")
        .map(|row| row.get("quantity"))
}

async fn begin(url: &str) -> AnyConnection {
    let mut connection = AnyConnection::connect(url).await.unwrap();
    sqlx::raw_sql("BEGIN")
        .execute(&mut connection)
        .await
        .unwrap();
    connection
}

async fn end(connection: &mut AnyConnection, statement: &'static str) {
    sqlx::raw_sql(statement).execute(connection).await.unwrap();
}

/// Waits (at most 10 s) until some session of this database waits for a row lock.
async fn until_one_waits_for_a_lock(url: &str) {
    let mut observer = AnyConnection::connect(url).await.unwrap();
    for _ in 0..1000 {
        let waiting: i64 = sqlx::query(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut observer)
        .await
        .unwrap()
        .get(0);
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the second transaction never waited for the first");
}

/// One in stock, two transactions take one each: the second UPDATE waits for the first's
/// row lock, then PostgreSQL re-checks its WHERE against the committed row (now 0), so the
/// guard refuses it instead of selling stock that is gone. And when the first rolls back,
/// the second sees the stock it left and takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_transactions_never_take_the_last_item_twice() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let store = ProductStore::connect(db.url()).await.unwrap();
    for (first_ends_with, second_gets, left) in [("COMMIT", None, 0), ("ROLLBACK", Some(0), 0)] {
        let id = product(&store, 1).await;
        let mut first = begin(db.url()).await;
        let mut second = begin(db.url()).await;
        assert_eq!(adjust(&mut first, id, -1).await, Some(0));
        let waiting = tokio::spawn(async move {
            let taken = adjust(&mut second, id, -1).await;
            end(&mut second, "COMMIT").await;
            taken
        });
        until_one_waits_for_a_lock(db.url()).await;
        end(&mut first, first_ends_with).await;
        assert_eq!(
            waiting.await.unwrap(),
            second_gets,
            "after the first's {first_ends_with}"
        );
        let stored = store.get(id).await.expect("the product");
        assert_eq!(stored.quantity.value(), left, "after {first_ends_with}");
    }
}

/// The database dropping every connection (as a restart does) costs no read and no write:
/// a reader finding its connection broken reads again on a new one, and the pool checks a
/// connection before it hands it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_dropped_its_connections_costs_no_call() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let store = ProductStore::connect(db.url()).await.unwrap();
    let id = product(&store, 3).await;
    let first_page = Page {
        limit: 10,
        offset: 0,
    };
    store.get(id).await.expect("a reader is opened");
    store.list(first_page, true).await.expect("and lent again");

    let mut admin = AnyConnection::connect(db.url()).await.unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        terminated.len() >= 2,
        "the readers and the pool: {terminated:?}"
    );

    let stored = store.get(id).await.expect("read on a new connection");
    assert_eq!(stored.quantity.value(), 3);
    let listed = store.list(first_page, true).await.expect("listed");
    assert_eq!((listed.products.len(), listed.total), (1, Some(1)));
    product(&store, 1).await;
}

/// AdjustStock +5 on `connection`: the new quantity (an `i64` is a message, Int64Value,
/// which the idempotency store can keep).
async fn add_five(connection: &mut AnyConnection, id: i64) -> Result<i64, InventoryError> {
    let delta = StockDelta::parse(5).unwrap();
    let product = ProductStore::adjust_stock(connection, id, delta, SystemTime::now()).await?;
    Ok(product.quantity.value())
}

fn keyed(key: &str, id: i64) -> Option<Keyed> {
    let mut request = Request::new(proto::inventory::v1::AdjustStockRequest { id, delta: 5 });
    request
        .metadata_mut()
        .insert(proto::idempotency::METADATA_KEY, key.parse().unwrap());
    Keyed::of(&request, 1, "AdjustStock").unwrap()
}

/// A duplicate that arrives while the first keyed write is in its transaction waits for
/// it on the key (no polling): when the first commits, the duplicate gets its answer and
/// never runs; when the first fails (the service's fault, so nothing is kept), the
/// duplicate applies instead. Either way the stock moves once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_waits_for_the_first_then_gets_its_answer_or_applies() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let store = ProductStore::connect(db.url()).await.unwrap();
    let writes = store.writes(Duration::from_secs(60));
    for (key, first_fails) in [("commits", false), ("fails", true)] {
        let id = product(&store, 0).await;
        let (applied, first_applied) = oneshot::channel::<()>();
        let (release, released) = oneshot::channel::<()>();
        let first = tokio::spawn({
            let (writes, keyed) = (writes.clone(), keyed(key, id));
            async move {
                writes
                    .run(keyed, move |connection| {
                        Box::pin(async move {
                            let added = add_five(connection, id).await?;
                            applied.send(()).unwrap();
                            released.await.unwrap();
                            if first_fails {
                                return Err(InventoryError::AuthUnavailable(Status::unavailable(
                                    "gone",
                                )));
                            }
                            Ok(added)
                        })
                    })
                    .await
            }
        });
        first_applied.await.unwrap();
        let second_ran = Arc::new(AtomicBool::new(false));
        let second = tokio::spawn({
            let (writes, keyed, ran) = (writes.clone(), keyed(key, id), second_ran.clone());
            async move {
                writes
                    .run(keyed, move |connection| {
                        Box::pin(async move {
                            ran.store(true, Ordering::SeqCst);
                            add_five(connection, id).await
                        })
                    })
                    .await
            }
        });
        until_one_waits_for_a_lock(db.url()).await;
        release.send(()).unwrap();
        let first = first.await.unwrap().map(Response::into_inner);
        let second = second
            .await
            .unwrap()
            .expect("the duplicate is answered")
            .into_inner();
        assert_eq!(second, 5, "{key}");
        if first_fails {
            assert_eq!(first.unwrap_err().code(), Code::Unavailable);
            assert!(second_ran.load(Ordering::SeqCst), "the duplicate applied");
        } else {
            assert_eq!(first.unwrap(), second, "the first's answer");
            assert!(
                !second_ran.load(Ordering::SeqCst),
                "the duplicate never ran"
            );
        }
        let stored = store.get(id).await.expect("the product");
        assert_eq!(stored.quantity.value(), 5, "moved once ({key})");
    }
}

/// A key is purged once expired, and not before; on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_are_purged() {
    let databases = [Some(TestDatabase::sqlite()), TestDatabase::postgres().await];
    for db in databases.into_iter().flatten() {
        let store = ProductStore::connect(db.url()).await.unwrap();
        let id = product(&store, 0).await;
        for (key, ttl) in [
            ("forgotten", Duration::ZERO),
            ("kept", Duration::from_secs(60)),
        ] {
            store
                .writes(ttl)
                .run(keyed(key, id), move |connection| {
                    Box::pin(add_five(connection, id))
                })
                .await
                .unwrap();
        }
        let writes = store.writes(Duration::ZERO);
        assert_eq!(writes.purge_expired(SystemTime::now()).await.unwrap(), 1);
        assert_eq!(writes.purge_expired(SystemTime::now()).await.unwrap(), 0);
    }
}
