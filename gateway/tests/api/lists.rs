//! Lists larger than one gRPC reply: the services return bounded pages, and the gateway reads
//! page after page, so an unpaginated route answers with everything.

use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::testing::TestDatabase;

use crate::helpers::*;

/// A `dumpdata` of `count` products with descriptions of `description_chars`, from id `first`.
fn products(first: u64, count: u64, description_chars: usize) -> Vec<Value> {
    (first..first + count)
        .map(|id| {
            json!({
                "model": "shop.product",
                "pk": id,
                "fields": {
                    "name": format!("Product {id}"),
                    "description": "d".repeat(description_chars),
                    "price": "1.00",
                    "quantity": 1,
                },
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_products_with_long_descriptions_answer_200() {
    let inventory_db = TestDatabase::sqlite();
    // 20,000 products of 600 characters (12 MB, three times a gRPC reply's limit), and 200 of
    // 30,000 (6 MB: more than one reply can carry even at 200).
    let mut dump = products(1, 20_000, 600);
    dump.extend(products(20_001, 200, 30_000));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&dump).unwrap()).unwrap();
    let config =
        inventory_service::Config::for_tests(inventory_db.url(), "http://unused".parse().unwrap());
    inventory_service::import::import_django_file(&config, file.path(), None)
        .await
        .expect("the products load");

    let stack = spawn_stack_on(
        [TestDatabase::sqlite(), inventory_db],
        Hops::Plaintext,
        |_| {},
    )
    .await;
    let token = stack.clerk("reader").await;
    let all = stack.get("/api/inventory/", Some(&token)).await;
    let all = expect_status(all, StatusCode::OK).await;
    let ids: Vec<i64> = all
        .as_array()
        .expect("a plain list")
        .iter()
        .map(|product| product["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 20_200);
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "in id order, none twice"
    );

    // A page larger than the maximum is cut to it, as DRF's max_limit does; a page of large
    // products is still whole.
    let capped = stack.get("/api/products/?limit=5000", Some(&token)).await;
    let capped = expect_status(capped, StatusCode::OK).await;
    assert_eq!(capped["count"], 20_200);
    assert_eq!(capped["results"].as_array().unwrap().len(), 1000);
    assert!(
        capped["next"]
            .as_str()
            .unwrap()
            .ends_with("?limit=1000&offset=1000")
    );
    let large = stack
        .get("/api/products/?limit=200&offset=20000", Some(&token))
        .await;
    let large = expect_status(large, StatusCode::OK).await;
    assert_eq!(large["results"].as_array().unwrap().len(), 200);
}
