-- The keys of idempotent writes (service_kit::idempotency): one row per caller, method and key,
-- written in the transaction of the write it answers, with the request's SHA-256 fingerprint and
-- the answer (the encoded response, or the error status the request earned).
CREATE TABLE idempotency_keys (
    user_id         BIGINT NOT NULL,
    method          TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    fingerprint     BYTEA  NOT NULL,
    response        BYTEA,
    status_code     BIGINT,
    status_message  TEXT,
    status_details  BYTEA,
    expires_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, method, idempotency_key)
);

-- For the purge of expired keys.
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
