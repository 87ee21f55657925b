//! Keeping the verdict caches exact (DESIGN.md, "Design: verdict caches"). Every withdrawing
//! write calls [`Revocations::publish`] after its commit, and returns only once every cache
//! that might still serve the old verdict has dropped it, or has stopped trusting itself.
//!
//! - [`hub`]: the holders connected to this replica, their leases and acknowledgements.
//! - [`stream`]: one holder's `WatchRevocations` stream, from its hello to its departure.
//! - [`feed`]: on PostgreSQL, the revocations of every replica's writes, announced by the
//!   database with their commit and passed on by each replica to its own holders.
//! - [`validations`]: this replica's own cache of the credentials it validated, a holder like
//!   the others.

mod feed;
mod hub;
mod stream;
mod validations;

use std::{sync::Arc, time::Duration};

use proto::auth::v1::{self as pb, revocation_event::Event};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use crate::{
    clock::UnixMicros,
    domain::{CredentialKind, Principal, TokenDigest},
};

use hub::Hub;
use service_kit::feed::{Feed, FeedError};
pub use validations::Ticket;

/// What a holder must forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// These credentials (by digest) are revoked.
    Credentials(Vec<TokenDigest>),
    /// Every verdict of this user is withdrawn: its credentials, role or flags changed.
    User(i64),
}

impl Revocation {
    fn to_proto(&self) -> Event {
        match self {
            Self::Credentials(digests) => Event::Credentials(pb::RevokedCredentials {
                digests: digests.iter().map(|digest| digest.0.clone()).collect(),
            }),
            Self::User(id) => Event::UserId(*id),
        }
    }
}

/// This replica's holders and, on PostgreSQL, its place on the feed; cheap to clone.
#[derive(Clone)]
pub struct Revocations {
    hub: Hub,
    feed: Option<Feed<Hub>>,
}

impl Revocations {
    /// One replica, the only writer (SQLite), or a console command that serves no caches
    /// (on PostgreSQL the database announces its writes all the same): the hub is the whole
    /// story.
    pub fn local(lease: Duration) -> Self {
        Self {
            hub: Hub::new(lease),
            feed: None,
        }
    }

    /// A replica among others on the PostgreSQL at `url`: it passes every replica's
    /// revocations on to its holders, and its writes wait for every replica's holders.
    pub async fn replica(lease: Duration, url: &str) -> Result<Self, FeedError> {
        let hub = Hub::new(lease);
        let feed = Feed::join(url, feed::TABLES, Arc::new(hub.clone()), lease).await?;
        Ok(Self {
            hub,
            feed: Some(feed),
        })
    }

    /// Returns once `revocation`, committed, is applied by every holder with a live lease, or
    /// that lease ran out. On PostgreSQL the database has announced it with the commit; this
    /// waits until every replica has passed it on.
    pub async fn publish(&self, revocation: Revocation) {
        match &self.feed {
            Some(feed) => feed.settle().await,
            None => self.hub.publish(&revocation).await,
        }
    }

    /// The principal this replica validated for `digest` as `kind`, unexpired at `now`, if it
    /// may be served: no revocation of it was heard since, and none can have been missed.
    pub fn cached(
        &self,
        digest: &TokenDigest,
        kind: CredentialKind,
        now: UnixMicros,
    ) -> Option<Principal> {
        if !self.hub.may_grant() {
            return None;
        }
        self.hub.validations().get(digest, kind, now)
    }

    /// Take before reading a verdict from the database, for [`Revocations::remember`].
    pub fn ticket(&self) -> Ticket {
        self.hub.validations().ticket()
    }

    /// Caches `principal`, read after `ticket` was taken, unless a revocation came between.
    pub fn remember(&self, ticket: Ticket, principal: &Principal) {
        self.hub.validations().remember(ticket, principal);
    }

    /// Serves one `WatchRevocations` stream until either side goes away.
    pub async fn serve_holder(
        self,
        inbound: Streaming<pb::WatchRequest>,
        out: mpsc::Sender<Result<pb::RevocationEvent, Status>>,
    ) {
        stream::serve(self.hub, inbound, out).await;
    }

    /// Ends every holder's stream, now and as they come: the server is shutting down. Holders
    /// keep their leases until they run out, and reconnect to whichever replica answers.
    pub fn close(&self) {
        self.hub.close();
    }

    /// Leaves the feed once this replica's holders can no longer trust their caches, so that
    /// other replicas' writes stop waiting for it at once rather than when its lease lapses.
    pub async fn leave(&self) {
        if let Some(feed) = &self.feed {
            feed.leave().await;
        }
    }
}
