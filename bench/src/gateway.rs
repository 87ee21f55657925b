//! Scenario 1: an authenticated `GET /api/inventory/` of 20 products through the gateway (a
//! ValidateToken call to auth, then ListProducts on inventory, which validates again) against
//! the machine's limit (axum answering the same bytes) and the two-hop floor (axum making one
//! tonic call for them), all driven by `wrk -t2 -c32`. The bench's own generator is also run
//! on the axum baseline, so that its ceiling on this machine is printed beside wrk's.

use crate::{
    baseline::Baselines,
    drive::{self, Load, Target},
    http::HttpRequest,
    report::Report,
    stack::{INVENTORY_PATH, Stack},
    tools::Tools,
};

const CONNECTIONS: usize = 32;
/// The floor's p99 times this is the gateway's most.
const P99_OVER_FLOOR: f64 = 1.2;

pub async fn run(
    stack: &Stack,
    baselines: &Baselines,
    tools: &Tools,
    report: &mut Report,
) -> Result<(), String> {
    let list = |addr| Load::Http {
        request: HttpRequest::get(addr, INVENTORY_PATH, Some(&stack.admin_key)),
        connections: CONNECTIONS,
    };
    let mut targets: Vec<Target> = vec![
        list(stack.gateway.addr()).into(),
        list(baselines.floor).into(),
        list(baselines.http).into(),
    ];
    let proving = tools.wrk.is_some();
    if proving {
        targets.push(list(baselines.http).own());
    }
    for service in stack.services() {
        service.reset_peak();
    }
    let summaries = drive::in_turns(tools, &targets).await?;
    let (gateway, floor, axum) = (summaries[0], summaries[1], summaries[2]);

    report.heading(&format!(
        "1. GET {INVENTORY_PATH}, 20 products, HTTP/1.1 keep-alive, {CONNECTIONS} connections"
    ));
    let mut rows = vec![
        ("gateway (auth + inventory over gRPC)", gateway),
        ("two-hop floor (axum + one tonic call)", floor),
        ("axum (the page's bytes)", axum),
    ];
    if let Some(own) = summaries.get(3) {
        rows.push(("axum, driven by the bench's own generator", *own));
    }
    report.table(&rows);
    match summaries.get(3) {
        Some(own) => report.share(
            "generator",
            "the bench's own generator on axum, against wrk",
            *own,
            axum,
        ),
        None => report.check(
            "generator",
            "the bench's own generator on axum, against wrk",
            "unverified".to_owned(),
            "no wrk on PATH".to_owned(),
            None,
        ),
    }
    report.rate_and_p99(
        "1 list",
        ("gateway", gateway),
        ("the two-hop floor", floor),
        1.0,
        P99_OVER_FLOOR,
    );
    report.share(
        "1 list",
        "gateway / axum (the machine's limit)",
        gateway,
        axum,
    );
    report.memory(&stack.services());
    Ok(())
}
