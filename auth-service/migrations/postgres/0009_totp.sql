-- The second factor (TOTP, RFC 6238). The secret is a shared secret the service must compute
-- codes from, so it is stored as it is (base32), not as a digest: the database's own protection
-- is what guards it. Pending until confirmed_at is set; last_step is the last 30 s step whose
-- code was accepted, and no code of that step or an earlier one is accepted again.
CREATE TABLE totp_factors (
    user_id      BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT
);

-- Single-use recovery codes, issued ten at a confirmation: only their SHA-256 digests.
CREATE TABLE totp_recovery_codes (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest  TEXT   NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, digest)
);

-- Logins waiting for their second factor: the SHA-256 digest of the challenge handed out, whose
-- user it is, until when, and what the login asked for (the caller's opaque route name, and
-- whether to open a session), so that the completion answers as the login would have. The
-- user's credentials version at the login: a withdrawing write since (a password change, a
-- deactivation) leaves the challenge unable to issue anything.
CREATE TABLE mfa_challenges (
    digest              TEXT    PRIMARY KEY,
    user_id             BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at          BIGINT  NOT NULL,
    context             TEXT    NOT NULL,
    credentials_version BIGINT  NOT NULL,
    open_session        BOOLEAN NOT NULL
);
CREATE INDEX mfa_challenges_user_id ON mfa_challenges (user_id);
