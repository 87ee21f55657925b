-- Users and their credentials. Times are unix microseconds (BIGINT), flags 0/1 (INTEGER): the
-- column types sqlx's Any driver reads the same way from SQLite and PostgreSQL.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT,
    -- Lower-cased copies, computed by the service (SQLite's lower() is ASCII-only), carry the
    -- case-insensitive uniqueness.
    username_key  TEXT,
    email         TEXT,
    email_key     TEXT,
    password_hash TEXT    NOT NULL,
    first_name    TEXT    NOT NULL DEFAULT '',
    last_name     TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL DEFAULT 'CLERK' CHECK (role IN ('CLERK', 'MANAGER', 'ADMIN')),
    is_staff      INTEGER NOT NULL DEFAULT 0,
    is_superuser  INTEGER NOT NULL DEFAULT 0,
    is_active     INTEGER NOT NULL DEFAULT 1,
    date_joined   BIGINT  NOT NULL,
    last_login    BIGINT,
    failed_logins BIGINT  NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    CONSTRAINT users_username_key UNIQUE (username_key),
    CONSTRAINT users_email_key UNIQUE (email_key),
    CHECK (username IS NOT NULL OR email IS NOT NULL)
);

-- Tokens and sessions. Only the SHA-256 digest of a key is stored. A refreshed-away row stays
-- (refreshed_at set) until its family would have expired, so its reuse can be caught.
CREATE TABLE credentials (
    digest       TEXT   PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT   NOT NULL CHECK (kind IN ('token', 'session')),
    family       TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    refreshed_at BIGINT
);
CREATE INDEX credentials_user_id ON credentials (user_id);
CREATE INDEX credentials_family ON credentials (family);
