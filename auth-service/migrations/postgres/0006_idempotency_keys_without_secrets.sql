-- Keys were stored as sent, with an unkeyed SHA-256 of the request, which a word list turns back
-- into the password of an admin's user create or password set. From now on a key is stored as
-- its SHA-256 and the request as its HMAC under the key (service_kit::idempotency). The rows
-- written before are dropped: a retry of one of those writes within its day applies afresh.
DELETE FROM idempotency_keys;
