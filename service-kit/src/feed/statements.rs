//! The feed's SQL for one service's [`Tables`], written once when the feed is joined.

use std::sync::Arc;

use super::Tables;

/// The feed's statements for one service's [`Tables`].
#[derive(Debug)]
pub(super) struct Statements {
    pub(super) channel: &'static str,
    pub(super) forget_lapsed: Arc<str>,
    pub(super) join: Arc<str>,
    pub(super) mark: Arc<str>,
    pub(super) behind: Arc<str>,
    pub(super) leave: Arc<str>,
    pub(super) extend: Arc<str>,
    pub(super) acknowledge: Arc<str>,
}

impl Statements {
    pub(super) fn of(tables: Tables) -> Self {
        let Tables {
            channel,
            replicas,
            marks,
            mark_function,
            replica_prefix: _,
        } = tables;
        let sql = |text: String| Arc::<str>::from(text);
        Self {
            channel,
            forget_lapsed: sql(format!(
                "DELETE FROM {replicas} WHERE lease_until < now() - interval '1 hour'"
            )),
            // Acknowledged up to the last mark drawn: whatever it follows starts empty, after
            // those writes' commits.
            join: sql(format!(
                "INSERT INTO {replicas} (replica, acked_mark, lease_until) \
                 SELECT $1, CASE WHEN is_called THEN last_value ELSE 0 END, \
                        now() + $2 * interval '1 millisecond' \
                 FROM {marks}"
            )),
            mark: sql(format!("SELECT {mark_function}()")),
            behind: sql(format!(
                "SELECT count(*) FROM {replicas} WHERE acked_mark < $1 AND lease_until > now()"
            )),
            leave: sql(format!("DELETE FROM {replicas} WHERE replica = $1")),
            extend: sql(format!(
                "INSERT INTO {replicas} (replica, acked_mark, lease_until) \
                 VALUES ($1, 0, now() + $2 * interval '1 millisecond') \
                 ON CONFLICT (replica) DO UPDATE SET lease_until = EXCLUDED.lease_until"
            )),
            acknowledge: sql(format!(
                "WITH acked AS (UPDATE {replicas} SET acked_mark = GREATEST(acked_mark, $2) \
                 WHERE replica = $1 RETURNING 1) \
                 SELECT pg_notify($3, 'acked') FROM acked"
            )),
        }
    }
}
