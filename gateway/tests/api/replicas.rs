//! Two replicas of auth and of inventory, each a process of its own on one PostgreSQL database,
//! behind a gateway that lists both of each: reads spread over every replica, and none fails
//! when a replica is killed with no warning or leaves on SIGTERM. PostgreSQL only (replicas
//! share a database); skipped with a notice without `TEST_POSTGRES_URL`.
//!
//! The figures (calls per replica, how long each client took to take a replica out, how many
//! calls were sent again) are printed: `cargo test -p gateway --test api replicas -- --nocapture`.

use std::time::Instant;

use crate::processes::{Replica, Replicas};

/// Callers reading at once.
const WORKERS: usize = 8;

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
    let Some(mut replicas) = Replicas::start(2, &[]).await else {
        return;
    };
    let load = replicas.load(WORKERS);

    load.until("every replica serves calls", || {
        replicas
            .auth
            .iter()
            .chain(&replicas.inventory)
            .all(|replica| replica.served() >= 50)
    })
    .await;
    eprintln!("steady load, {} reads answered:", load.answered());
    print_served(&replicas);
    assert_eq!(load.failures(), Vec::<String>::new());

    // Auth first: the gateway and both inventories call it.
    let killed = replicas.auth[0].kill();
    let dead = &replicas.auth[0];
    load.until("every client takes the dead auth replica out", || {
        std::iter::once(&replicas.gateway)
            .chain(&replicas.inventory)
            .all(|client| {
                client
                    .took_out(dead.address)
                    .is_some_and(|out| out >= killed)
            })
    })
    .await;
    load.more(500).await;
    eprintln!("auth {} killed:", dead.address);
    let clients: Vec<&Replica> = std::iter::once(&replicas.gateway)
        .chain(&replicas.inventory)
        .collect();
    print_taken_out(dead, &clients, killed);
    assert_eq!(load.failures(), Vec::<String>::new());

    let killed = replicas.inventory[0].kill();
    let dead = &replicas.inventory[0];
    load.until("the gateway takes the dead inventory replica out", || {
        replicas
            .gateway
            .took_out(dead.address)
            .is_some_and(|out| out >= killed)
    })
    .await;
    load.more(500).await;
    eprintln!("inventory {} killed:", dead.address);
    print_taken_out(dead, &[&replicas.gateway], killed);

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
    let Some(mut replicas) = Replicas::start(2, &[("SHUTDOWN_GRACE_MS", "500")]).await else {
        return;
    };
    let load = replicas.load(WORKERS);
    load.until("every replica serves calls", || {
        replicas
            .auth
            .iter()
            .chain(&replicas.inventory)
            .all(|replica| replica.served() >= 50)
    })
    .await;

    for service in ["auth", "inventory"] {
        let leaving = match service {
            "auth" => &mut replicas.auth[0],
            _ => &mut replicas.inventory[0],
        };
        let asked = leaving.terminate();
        let (exited, clean) = leaving.wait();
        assert!(clean, "the {service} replica exits cleanly after its drain");
        let leaving = match service {
            "auth" => &replicas.auth[0],
            _ => &replicas.inventory[0],
        };
        let mut clients = vec![&replicas.gateway];
        if service == "auth" {
            clients.extend(&replicas.inventory);
        }
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
        load.more(300).await;
        assert_eq!(load.failures(), Vec::<String>::new());
    }

    let failures = load.failures();
    load.stop().await;
    print_served(&replicas);
    assert_eq!(failures, Vec::<String>::new());
}
