//! The product cache (DESIGN.md, "Design: the product cache"): a copy of the whole product
//! table, kept by each replica, from which `GetProduct` and `ListProducts` answer without a
//! database read. It follows the verdict caches' rule: once a write has returned, no replica
//! serves what it changed.
//!
//! - Every write drops the copy after its commit, and returns only once every replica has
//!   dropped it too: on PostgreSQL through the product feed ([`service_kit::feed`]), which the
//!   database announces with each commit; on SQLite, where one server holds the file, at once.
//! - A copy is served only while it is trusted: on PostgreSQL while this replica's renewals come
//!   back through the feed; on SQLite while a look at the file's `data_version` (which tells of
//!   commits made beside the server, such as an import) is recent. A console command writing
//!   beside a server waits out that trust before it returns.
//! - A copy is read whole, and kept only if nothing was dropped while it was read (the same
//!   epoch rule as the verdict caches): a read that began before a write's commit may not hold
//!   it.
//! - A table of more than `PRODUCT_CACHE_MAX_PRODUCTS` products is not copied: reads go to the
//!   database, as they do whenever the copy is not trusted.

use std::sync::{Arc, Mutex, MutexGuard};

use service_kit::{
    database::{Claim, SqliteClaim, SqliteCommits},
    feed::{Feed, FeedError, Follower, Leases, Tables, Writer},
    grpc::StartupError,
};
use tokio::time::Instant;

use crate::{
    config::CacheSettings,
    error::InventoryError,
    store::{Listed, Page, Product, ProductStore},
};

/// What migration 0003 (PostgreSQL) names.
pub const TABLES: Tables = Tables {
    channel: "inventory_products",
    replicas: "inventory_replicas",
    marks: "inventory_change_marks",
    mark_function: "inventory_change_mark",
    replica_prefix: "inventory",
};

const PROGRAM: &str = "inventory-service";

mod series;

use series::Series;

/// The copy, its epoch and its trust; what the feed follows.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    series: Series,
}

#[derive(Default)]
struct State {
    /// Every product in id order, as read whole.
    products: Option<Arc<[Product]>>,
    /// Bumped by every drop: a copy read across a bump may predate a write, and is not kept.
    epoch: u64,
    /// Until then the copy may be served and kept.
    trusted_until: Option<Instant>,
    /// The epoch at which the table was found too big to keep: no use reading it whole again
    /// until something changes.
    oversized_at: Option<u64>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update under the lock is a few assignments: a poisoned lock holds consistent
        // data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Something may have changed: the copy goes.
    fn drop_copy(&self) {
        let mut state = self.state();
        if state.products.take().is_some() {
            self.series.drops.increment(1);
            self.series.products.set(0.0);
        }
        state.epoch += 1;
    }

    fn trusted(state: &State) -> bool {
        state
            .trusted_until
            .is_some_and(|until| Instant::now() < until)
    }
}

impl Follower for Shared {
    /// `product:<id>` (a row changed) or `products` (the table was truncated).
    fn apply(&self, announcement: &str) -> bool {
        let known = announcement == "products"
            || announcement
                .strip_prefix("product:")
                .is_some_and(|id| id.parse::<i64>().is_ok());
        if known {
            self.drop_copy();
        }
        known
    }

    /// A drop is done when [`Follower::apply`] returns: nothing is ever left to wait for.
    fn applied(&self) -> u64 {
        0
    }

    async fn settled(&self, _applied: u64) {}

    fn grant_until(&self, until: Instant) {
        let mut state = self.state();
        if state.trusted_until.is_some_and(|old| old <= Instant::now()) {
            self.series.lost.increment(1);
        }
        state.trusted_until = Some(state.trusted_until.map_or(until, |old| old.max(until)));
        self.series.granted.increment(1);
    }

    fn stop_granting(&self) {
        let mut state = self.state();
        if Self::trusted(&state) {
            self.series.lost.increment(1);
        }
        state.trusted_until = None;
    }

    fn reset(&self) {
        self.drop_copy();
    }
}

/// How the copy is kept in step with the database's writes.
enum Keeper {
    /// No cache: every read goes to the database. Servers without one may share a SQLite file.
    Off { _claim: Option<SqliteClaim> },
    /// One server on a SQLite file: its writes drop the copy themselves, and a task looks at
    /// the file for commits made beside it.
    Sqlite {
        _claim: Option<SqliteClaim>,
        watch: tokio::task::JoinHandle<()>,
    },
    /// A replica on PostgreSQL, on the product feed.
    Feed(Feed<Shared>),
}

/// The products reads are answered from: the cache when it may serve, else the store. Cheap
/// to clone.
#[derive(Clone)]
pub struct Products {
    store: ProductStore,
    shared: Arc<Shared>,
    keeper: Arc<Keeper>,
    max_products: usize,
    /// Held by the one reader reading the table whole.
    loading: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Products {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.state();
        f.debug_struct("Products")
            .field("cached", &state.products.as_ref().map(|all| all.len()))
            .field("epoch", &state.epoch)
            .field("trusted_until", &state.trusted_until)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Claim(#[from] service_kit::database::ClaimError),
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Database(#[from] service_kit::database::DatabaseError),
}

/// A cache that cannot be set up stops the service's start-up, for the same reason.
impl From<CacheError> for StartupError {
    fn from(err: CacheError) -> Self {
        match err {
            CacheError::Claim(err) => err.into(),
            CacheError::Feed(err) => err.into(),
            CacheError::Database(err) => err.into(),
        }
    }
}

impl Products {
    /// Reads of `store` at `url`, cached as `settings` say: on SQLite, the file is claimed for
    /// this process; on PostgreSQL, the replica joins the product feed.
    pub async fn serve(
        store: ProductStore,
        url: &str,
        settings: CacheSettings,
    ) -> Result<Self, CacheError> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            series: Series::new(),
        });
        let sqlite = SqliteCommits::watch(url)?;
        let keeper = if settings.lease.is_zero() {
            Keeper::Off {
                _claim: SqliteClaim::take(url, PROGRAM, Claim::Cacheless)?,
            }
        } else if let Some(commits) = sqlite {
            Keeper::Sqlite {
                _claim: SqliteClaim::take(url, PROGRAM, Claim::Caching)?,
                watch: tokio::spawn(watch_sqlite(
                    commits,
                    Arc::downgrade(&shared),
                    Leases::of(settings.lease),
                )),
            }
        } else {
            Keeper::Feed(Feed::join(url, TABLES, shared.clone(), settings.lease).await?)
        };
        Ok(Self {
            store,
            shared,
            keeper: Arc::new(keeper),
            max_products: settings.max_products,
            loading: Arc::default(),
        })
    }

    pub async fn get(&self, id: i64) -> Result<Product, InventoryError> {
        match self.all().await? {
            Some(all) => all
                .binary_search_by_key(&id, |product| product.id)
                .map(|at| all[at].clone())
                .map_err(|_| InventoryError::ProductNotFound),
            None => self.store.get(id).await,
        }
    }

    /// One page in id order, and whether more follow; with `count`, how many there are.
    pub async fn list(&self, page: Page, count: bool) -> Result<Listed, InventoryError> {
        let Some(all) = self.all().await? else {
            return self.store.list(page, count).await;
        };
        let start = usize::try_from(page.offset).map_or(all.len(), |at| at.min(all.len()));
        let end = usize::try_from(page.limit)
            .map_or(all.len(), |n| start.saturating_add(n).min(all.len()));
        Ok(Listed {
            products: all[start..end].to_vec(),
            total: count.then_some(all.len() as u64),
            more: end < all.len(),
        })
    }

    /// After a write that may have changed products has committed: returns once no replica
    /// serves a copy from before it (on PostgreSQL, at most one replica lease).
    pub async fn written(&self) {
        match &*self.keeper {
            Keeper::Off { .. } => {}
            Keeper::Sqlite { .. } => self.shared.drop_copy(),
            Keeper::Feed(feed) => {
                self.shared.drop_copy();
                let started = std::time::Instant::now();
                feed.settle().await;
                self.shared.series.settle.record(started.elapsed());
            }
        }
    }

    /// Stops serving from the copy and, on PostgreSQL, leaves the feed, so that other
    /// replicas' writes stop waiting for this one at once.
    pub async fn leave(&self) {
        self.shared.stop_granting();
        self.shared.drop_copy();
        match &*self.keeper {
            Keeper::Off { .. } => {}
            Keeper::Sqlite { watch, .. } => watch.abort(),
            Keeper::Feed(feed) => feed.leave().await,
        }
    }

    /// Whether the copy may be served now.
    pub fn is_trusted(&self) -> bool {
        Shared::trusted(&self.shared.state())
    }

    /// How many products the copy holds, if there is one.
    pub fn cached(&self) -> Option<usize> {
        self.shared.state().products.as_ref().map(|all| all.len())
    }

    /// Every product, from the copy, or read whole into it; `None` when there is no cache, it
    /// is not trusted, or the table is too big to keep.
    async fn all(&self) -> Result<Option<Arc<[Product]>>, InventoryError> {
        if matches!(*self.keeper, Keeper::Off { .. }) {
            return Ok(None);
        }
        let series = &self.shared.series;
        if let Lookup::Hit(all) = self.copy() {
            series.hits.increment(1);
            return Ok(Some(all));
        }
        // One reader at a time reads the table whole; the others read just what they asked
        // for meanwhile, so that while writes keep dropping the copy, reads do not queue
        // behind whole-table reads.
        let Ok(_one_at_a_time) = self.loading.try_lock() else {
            series.bypassed.increment(1);
            return Ok(None);
        };
        let ticket = match self.copy() {
            Lookup::Hit(all) => {
                series.hits.increment(1);
                return Ok(Some(all));
            }
            Lookup::NotServing => {
                series.bypassed.increment(1);
                return Ok(None);
            }
            Lookup::Miss(ticket) => ticket,
        };
        series.misses.increment(1);
        read_whole(&self.shared, ticket, self.store.all(self.max_products)).await
    }

    fn copy(&self) -> Lookup {
        let state = self.shared.state();
        if !Shared::trusted(&state) || state.oversized_at == Some(state.epoch) {
            return Lookup::NotServing;
        }
        match &state.products {
            Some(all) => Lookup::Hit(all.clone()),
            None => Lookup::Miss(state.epoch),
        }
    }
}

/// The whole table as `read` reads it, kept as the copy only if nothing was dropped since
/// `ticket` (the epoch when the read began): a read that spans a write's commit may have read
/// from before it.
async fn read_whole(
    shared: &Shared,
    ticket: u64,
    read: impl Future<Output = Result<Option<Vec<Product>>, InventoryError>>,
) -> Result<Option<Arc<[Product]>>, InventoryError> {
    let Some(all) = read.await? else {
        let mut state = shared.state();
        if state.epoch == ticket {
            state.oversized_at = Some(ticket);
        }
        return Ok(None);
    };
    let all: Arc<[Product]> = all.into();
    let mut state = shared.state();
    if state.epoch == ticket && Shared::trusted(&state) {
        state.products = Some(all.clone());
        #[expect(
            clippy::cast_precision_loss,
            reason = "at most PRODUCT_CACHE_MAX_PRODUCTS"
        )]
        shared.series.products.set(all.len() as f64);
    }
    // Read after this reader began: what it answers, kept or not, is fresh enough for it.
    Ok(Some(all))
}

/// What the copy can do for a read now.
enum Lookup {
    Hit(Arc<[Product]>),
    /// There is none: read one whole, and keep it if the epoch is still this one.
    Miss(u64),
    /// Not trusted, or too big to keep: read from the database.
    NotServing,
}

/// Looks at the SQLite file every renewal period: a commit from another connection (a console
/// command's, or the server's own pool's) drops the copy, and each look lets the copy be served
/// for a grant window after it began, as a renewal heard back does on the feed.
async fn watch_sqlite(mut commits: SqliteCommits, shared: std::sync::Weak<Shared>, leases: Leases) {
    let mut ticks = tokio::time::interval(leases.renew_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let began = Instant::now();
        let looked = commits.committed_since().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match looked {
            Ok(committed) => {
                if committed {
                    shared.drop_copy();
                }
                shared.grant_until(began + leases.grant_window);
            }
            Err(err) => {
                tracing::warn!(%err, "cannot look at the database; the product cache waits")
            }
        }
    }
}

/// A console command's writes (an import) beside running servers: returns once no server
/// serves a copy from before them. On PostgreSQL, as a replica's write does; on SQLite, when a
/// server holds the file, after one replica lease, by which time it has looked at the file
/// again or stopped trusting its copy.
pub async fn settle_console_writes(url: &str, settings: CacheSettings) -> Result<(), CacheError> {
    if settings.lease.is_zero() {
        return Ok(());
    }
    if SqliteCommits::watch(url)?.is_some() {
        if SqliteClaim::held_by_a_cache(url) {
            let wait = Leases::of(settings.lease).replica;
            tracing::info!(?wait, "waiting for the running server's product cache");
            tokio::time::sleep(wait).await;
        }
        return Ok(());
    }
    Writer::connect(url, TABLES, settings.lease)
        .await?
        .settle()
        .await;
    Ok(())
}

#[cfg(test)]
mod tests;
