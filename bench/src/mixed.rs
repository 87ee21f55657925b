//! Scenario 6: a mixed workload through the gateway on 32 keep-alive connections, closed loop:
//! each call is drawn at random, 90% reads (list and one product, half each), 8%
//! `adjust-stock` of one hot product, 2% logins (`POST /api/login/` of a clerk), with rate,
//! p50 and p99 per class. The bench's own generator drives it, because wrk reports one latency
//! distribution for all requests: the 2% of logins (argon2, ~10 ms of CPU each) bound the
//! whole mix to about 50 times the login rate, a few thousand calls a second, far below the
//! generator's ceiling that scenario 1 measures against wrk.

use tokio::time::Instant;

use crate::{
    http::{HttpConnection, HttpRequest},
    load::{ROUND, ROUNDS, Record, Rng, Summary, WARMUP},
    report::{Report, ms},
    stack::{INVENTORY_PATH, PASSWORD, Stack},
};

const CONNECTIONS: usize = 32;
/// Each class's share of calls, in thousandths, in the order of [`CLASSES`].
const PER_MILLE: [u64; 4] = [450, 450, 80, 20];
const CLASSES: [&str; 4] = [
    "GET /api/inventory/ (list)",
    "GET /api/products/{id}/",
    "POST adjust-stock",
    "POST /api/login/",
];

pub async fn run(stack: &Stack, report: &mut Report) {
    let addr = stack.gateway.addr();
    let key = Some(stack.admin_key.as_str());
    let product = stack.product_id;
    let mut requests = vec![
        HttpRequest::get(addr, INVENTORY_PATH, key),
        HttpRequest::get(addr, &format!("/api/products/{product}/"), key),
        HttpRequest::post_json(
            addr,
            &format!("/api/products/{product}/adjust-stock/"),
            key,
            r#"{"delta": 1}"#.to_owned(),
        ),
    ];
    let logins: Vec<HttpRequest> = stack
        .clerks
        .iter()
        .map(|clerk| {
            let body = format!(r#"{{"username": "{clerk}", "password": "{PASSWORD}"}}"#);
            HttpRequest::post_json(addr, "/api/login/", None, body)
        })
        .collect();
    requests.push(logins[0].clone());
    for service in stack.services() {
        service.reset_peak();
    }
    let measure = ROUND * u32::try_from(ROUNDS).unwrap_or(1);
    let from = Instant::now() + WARMUP;
    let until = from + measure;
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|worker| {
            let (requests, logins) = (requests.clone(), logins.clone());
            tokio::spawn(async move {
                let mut rng = Rng::new(7000 + worker as u64);
                let mut connection = HttpConnection::new(requests[0].clone(), None);
                let mut records: [Record; 4] = Default::default();
                loop {
                    let started = Instant::now();
                    if started >= until {
                        break;
                    }
                    let class = class(rng.one_to(1000));
                    let request = match class {
                        3 => &logins[worker % logins.len()],
                        _ => &requests[class],
                    };
                    let ok = connection.send(request).await;
                    if started >= from {
                        records[class].add(started.elapsed(), ok);
                    }
                }
                records
            })
        })
        .collect();
    let mut records: [Record; 4] = Default::default();
    for worker in workers {
        let part = worker.await.expect("a mixed worker ends");
        for (record, part) in records.iter_mut().zip(part) {
            record.extend(part);
        }
    }
    let summaries: Vec<Summary> = records
        .into_iter()
        .map(|mut record| {
            record.set_window(measure);
            record.summary()
        })
        .collect();

    report.heading(&format!(
        "6. Mixed: 45% list, 45% product, 8% adjust-stock, 2% login, {CONNECTIONS} connections"
    ));
    let rows: Vec<(&str, Summary)> = CLASSES.into_iter().zip(summaries).collect();
    report.table(&rows);
    let total: f64 = rows.iter().map(|(_, summary)| summary.per_second).sum();
    report.note(&format!("the whole mix: {total:.0}/s"));
    for (name, summary) in &rows {
        report.check(
            "6 mixed",
            &format!("{name} in the mix"),
            format!(
                "{:.0}/s, p50 {}, p99 {}",
                summary.per_second,
                ms(summary.p50),
                ms(summary.p99)
            ),
            "none set".to_owned(),
            None,
        );
    }
    report.memory(&stack.services());
}

/// The class of a draw in `1..=1000`.
fn class(draw: u64) -> usize {
    let mut bound = 0;
    for (class, share) in PER_MILLE.iter().enumerate() {
        bound += share;
        if draw <= bound {
            return class;
        }
    }
    PER_MILLE.len() - 1
}
