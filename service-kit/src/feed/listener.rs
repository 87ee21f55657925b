//! What the feed hears: the one task that owns the PostgreSQL listener, and the notifications it
//! tells apart (the feed's own marks, renewals and acknowledgements, and the service's changes).

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

/// How long after a listener error the listener tries again.
const RELISTEN_BACKOFF: Duration = Duration::from_millis(200);

/// A notification heard on the channel, or the news that some may have been missed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Heard {
    /// The service's own: for the follower.
    Change(String),
    Mark(i64),
    Renewed {
        replica: String,
        renewal: u64,
    },
    Acked,
    /// The listener's connection broke: what was announced meanwhile is lost.
    Lost,
}

impl Heard {
    fn parse(payload: &str) -> Self {
        let feed_own = match payload.split_once(':') {
            Some(("mark", mark)) => mark.parse().ok().map(Self::Mark),
            Some(("renew", rest)) => rest.rsplit_once(':').and_then(|(replica, renewal)| {
                Some(Self::Renewed {
                    replica: replica.to_owned(),
                    renewal: renewal.parse().ok()?,
                })
            }),
            None if payload == "acked" => Some(Self::Acked),
            _ => None,
        };
        // A malformed mark or renewal goes to the follower, which does not know it either.
        feed_own.unwrap_or_else(|| Self::Change(payload.to_owned()))
    }
}

/// Owns the listener, so that the rest never waits on it: hands on each notification and
/// each loss of the connection (after which it reconnects by itself).
pub(super) async fn listen(mut listener: PgListener, heard: mpsc::UnboundedSender<Heard>) {
    loop {
        let next = match listener.try_recv().await {
            Ok(Some(notification)) => Heard::parse(notification.payload()),
            Ok(None) => Heard::Lost,
            Err(err) => {
                tracing::warn!(error = %err, "feed listener failed");
                tokio::time::sleep(RELISTEN_BACKOFF).await;
                Heard::Lost
            }
        };
        if heard.send(next).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_its_own_announcements_from_the_followers() {
        assert_eq!(Heard::parse("mark:7"), Heard::Mark(7));
        assert_eq!(
            Heard::parse("renew:auth-00ff:3"),
            Heard::Renewed {
                replica: "auth-00ff".to_owned(),
                renewal: 3
            }
        );
        assert_eq!(Heard::parse("acked"), Heard::Acked);
        for theirs in ["user:42", "mark:", "renew:3", "", "product:1"] {
            assert_eq!(Heard::parse(theirs), Heard::Change(theirs.to_owned()));
        }
    }
}
