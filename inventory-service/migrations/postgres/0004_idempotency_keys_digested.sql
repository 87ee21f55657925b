-- Keys are stored as their SHA-256 and requests as their HMAC under the key from now on
-- (service_kit::idempotency); rows written before, with the key as sent, are dropped: a retry of
-- one of those writes within its day applies afresh.
DELETE FROM idempotency_keys;
