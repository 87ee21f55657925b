//! Auth's place on the feed across replicas sharing one PostgreSQL ([`service_kit::feed`];
//! DESIGN.md, "Across replicas"): the database announces every withdrawal on the channel
//! `auth_revocations` from triggers (migration 0003), and each replica passes what it hears on
//! to the holders of its [`Hub`], which is the feed's follower.

use service_kit::feed::{Follower, Tables};
use tokio::time::Instant;

use super::{Hub, Revocation};
use crate::domain::TokenDigest;

/// What migration 0003 names.
pub(super) const TABLES: Tables = Tables {
    channel: "auth_revocations",
    replicas: "auth_replicas",
    marks: "auth_revocation_marks",
    mark_function: "auth_revocation_mark",
    replica_prefix: "auth",
};

/// What the triggers announce: `credential:<digest>` or `user:<id>`.
fn parse(announcement: &str) -> Option<Revocation> {
    match announcement.split_once(':')? {
        ("credential", digest) => Some(Revocation::Credentials(vec![TokenDigest(
            digest.to_owned(),
        )])),
        ("user", id) => id.parse().ok().map(Revocation::User),
        _ => None,
    }
}

impl Follower for Hub {
    fn apply(&self, announcement: &str) -> bool {
        let Some(revocation) = parse(announcement) else {
            return false;
        };
        self.announce(&revocation);
        true
    }

    fn applied(&self) -> u64 {
        self.last_seq()
    }

    async fn settled(&self, applied: u64) {
        Hub::settled(self, applied).await;
    }

    fn grant_until(&self, until: Instant) {
        Hub::grant_until(self, until);
    }

    fn stop_granting(&self) {
        Hub::stop_granting(self);
    }

    fn reset(&self) {
        Hub::reset(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_announcement_and_nothing_else() {
        let digest = "ab".repeat(32);
        assert_eq!(
            parse(&format!("credential:{digest}")),
            Some(Revocation::Credentials(vec![TokenDigest(digest)]))
        );
        assert_eq!(parse("user:42"), Some(Revocation::User(42)));
        for unknown in ["user:x", "group:1", "", "credential"] {
            assert_eq!(parse(unknown), None, "{unknown}");
        }
    }
}
