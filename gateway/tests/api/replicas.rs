//! Two replicas of auth and of inventory, each a process of its own on one PostgreSQL database,
//! behind a gateway that lists both of each: reads spread over every replica, and none fails
//! when a replica is killed with no warning or leaves on SIGTERM (where a slow login in flight
//! past the grace is answered, and no client had to send a call again); keyed writes sent into the
//! kills apply exactly once, however often they are sent. PostgreSQL only (replicas
//! share a database); skipped with a notice without `TEST_POSTGRES_URL`.
//!
//! The figures (calls per replica, how long each client took to take a replica out, how many
//! calls were sent again) are printed: `cargo test -p gateway --test api replicas -- --nocapture`.

use std::time::{Duration, Instant};

use crate::processes::{Load, Replica, Replicas};

/// How long a leaving replica serves on while it reports NOT_SERVING, in the SIGTERM test.
const GRACE: Duration = Duration::from_millis(500);

/// Callers reading at once.
const WORKERS: usize = 8;

/// Two replicas of each service (their settings from `env`) under a steady read load, once each
/// replica has served calls; `None` without PostgreSQL.
async fn under_load(env: &[(&'static str, &str)]) -> Option<(Replicas, Load)> {
    let replicas = Replicas::start(2, env).await?;
    let load = replicas.load(WORKERS);
    load.until("every replica serves calls", || {
        replicas
            .auth
            .iter()
            .chain(&replicas.inventory)
            .all(|replica| replica.served() >= 50)
    })
    .await;
    Some((replicas, load))
}

/// The first replica of `service` (`auth` or `inventory`).
fn first<'a>(replicas: &'a mut Replicas, service: &str) -> &'a mut Replica {
    match service {
        "auth" => &mut replicas.auth[0],
        _ => &mut replicas.inventory[0],
    }
}

fn first_of<'a>(replicas: &'a Replicas, service: &str) -> &'a Replica {
    match service {
        "auth" => &replicas.auth[0],
        _ => &replicas.inventory[0],
    }
}

/// Who calls `service`: the gateway, and for auth the inventories too.
fn clients<'a>(replicas: &'a Replicas, service: &str) -> Vec<&'a Replica> {
    let mut clients = vec![&replicas.gateway];
    if service == "auth" {
        clients.extend(&replicas.inventory);
    }
    clients
}

/// SIGKILLs the first replica of `service` under `load`, then waits until every client has
/// taken it out and 500 more reads have been answered; none may have failed.
async fn kill_first(replicas: &mut Replicas, load: &Load, service: &str) {
    let killed = first(replicas, service).kill();
    let dead = first_of(replicas, service);
    let clients = clients(replicas, service);
    load.until("every client takes the dead replica out", || {
        clients.iter().all(|client| {
            client
                .took_out(dead.address)
                .is_some_and(|out| out >= killed)
        })
    })
    .await;
    load.more(500).await;
    eprintln!(
        "{service} {} killed; failed reads so far: {}",
        dead.address,
        load.failures().len()
    );
    print_taken_out(dead, &clients, killed);
    assert_eq!(load.failures(), Vec::<String>::new());
}

fn print_served(replicas: &Replicas) {
    for replica in replicas.auth.iter().chain(&replicas.inventory) {
        eprintln!(
            "  {} {}: {} calls served",
            replica.role,
            replica.address,
            replica.served()
        );
    }
}

/// How long after `since` each client took `dead` out of its balancer.
fn print_taken_out(dead: &Replica, clients: &[&Replica], since: Instant) {
    for client in clients {
        let out = client
            .took_out(dead.address)
            .map(|when| when.saturating_duration_since(since));
        eprintln!(
            "  the {} at {} took {} {} out after {out:?}; calls it sent again so far: {}",
            client.role,
            client.address,
            dead.role,
            dead.address,
            client.resent()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_spread_over_every_replica_and_none_fails_when_one_is_killed() {
    let Some((mut replicas, load)) = under_load(&[]).await else {
        return;
    };
    eprintln!("steady load, {} reads answered:", load.answered());
    print_served(&replicas);
    assert_eq!(load.failures(), Vec::<String>::new());

    // Auth first: the gateway and both inventories call it.
    kill_first(&mut replicas, &load, "auth").await;
    kill_first(&mut replicas, &load, "inventory").await;
    // The killed inventory left a live row in the product feed: a write on the other waits
    // for it until the row lapses, then returns, and is read back at once.
    assert_eq!(replicas.feed_rows("inventory").await, 2);
    replicas.adjust_and_read_back().await;

    let answered = load.answered();
    let failures = load.failures();
    load.stop().await;
    eprintln!(
        "{answered} reads answered in all, {} failed:",
        failures.len()
    );
    print_served(&replicas);
    assert_eq!(failures, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_leaving_on_sigterm_fails_no_call_and_is_left_before_it_goes() {
    let grace = GRACE.as_millis().to_string();
    let Some((mut replicas, load)) = under_load(&[("SHUTDOWN_GRACE_MS", &grace)]).await else {
        return;
    };

    for service in ["auth", "inventory"] {
        // A call that is still running when the grace ends: the drain must let it finish.
        let slow = match service {
            "auth" => Some(replicas.slow_login(first_of(&replicas, "auth")).await),
            _ => None,
        };
        let leaving = first(&mut replicas, service);
        let asked = leaving.terminate();
        let (exited, clean) = leaving.wait();
        assert!(clean, "the {service} replica exits cleanly after its drain");
        // It deleted its row in its feed: writes on the others wait for it no more.
        assert_eq!(
            replicas.feed_rows(service).await,
            1,
            "{service} left its feed"
        );
        let leaving = first_of(&replicas, service);
        let clients = clients(&replicas, service);
        for client in &clients {
            let out = client.took_out(leaving.address);
            assert!(
                out.is_some_and(|out| asked <= out && out <= exited),
                "the {} took the leaving {service} replica out before it exited",
                client.role
            );
        }
        eprintln!(
            "{service} {} left in {:?}:",
            leaving.address,
            exited - asked
        );
        print_taken_out(leaving, &clients, asked);
        if let Some(slow) = slow {
            let (took, answer) = slow.await.expect("the slow login ran");
            eprintln!("the slow login on the leaving auth took {took:?}: {answer:?}");
            assert!(took > GRACE, "the slow login was in flight past the grace");
            answer.expect("the call in flight when the grace ended is answered");
        }
        load.more(300).await;
        assert_eq!(load.failures(), Vec::<String>::new());
        // A drain that works fails no call: no client had to send one to another replica.
        let resent: u64 = clients.iter().map(|client| client.resent()).sum();
        assert_eq!(
            resent, 0,
            "calls the {service} drain failed were sent again"
        );
    }

    replicas.adjust_and_read_back().await;
    let failures = load.failures();
    load.stop().await;
    print_served(&replicas);
    assert_eq!(failures, Vec::<String>::new());
}

/// One stock adjustment of +1 with `key`, through the gateway, sent again with the same key
/// until it is answered 2xx, as a client does after a failure it cannot read; how many sends.
async fn adjust_until_answered(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    key: &str,
) -> usize {
    for attempt in 1..=20 {
        let sent = client
            .post(url)
            .header("Authorization", format!("Token {token}"))
            .header("Idempotency-Key", key)
            .json(&serde_json::json!({"delta": 1}))
            .send()
            .await;
        if sent.is_ok_and(|response| response.status().is_success()) {
            return attempt;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the adjustment {key} was never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_writes_sent_into_a_kill_apply_exactly_once() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    const WRITERS: usize = 4;
    const WRITES_EACH: usize = 40;
    let Some((mut replicas, load)) = under_load(&[]).await else {
        return;
    };
    let done = Arc::new(AtomicUsize::new(0));
    let url = replicas.url(&format!("/api/products/{}/adjust-stock/", replicas.product));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (client, token, url, done) = (
                replicas.client.clone(),
                replicas.token.clone(),
                url.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                let mut sends = 0;
                for write in 0..WRITES_EACH {
                    let key = format!("adjust-{writer}-{write}");
                    sends += adjust_until_answered(&client, &url, &token, &key).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                sends
            })
        })
        .collect();
    // The kills land among writes in flight: connections to the dead replica break with calls
    // on them, and answers are lost after the write applied.
    let total = WRITERS * WRITES_EACH;
    load.until("a third of the writes are answered", || {
        done.load(Ordering::Relaxed) >= total / 3
    })
    .await;
    first(&mut replicas, "inventory").kill();
    load.until("two thirds of the writes are answered", || {
        done.load(Ordering::Relaxed) >= 2 * total / 3
    })
    .await;
    first(&mut replicas, "auth").kill();
    let mut sends = 0;
    for writer in writers {
        sends += writer.await.expect("the writer ends");
    }
    let product = replicas
        .client
        .get(replicas.url(&format!("/api/products/{}/", replicas.product)))
        .header("Authorization", format!("Token {}", replicas.token))
        .send()
        .await
        .expect("the gateway answers")
        .json::<serde_json::Value>()
        .await
        .expect("a product");
    let failures = load.failures();
    load.stop().await;
    eprintln!(
        "{total} keyed adjustments in {sends} sends by the clients; {} reads failed",
        failures.len()
    );
    // Created with 5: every adjustment applied once, however often it was sent.
    assert_eq!(product["quantity"], serde_json::json!(5 + total));
    assert_eq!(failures, Vec::<String>::new());
}
