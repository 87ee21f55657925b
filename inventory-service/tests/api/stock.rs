//! AdjustStock: one atomic statement, never below zero, no lost updates under contention.

use proto::inventory::v1::{AdjustStockRequest, GetProductRequest};
use proto::reasons::inventory::INSUFFICIENT_STOCK;
use service_kit::testing::{TestDatabase, race::race};
use tonic::Code;

use crate::helpers::{assert_reason, field_errors, spawn_app, widget, with_token};

service_kit::on_both_backends!(
    stock_moves_by_delta_and_never_below_zero,
    concurrent_adjustments_never_oversell,
);

async fn stock_moves_by_delta_and_never_below_zero(db: TestDatabase) {
    let app = spawn_app(db).await;
    let token = &app.admin_token;
    let mut inventory = app.inventory();
    let product = app.create_product(widget(5)).await;
    let adjust = |id, delta| with_token(AdjustStockRequest { id, delta }, token);

    let added = inventory
        .adjust_stock(adjust(product.id, 3))
        .await
        .expect("add");
    assert_eq!(added.get_ref().quantity, 8);
    let removed = inventory
        .adjust_stock(adjust(product.id, -8))
        .await
        .expect("remove");
    assert_eq!(removed.get_ref().quantity, 0);

    let status = inventory
        .adjust_stock(adjust(product.id, -1))
        .await
        .unwrap_err();
    assert_reason(&status, Code::FailedPrecondition, INSUFFICIENT_STOCK);
    let unchanged = inventory
        .get_product(with_token(GetProductRequest { id: product.id }, token))
        .await
        .expect("get");
    assert_eq!(
        unchanged.get_ref().quantity,
        0,
        "a refused adjustment changes nothing"
    );
    assert_eq!(unchanged.get_ref().updated_at, removed.get_ref().updated_at);

    let status = inventory.adjust_stock(adjust(404, 1)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let status = inventory
        .adjust_stock(adjust(product.id, i64::MAX))
        .await
        .unwrap_err();
    assert_eq!(
        field_errors(&status),
        [(
            "delta".to_owned(),
            "Ensure this value is less than or equal to 2147483647.".to_owned()
        )]
    );
}

async fn concurrent_adjustments_never_oversell(db: TestDatabase) {
    let app = spawn_app(db).await;
    let product = app.create_product(widget(50)).await;
    // Each call on a connection of its own, all connected first and released together, so they
    // race in the server instead of queueing on one connection.
    let mut calls = Vec::with_capacity(100);
    for _ in 0..100 {
        let mut inventory = app.own_inventory_connection().await;
        let request = with_token(
            AdjustStockRequest {
                id: product.id,
                delta: -1,
            },
            &app.admin_token,
        );
        calls.push(async move { inventory.adjust_stock(request).await });
    }
    let raced = race(calls).await;
    assert!(raced.overlapped(), "the adjustments never overlapped");
    let (mut succeeded, mut refused) = (0, 0);
    for result in raced.results {
        match result {
            Ok(_) => succeeded += 1,
            Err(status) => {
                assert_reason(&status, Code::FailedPrecondition, INSUFFICIENT_STOCK);
                refused += 1;
            }
        }
    }
    assert_eq!((succeeded, refused), (50, 50));
    let after = app
        .inventory()
        .get_product(with_token(
            GetProductRequest { id: product.id },
            &app.admin_token,
        ))
        .await
        .expect("get");
    assert_eq!(after.get_ref().quantity, 0);
}
