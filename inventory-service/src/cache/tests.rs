//! The copy's rules, without a database: what drops it, when it is trusted, and when a
//! whole-table read is kept.

use std::time::Duration;

use super::*;
use crate::domain::{Price, Quantity};

#[test]
fn follows_product_announcements_and_nothing_else() {
    let shared = Shared::default();
    for known in ["product:1", "product:-3", "products"] {
        let epoch = shared.state().epoch;
        assert!(shared.apply(known), "{known}");
        assert_eq!(shared.state().epoch, epoch + 1, "{known} drops the copy");
    }
    for unknown in ["product:", "product:x", "user:1", "", "productsx"] {
        assert!(!shared.apply(unknown), "{unknown}");
    }
}

fn product(name: &str) -> Product {
    let epoch = std::time::SystemTime::UNIX_EPOCH;
    Product {
        id: 1,
        name: name.to_owned(),
        description: String::new(),
        price: Price::from_cents(100),
        quantity: Quantity::from_stored(1),
        created_at: epoch,
        updated_at: epoch,
    }
}

/// The race the epoch guards: the whole-table read takes its snapshot, a write commits and
/// its drop lands, then the read returns the table as it was. Its reader may answer with
/// it (it began before the write returned), but it is never kept for later reads.
#[tokio::test]
async fn a_whole_table_read_that_spans_a_writes_commit_is_not_kept() {
    let shared = Shared::default();
    shared.grant_until(Instant::now() + Duration::from_secs(60));

    let ticket = shared.state().epoch;
    let spanning = async {
        // The write's commit and drop, while the read is in flight.
        shared.drop_copy();
        Ok(Some(vec![product("before the write")]))
    };
    let answered = read_whole(&shared, ticket, spanning).await.unwrap();
    assert_eq!(answered.unwrap()[0].name, "before the write");
    assert!(shared.state().products.is_none(), "a stale copy was kept");

    let ticket = shared.state().epoch;
    let quiet = async { Ok(Some(vec![product("after the write")])) };
    read_whole(&shared, ticket, quiet).await.unwrap();
    let kept = shared
        .state()
        .products
        .clone()
        .expect("a read with no drop is kept");
    assert_eq!(kept[0].name, "after the write");
}

#[tokio::test(start_paused = true)]
async fn serves_only_while_trusted() {
    let shared = Shared::default();
    assert!(!Shared::trusted(&shared.state()));
    shared.grant_until(Instant::now() + Duration::from_secs(1));
    assert!(Shared::trusted(&shared.state()));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(!Shared::trusted(&shared.state()), "the grant ran out");
    shared.grant_until(Instant::now() + Duration::from_secs(1));
    shared.stop_granting();
    assert!(!Shared::trusted(&shared.state()));
}
