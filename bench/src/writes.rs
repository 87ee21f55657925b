//! Scenario 7: writes through the gateway, by wrk with a Lua script for the POST body (no
//! `Idempotency-Key`: the gateway makes one per write when the client sends none). `POST
//! /api/products/{id}/adjust-stock/` of `{"delta": 1}` on one hot product, and `POST
//! /api/products/` of a new product, each on 1 and on 32 connections, against the database's
//! own one-statement commit rate (`commits`) of an UPDATE of one hot row and of an INSERT.

use crate::{
    commits::{self, Commits},
    database::Backend,
    drive::{self, Load},
    http::HttpRequest,
    report::Report,
    stack::Stack,
    tools::Tools,
};

const CONNECTIONS: [usize; 2] = [1, 32];
const PRODUCT: &str = r#"{"name": "Bench widget", "description": "Made by the bench", "price": "9.99", "quantity": 5}"#;

pub async fn run(
    stack: &Stack,
    backend: &Backend,
    tools: &Tools,
    report: &mut Report,
) -> Result<(), String> {
    let (one, many, setting) = commits::measure(backend, CONNECTIONS[1]).await?;
    let adjust = HttpRequest::post_json(
        stack.gateway.addr(),
        &format!("/api/products/{}/adjust-stock/", stack.product_id),
        Some(&stack.admin_key),
        r#"{"delta": 1}"#.to_owned(),
    );
    let create = HttpRequest::post_json(
        stack.gateway.addr(),
        "/api/products/",
        Some(&stack.admin_key),
        PRODUCT.to_owned(),
    );
    let load = |request: &HttpRequest, connections| {
        Load::Http {
            request: request.clone(),
            connections,
        }
        .into()
    };
    for service in stack.services() {
        service.reset_peak();
    }
    let summaries = drive::in_turns(
        tools,
        &[
            load(&adjust, CONNECTIONS[0]),
            load(&adjust, CONNECTIONS[1]),
            load(&create, CONNECTIONS[0]),
            load(&create, CONNECTIONS[1]),
        ],
    )
    .await?;

    report.heading("7. Writes through the gateway against the database's own commits");
    report.note(&format!("the database's commits: {setting}"));
    let rows = [
        ("adjust-stock, 1 connection", summaries[0]),
        ("UPDATE of one row, 1 connection", one.update),
        ("adjust-stock, 32 connections", summaries[1]),
        ("UPDATE of one row, 32 connections", many.update),
        ("POST /api/products/, 1 connection", summaries[2]),
        ("INSERT, 1 connection", one.insert),
        ("POST /api/products/, 32 connections", summaries[3]),
        ("INSERT, 32 connections", many.insert),
    ];
    report.table(&rows);
    let check = |report: &mut Report, name: &str, at: [usize; 2], baselines: [&Commits; 2]| {
        for (i, baseline) in baselines.iter().enumerate() {
            let (label, figure) = rows[at[i]];
            let of = if name == "adjust-stock" {
                ("UPDATE commits", baseline.update)
            } else {
                ("INSERT commits", baseline.insert)
            };
            report.rate("7 writes", (label, figure), of, 0.50);
        }
        let (label, figure) = rows[at[1]];
        report.p99(
            "7 writes",
            (&format!("{label} p99"), figure.p99),
            ("its p50", figure.p50),
            3.0,
        );
    };
    check(report, "adjust-stock", [0, 2], [&one, &many]);
    check(report, "create", [4, 6], [&one, &many]);
    report.memory(&stack.services());
    Ok(())
}
