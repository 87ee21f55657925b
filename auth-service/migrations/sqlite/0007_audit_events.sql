-- The audit trail: one row per security event, written in the transaction of the change it
-- records, so a change rolled back leaves no event. No foreign key: an event keeps naming a
-- user after the user is deleted. `detail` is a JSON object as text; times are unix
-- microseconds, as everywhere.
CREATE TABLE audit_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at    BIGINT  NOT NULL,
    event_type     TEXT    NOT NULL,
    actor_id       BIGINT,
    target_id      BIGINT,
    client_address TEXT,
    request_id     TEXT,
    outcome        TEXT    NOT NULL,
    detail         TEXT    NOT NULL DEFAULT '{}'
);
-- The list's filters (a user as actor or as target, a type, a time range) and the purge.
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_type ON audit_events (event_type, occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor_id, occurred_at);
CREATE INDEX audit_events_target ON audit_events (target_id, occurred_at);
