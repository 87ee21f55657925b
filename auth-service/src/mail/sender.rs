//! The delivery task: whenever a write has enqueued (woken by [`super::Outbox::committed`]) and
//! every [`POLL`] otherwise (for retries, and for messages another replica enqueued), it
//! delivers every due message, one claim at a time. No database connection is held while a
//! message is being sent: on SQLite the one writer connection stays free for the requests.
//!
//! A failed attempt is retried after 1 s, then 2, 4, … up to [`MAX_BACKOFF`]; the server's
//! permanent refusal (5xx) or a malformed address ends a message's attempts. Outbox times are
//! the wall clock's, whatever clock the service's tokens run on.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

use super::backend::{Failure, MailBackend};
use crate::{clock::UnixMicros, store::Store};

/// How often the outbox is looked at when nothing woke the sender.
pub const POLL: Duration = Duration::from_secs(2);
/// How long a claim keeps other replicas off a message: far longer than one attempt may take
/// (the SMTP timeout), so a message is sent twice only when its sender died while sending.
pub const CLAIM_FOR: Duration = Duration::from_secs(300);
/// The longest wait between two attempts at one message.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub struct Sender {
    store: Store,
    backend: MailBackend,
    wake: Arc<Notify>,
}

impl Sender {
    pub fn new(store: Store, backend: MailBackend, wake: Arc<Notify>) -> Self {
        Self {
            store,
            backend,
            wake,
        }
    }

    /// Delivers until the task is aborted.
    pub async fn run(self) {
        loop {
            self.deliver_due().await;
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Sends every message due now, one at a time.
    async fn deliver_due(&self) {
        loop {
            let now = UnixMicros::now();
            let claimed = match self.store.claim_letter(now, now.plus(CLAIM_FOR)).await {
                Ok(Some(claimed)) => claimed,
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "the mail outbox could not be read; retried");
                    return;
                }
            };
            let outcome = self.backend.deliver(&claimed.letter).await;
            let now = UnixMicros::now();
            let marked = match &outcome {
                Ok(()) => {
                    tracing::info!(mail_id = claimed.id, "mail delivered");
                    self.store.letter_sent(claimed.id, now).await
                }
                Err(Failure::Transient(reason)) => {
                    let retry_at = now.plus(backoff(claimed.attempts));
                    tracing::warn!(mail_id = claimed.id, attempts = claimed.attempts, %reason,
                        "mail not delivered; retried later");
                    self.store.letter_failed(claimed.id, retry_at, reason).await
                }
                Err(Failure::Permanent(reason)) => {
                    tracing::error!(mail_id = claimed.id, %reason, "mail undeliverable; dropped");
                    self.store
                        .letter_undeliverable(claimed.id, now, reason)
                        .await
                }
            };
            if let Err(err) = marked {
                // The claim runs out and the message is tried again: at least once.
                tracing::warn!(mail_id = claimed.id, error = %err, "mail outcome not recorded");
                return;
            }
            if outcome.is_err() {
                // Do not hammer a server that just failed with the next message.
                return;
            }
        }
    }
}

/// The wait after the `attempts`-th failed attempt: 1 s, doubling, at most [`MAX_BACKOFF`].
fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    (Duration::from_secs(1) * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_back_off_doubling_up_to_the_ceiling() {
        let waits: Vec<u64> = (1..=4).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8]);
        assert_eq!(backoff(40), MAX_BACKOFF);
        assert_eq!(backoff(0), Duration::from_secs(1));
    }
}
