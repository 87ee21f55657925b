//! Who may read and who may write: reading needs an active user; writing needs is_staff or role
//! MANAGER or ADMIN.

use proto::{
    auth::v1::Role,
    inventory::v1::{
        AdjustStockRequest, DeleteProductRequest, GetProductRequest, ListProductsRequest,
        UpdateProductRequest,
    },
    reasons,
};
use service_kit::testing::TestDatabase;
use tonic::Code;

use crate::helpers::{TestApp, assert_reason, spawn_app, widget, with_token};

service_kit::on_both_backends!(
    clerks_read_but_cannot_write,
    managers_admins_and_staff_write,
    inactive_users_are_turned_away,
);

/// Every writing RPC as `token`: the statuses, in order create, update, adjust, delete.
async fn try_every_write(app: &TestApp, token: &str, id: i64) -> Vec<Result<(), tonic::Status>> {
    let mut inventory = app.inventory();
    vec![
        inventory
            .create_product(with_token(widget(1), token))
            .await
            .map(drop),
        inventory
            .update_product(with_token(
                UpdateProductRequest {
                    id,
                    description: Some("changed".to_owned()),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        inventory
            .adjust_stock(with_token(AdjustStockRequest { id, delta: 1 }, token))
            .await
            .map(drop),
        inventory
            .delete_product(with_token(DeleteProductRequest { id }, token))
            .await
            .map(drop),
    ]
}

async fn clerks_read_but_cannot_write(db: TestDatabase) {
    let app = spawn_app(db).await;
    let product = app.create_product(widget(3)).await;
    let clerk = app.user_token("clerk", Role::Clerk, false).await;
    let mut inventory = app.inventory();

    let fetched = inventory
        .get_product(with_token(GetProductRequest { id: product.id }, &clerk))
        .await
        .expect("clerks read");
    assert_eq!(fetched.into_inner(), product);
    inventory
        .list_products(with_token(ListProductsRequest::default(), &clerk))
        .await
        .expect("clerks list");

    for result in try_every_write(&app, &clerk, product.id).await {
        let status = result.expect_err("clerks may not write");
        assert_reason(&status, Code::PermissionDenied, reasons::PERMISSION_DENIED);
        assert_eq!(
            status.message(),
            "You do not have permission to perform this action."
        );
    }
}

async fn managers_admins_and_staff_write(db: TestDatabase) {
    let app = spawn_app(db).await;
    let writers = [
        app.user_token("manager", Role::Manager, false).await,
        app.user_token("admin", Role::Admin, false).await,
        app.user_token("staff-clerk", Role::Clerk, true).await,
        app.admin_token.clone(),
    ];
    for token in &writers {
        let product = app.create_product(widget(3)).await;
        for result in try_every_write(&app, token, product.id).await {
            result.expect("writers write");
        }
    }
}

async fn inactive_users_are_turned_away(db: TestDatabase) {
    let app = spawn_app(db).await;
    let product = app.create_product(widget(3)).await;
    let manager_id = app.create_user("leaver", Role::Manager, false).await;
    let token = app.login_as("leaver").await;
    let mut inventory = app.inventory();
    inventory
        .get_product(with_token(GetProductRequest { id: product.id }, &token))
        .await
        .expect("active users read");

    app.deactivate_user(manager_id).await;
    let status = inventory
        .get_product(with_token(GetProductRequest { id: product.id }, &token))
        .await
        .unwrap_err();
    assert_reason(&status, Code::Unauthenticated, reasons::USER_INACTIVE);
}
