//! Each RPC end to end, and the validation messages clients see.

use proto::inventory::v1::{
    CreateProductRequest, DeleteProductRequest, GetProductRequest, ListProductsRequest,
    UpdateProductRequest,
};
use tonic::Code;

use crate::helpers::{TestApp, field_errors, spawn_app, widget, with_token};

service_kit::on_both_backends!(
    spawn_app =>
    products_are_created_read_updated_and_deleted,
    lists_are_ordered_by_id_and_paged_with_a_total,
    unknown_products_are_not_found,
    invalid_products_get_drf_messages,
    null_characters_are_invalid_arguments,
);

/// A NUL in a name or description is INVALID_ARGUMENT with DRF's message on that field, on
/// PostgreSQL (which cannot store one) as on SQLite (which would).
async fn null_characters_are_invalid_arguments(app: TestApp) {
    let token = &app.admin_token;
    let mut inventory = app.inventory();
    let nul = "Null characters are not allowed.".to_owned();
    let request = CreateProductRequest {
        name: Some("Wid\0get".to_owned()),
        description: Some("a\0b".to_owned()),
        ..widget(1)
    };
    let status = inventory
        .create_product(with_token(request, token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        field_errors(&status),
        [
            ("name".to_owned(), nul.clone()),
            ("description".to_owned(), nul.clone())
        ]
    );
    let id = app.create_product(widget(1)).await.id;
    let update = UpdateProductRequest {
        id,
        name: Some("\0".to_owned()),
        ..Default::default()
    };
    let status = inventory
        .update_product(with_token(update, token))
        .await
        .unwrap_err();
    assert_eq!(field_errors(&status), [("name".to_owned(), nul)]);
}

async fn products_are_created_read_updated_and_deleted(app: TestApp) {
    let token = &app.admin_token;
    let mut inventory = app.inventory();

    let created = app.create_product(widget(5)).await;
    assert_eq!(created.name, "Widget");
    assert_eq!(created.description, "A useful widget");
    assert_eq!(created.price, "19.99");
    assert_eq!(created.quantity, 5);
    assert!(created.created_at.is_some());
    assert_eq!(created.created_at, created.updated_at);

    let fetched = inventory
        .get_product(with_token(GetProductRequest { id: created.id }, token))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched, created);

    let update = UpdateProductRequest {
        id: created.id,
        price: Some("5".to_owned()),
        ..Default::default()
    };
    let updated = inventory
        .update_product(with_token(update, token))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.price, "5.00", "only the price changes");
    assert_eq!(
        (updated.name.as_str(), updated.quantity),
        ("Widget", 5),
        "unset fields stay"
    );
    assert_eq!(updated.created_at, created.created_at);

    inventory
        .delete_product(with_token(DeleteProductRequest { id: created.id }, token))
        .await
        .expect("delete");
    let gone = inventory
        .get_product(with_token(GetProductRequest { id: created.id }, token))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

async fn lists_are_ordered_by_id_and_paged_with_a_total(app: TestApp) {
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let product = CreateProductRequest {
            name: Some(name.to_owned()),
            ..widget(1)
        };
        ids.push(app.create_product(product).await.id);
    }
    let list = |limit, offset| {
        let mut inventory = app.inventory();
        let token = app.admin_token.clone();
        async move {
            inventory
                .list_products(with_token(
                    ListProductsRequest {
                        limit,
                        offset,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("list")
                .into_inner()
        }
    };

    let everything = list(None, 0).await;
    assert_eq!(everything.total_count, 3);
    let listed: Vec<i64> = everything.products.iter().map(|p| p.id).collect();
    assert_eq!(listed, ids);

    let page = list(Some(1), 1).await;
    assert_eq!(page.total_count, 3);
    assert_eq!(page.products.len(), 1);
    assert_eq!(page.products[0].id, ids[1]);

    let past_the_end = list(Some(10), 5).await;
    assert_eq!(
        (past_the_end.products.len(), past_the_end.total_count),
        (0, 3)
    );
}

async fn unknown_products_are_not_found(app: TestApp) {
    let token = &app.admin_token;
    let mut inventory = app.inventory();
    let statuses = [
        inventory
            .get_product(with_token(GetProductRequest { id: 404 }, token))
            .await
            .unwrap_err(),
        inventory
            .update_product(with_token(
                UpdateProductRequest {
                    id: 404,
                    ..Default::default()
                },
                token,
            ))
            .await
            .unwrap_err(),
        inventory
            .delete_product(with_token(DeleteProductRequest { id: 404 }, token))
            .await
            .unwrap_err(),
    ];
    for status in statuses {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert_eq!(status.message(), "No Product matches the given query.");
    }
}

async fn invalid_products_get_drf_messages(app: TestApp) {
    let token = &app.admin_token;
    let mut inventory = app.inventory();
    let create = |request: CreateProductRequest| {
        let mut inventory = inventory.clone();
        async move {
            let status = inventory
                .create_product(with_token(request, token))
                .await
                .unwrap_err();
            field_errors(&status)
        }
    };
    let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(f, m)| ((*f).to_owned(), (*m).to_owned()))
            .collect()
    };

    assert_eq!(
        create(CreateProductRequest::default()).await,
        pairs(&[
            ("name", "This field is required."),
            ("price", "This field is required."),
        ])
    );
    let long_name = "x".repeat(201);
    let cases = [
        (
            "  ",
            "abc",
            "This field may not be blank.",
            "A valid number is required.",
        ),
        (
            long_name.as_str(),
            "19.999",
            "Ensure this field has no more than 200 characters.",
            "Ensure that there are no more than 2 decimal places.",
        ),
    ];
    for (name, price, name_message, price_message) in cases {
        let request = CreateProductRequest {
            name: Some(name.to_owned()),
            price: Some(price.to_owned()),
            ..widget(0)
        };
        assert_eq!(
            create(request).await,
            pairs(&[("name", name_message), ("price", price_message)])
        );
    }
    let negative = CreateProductRequest {
        price: Some("-1".to_owned()),
        quantity: Some(-1),
        ..widget(0)
    };
    assert_eq!(
        create(negative).await,
        pairs(&[
            ("price", "Ensure this value is greater than or equal to 0."),
            (
                "quantity",
                "Ensure this value is greater than or equal to 0."
            ),
        ])
    );

    let product = app.create_product(widget(1)).await;
    let blank_name = UpdateProductRequest {
        id: product.id,
        name: Some(String::new()),
        ..Default::default()
    };
    let status = inventory
        .update_product(with_token(blank_name, token))
        .await
        .unwrap_err();
    assert_eq!(
        field_errors(&status),
        pairs(&[("name", "This field may not be blank.")])
    );
}
