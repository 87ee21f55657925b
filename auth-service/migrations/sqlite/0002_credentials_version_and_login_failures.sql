-- Bumped by every write that withdraws a user's credentials (password change, deactivation,
-- logout-all). A credential is issued only if the version its issuer read is still current,
-- checked in the issuing transaction, so a login racing such a write cannot keep its token.
ALTER TABLE users ADD COLUMN credentials_version BIGINT NOT NULL DEFAULT 0;

-- Failed logins (and wrong old passwords), counted per account and client address and per
-- account alone. An unknown name is counted by the name, the same way, so that the answers
-- never tell which accounts exist.
CREATE TABLE login_failures (
    scope        TEXT   PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT,
    updated_at   BIGINT NOT NULL
);

ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN locked_until;
