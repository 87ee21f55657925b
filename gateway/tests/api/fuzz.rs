//! Bad input never gives a 5xx: arbitrary JSON values (objects keyed mostly by the routes' own
//! field names, so the values reach the field readers and the services) are posted to every
//! route that takes a body, authenticated as an admin so they get past the 401.

use proptest::{
    collection::{btree_map, vec},
    prelude::*,
    test_runner::{Config, TestRunner},
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, spawn_stack};

/// Field names of the routes, plus arbitrary ones.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "username",
            "email",
            "password",
            "password1",
            "password2",
            "first_name",
            "last_name",
            "role",
            "is_staff",
            "is_active",
            "name",
            "description",
            "price",
            "quantity",
            "delta",
            "old_password",
            "new_password",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,10}",
    ]
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|number| json!(number)),
        "\\PC{0,12}".prop_map(Value::from),
        "-?[0-9]{1,25}(\\.[0-9]{0,6})?".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(field_name(), inner, 0..5)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

#[test]
fn arbitrary_json_never_gets_a_server_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stack, admin, product_id, user_id) = runtime.block_on(async {
        let stack = spawn_stack().await;
        let admin = stack.admin().await;
        let product_id = stack.product(&admin, "Target", 10).await;
        let user = stack
            .post(
                "/users/",
                Some(&admin),
                json!({"username": "target", "password": PASSWORD}),
            )
            .await;
        let user_id = user.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        (stack, admin, product_id, user_id)
    });
    let product = format!("/api/products/{product_id}/");
    let user = format!("/users/{user_id}/");
    let adjust = format!("/api/products/{product_id}/adjust-stock/");
    let routes: Vec<(Method, String)> = [
        (Method::POST, "/api/register/".to_owned()),
        (Method::POST, "/register/".to_owned()),
        (Method::POST, "/api/users/registration/".to_owned()),
        (Method::POST, "/api/signup/".to_owned()),
        (Method::POST, "/api/login/".to_owned()),
        (Method::POST, "/login/".to_owned()),
        (Method::POST, "/api/v1/login/".to_owned()),
        (Method::POST, "/api/users/login/".to_owned()),
        (Method::POST, "/api/api-token-auth/".to_owned()),
        (Method::POST, "/api/password/change/".to_owned()),
        (Method::POST, "/api/products/".to_owned()),
        (Method::PUT, product.clone()),
        (Method::PATCH, product.clone()),
        (Method::POST, adjust.clone()),
        (Method::POST, "/users/".to_owned()),
        (Method::PUT, user.clone()),
        (Method::PATCH, user.clone()),
    ]
    .into();

    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let cases = (prop::sample::select(routes), json_value());
    runner
        .run(&cases, |((method, path), body)| {
            let response =
                runtime.block_on(stack.send(method.clone(), &path, &admin, body.clone()));
            let status = response.status();
            prop_assert!(
                !status.is_server_error(),
                "{method} {path} with {body} answered {status}"
            );
            Ok(())
        })
        .unwrap();
    drop(stack);
}
