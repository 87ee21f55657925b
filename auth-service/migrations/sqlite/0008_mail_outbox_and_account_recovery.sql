-- Mail that must not be lost (auth-service/src/mail). A message is written here in the same
-- transaction as the change that causes it, and the sender delivers it afterwards: a row is
-- claimed for a while (`claimed_until`, so one replica sends it), sent, and marked sent, its
-- body (which may hold a link with a one-time token) erased. A failed attempt is retried at
-- `next_attempt_at`, later each time.
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient       TEXT   NOT NULL,
    subject         TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- Password reset tokens, as the SHA-256 digest of the key mailed. `fingerprint` is a digest of
-- the user's password hash and e-mail when it was issued: a token dies when either changes,
-- however that happens (Django's PasswordResetTokenGenerator does the same).
CREATE TABLE password_resets (
    digest      TEXT   PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX password_resets_user_id ON password_resets (user_id);

-- E-mail verification keys, as digests, for the address (its lower-cased key) they were sent to.
CREATE TABLE email_verifications (
    digest     TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email_key  TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX email_verifications_user_id ON email_verifications (user_id);

-- Users made before this count as verified, as allauth counts users without an EmailAddress.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 1;
