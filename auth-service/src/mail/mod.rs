//! Mail that is never lost. A message is written to the `mail_outbox` table in the same
//! transaction as the change that causes it ([`Outbox::enqueue`], called by the service inside
//! its write), so a committed reset or sign-up always has its message, and a rolled-back one
//! never does. The [`sender`] delivers what is due afterwards: it claims one message at a time
//! for a while (so of several replicas on one database, one sends it), sends it through the
//! [`backend`] `EMAIL_URL` names, and marks it sent (erasing its body, which may carry a
//! one-time link); a failure is retried later each time, across restarts, since the row stays.
//! Delivery is at least once: a replica that dies between the server's acceptance and the mark
//! leaves the message to be sent again when its claim runs out, as any outbox must.
//!
//! - [`settings`]: `EMAIL_URL`, `DEFAULT_FROM_EMAIL`, `SITE_NAME`.
//! - [`templates`]: the messages' subjects and plain-text bodies.

pub mod backend;
pub mod sender;
pub mod settings;
pub mod templates;

use std::sync::Arc;

use sqlx::AnyConnection;
use tokio::sync::Notify;

use crate::{clock::UnixMicros, error::AuthError, store::Store};

pub use settings::MailSettings;

/// One message to one recipient, as the outbox stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Where the service's writes put their messages; cheap to clone. It wakes this process's
/// sender once a write that enqueued has committed.
#[derive(Debug, Clone)]
pub struct Outbox {
    settings: Arc<MailSettings>,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(settings: MailSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The site's name and the sender's address, for the templates and the backend.
    pub fn settings(&self) -> &MailSettings {
        &self.settings
    }

    /// Writes `letter` inside the caller's transaction, on `conn`.
    pub async fn enqueue(
        &self,
        conn: &mut AnyConnection,
        letter: &Letter,
        now: UnixMicros,
    ) -> Result<(), AuthError> {
        Store::enqueue_letter(conn, letter, now).await
    }

    /// Called after the commit of a write that enqueued: the sender looks at once, instead of
    /// at its next poll.
    pub fn committed(&self) {
        self.wake.notify_one();
    }

    /// What the sender waits on.
    pub(crate) fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}
