//! `import-django`: products of a real Django `dumpdata` (tests/fixtures/django, made by
//! scripts/django_fixtures), then served over gRPC as any product.

use std::{path::PathBuf, process::Command};

use inventory_service::{import::import_django_file, store::ImportReport};
use proto::inventory::v1::{DeleteProductRequest, GetProductRequest, ListProductsRequest};
use service_kit::testing::{TestDatabase, output_with_input};

use crate::helpers::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/django")
        .join(name)
}

async fn product_count(app: &TestApp) -> usize {
    app.inventory()
        .list_products(with_token(ListProductsRequest::default(), &app.admin_token))
        .await
        .unwrap()
        .into_inner()
        .products
        .len()
}

async fn products_keep_ids_and_exact_prices_and_new_ids_follow(db: TestDatabase) {
    let app = spawn_app(db).await;
    let report = import_django_file(&app.config, &fixture("products.json"), None)
        .await
        .unwrap();
    assert_eq!(
        report,
        ImportReport {
            imported: 4,
            skipped: 0
        }
    );
    let widget = app
        .inventory()
        .get_product(with_token(GetProductRequest { id: 1 }, &app.admin_token))
        .await
        .expect("the imported id")
        .into_inner();
    assert_eq!(widget.name, "Widget");
    assert_eq!(widget.price, "19.99");
    assert_eq!(widget.quantity, 42);
    assert_eq!(
        widget.description,
        "A small widget.\nSecond line, with \"quotes\" & ünïcödé."
    );
    let listed = app
        .inventory()
        .list_products(with_token(ListProductsRequest::default(), &app.admin_token))
        .await
        .unwrap()
        .into_inner()
        .products;
    let summary: Vec<_> = listed
        .iter()
        .map(|p| (p.id, p.price.as_str(), p.quantity))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "19.99", 42),
            (3, "0.50", 1000),
            (4, "1234.00", 0),
            (5, "99999999.99", 7)
        ],
        "ids kept (2 was deleted in Django), prices exact"
    );
    let created = app.create_product(widget_named("After the import")).await;
    assert_eq!(created.id, 6, "the id sequence continues after the highest");

    let again = import_django_file(&app.config, &fixture("products.json"), None)
        .await
        .unwrap();
    assert_eq!(
        again,
        ImportReport {
            imported: 0,
            skipped: 4
        }
    );
    assert_eq!(product_count(&app).await, 5);
}

/// Imports `file` (of `model`), which must be refused with a message that starts with
/// `expected`.
async fn assert_refused(app: &TestApp, file: &str, model: Option<&str>, expected: &str) {
    let err = import_django_file(&app.config, &fixture(file), model)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(expected), "{err}");
}

fn widget_named(name: &str) -> proto::inventory::v1::CreateProductRequest {
    proto::inventory::v1::CreateProductRequest {
        name: Some(name.to_owned()),
        ..widget(1)
    }
}

async fn a_bad_record_or_a_taken_id_writes_nothing(db: TestDatabase) {
    let app = spawn_app(db).await;
    assert_refused(
        &app,
        "shop_items.json",
        Some("shop.item"),
        "shop.item pk 3, field stock: Ensure this value is greater than or equal to 0.",
    )
    .await;
    assert_eq!(product_count(&app).await, 0);

    // Products 1 and 3 exist here with other names: the first import record that meets one
    // refuses the whole file.
    for name in ["Local one", "Local two", "Local three"] {
        app.create_product(widget_named(name)).await;
    }
    assert_refused(
        &app,
        "products.json",
        None,
        "inventory.product pk 1, field pk: id 1 is held by product \"Local one\" here",
    )
    .await;
    assert_eq!(product_count(&app).await, 3);
}

/// A refusal met after some records were written takes them back: the import is one
/// transaction.
async fn an_import_refused_after_some_inserts_writes_nothing(db: TestDatabase) {
    let app = spawn_app(db).await;
    // Only id 3 is held here, by another product: the dump's pk 1 goes in before its pk 3 is
    // refused.
    for name in ["Local one", "Local two", "Local three"] {
        app.create_product(widget_named(name)).await;
    }
    for id in [1, 2] {
        app.inventory()
            .delete_product(with_token(DeleteProductRequest { id }, &app.admin_token))
            .await
            .unwrap();
    }
    assert_refused(
        &app,
        "products.json",
        None,
        "inventory.product pk 3, field pk: id 3 is held by product \"Local three\"",
    )
    .await;
    assert_eq!(product_count(&app).await, 1);
    let status = app
        .inventory()
        .get_product(with_token(GetProductRequest { id: 1 }, &app.admin_token))
        .await
        .expect_err("pk 1 of the refused import is not kept");
    assert_eq!(status.code(), tonic::Code::NotFound);
}

async fn the_command_reads_standard_input(db: TestDatabase) {
    let app = spawn_app(db).await;
    let run = |args: &[&str], input: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_inventory-service"));
        command
            .arg("import-django")
            .args(args)
            .env("INVENTORY_DATABASE_URL", app.config.database_url.as_str());
        output_with_input(&mut command, input)
    };
    let items = std::fs::read_to_string(fixture("shop_items.json")).unwrap();
    let refused = run(&["-", "--model", "shop.item"], &items);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("shop.item pk 3, field stock"),
        "{refused:?}"
    );
    let products = std::fs::read_to_string(fixture("products.json")).unwrap();
    let imported = run(&["-"], &products);
    assert!(imported.status.success(), "{imported:?}");
    assert_eq!(
        String::from_utf8_lossy(&imported.stdout),
        "Imported 4 products; skipped 0 already there.\n"
    );
    assert_eq!(product_count(&app).await, 4);
}

async fn a_list_call_returns_at_most_the_maximum_page(db: TestDatabase) {
    let app = spawn_app(db).await;
    let dump: Vec<serde_json::Value> = (1..=1200)
        .map(|id| {
            serde_json::json!({"model": "shop.product", "pk": id,
                "fields": {"name": format!("P{id}"), "price": "1.00"}})
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&dump).unwrap()).unwrap();
    import_django_file(&app.config, file.path(), None)
        .await
        .unwrap();
    for limit in [None, Some(5000)] {
        let page = app
            .inventory()
            .list_products(with_token(
                ListProductsRequest {
                    limit,
                    offset: 0,
                    ..Default::default()
                },
                &app.admin_token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.products.len(), 1000, "limit {limit:?}");
        assert_eq!(page.total_count, 1200);
        assert!(page.more);
    }
    let rest = app
        .inventory()
        .list_products(with_token(
            ListProductsRequest {
                limit: None,
                offset: 1000,
                skip_total_count: true,
            },
            &app.admin_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.products.len(), 200);
    assert_eq!(rest.total_count, 0, "not counted when not asked");
    assert!(!rest.more, "the last page");
}

service_kit::on_both_backends!(
    a_list_call_returns_at_most_the_maximum_page,
    products_keep_ids_and_exact_prices_and_new_ids_follow,
    a_bad_record_or_a_taken_id_writes_nothing,
    an_import_refused_after_some_inserts_writes_nothing,
    the_command_reads_standard_input,
);
