-- The revocation feed across auth replicas (DESIGN.md, "Across replicas"). Every write that
-- withdraws a verdict is announced on the channel `auth_revocations` by a trigger, so the
-- announcement commits with the write itself, and no write (an import, an operator's own SQL)
-- can skip it. PostgreSQL delivers notifications in commit order to every listening replica,
-- which forwards them to the verdict caches it serves.

-- A credential is withdrawn when it is deleted or refreshed away. One already refreshed away
-- is no longer served by anybody, nor is one expired long ago: the hourly purge of those
-- announces nothing.
CREATE FUNCTION auth_announce_credential() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.refreshed_at IS NULL
       AND OLD.expires_at > (extract(epoch FROM clock_timestamp()) * 1000000)::bigint - 86400000000
    THEN
        PERFORM pg_notify('auth_revocations', 'credential:' || OLD.digest);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER credentials_withdrawn
    AFTER DELETE OR UPDATE ON credentials
    FOR EACH ROW EXECUTE FUNCTION auth_announce_credential();

-- A user's verdicts carry the user: any change but a login's timestamp, or a rehash of the
-- same password, withdraws them.
CREATE FUNCTION auth_announce_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auth_revocations', 'user:' || OLD.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_changed
    AFTER UPDATE ON users
    FOR EACH ROW
    WHEN ((OLD.username, OLD.email, OLD.first_name, OLD.last_name, OLD.role, OLD.is_staff,
           OLD.is_superuser, OLD.is_active, OLD.credentials_version)
          IS DISTINCT FROM
          (NEW.username, NEW.email, NEW.first_name, NEW.last_name, NEW.role, NEW.is_staff,
           NEW.is_superuser, NEW.is_active, NEW.credentials_version))
    EXECUTE FUNCTION auth_announce_user();

CREATE TRIGGER users_deleted
    AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION auth_announce_user();

-- Each replica serving verdict caches, and how far it has passed the feed on. A writer, after
-- its commit, announces a mark (a number from `auth_revocation_marks`) on the same channel and
-- waits until every replica whose lease is live has acknowledged a mark at least as high: a
-- replica acknowledges a mark once every cache it serves has applied what came before it. A
-- replica renews its lease only while its own announcements come back to it, so a replica cut
-- off from the feed stops granting its caches leases before its own lease here runs out.
CREATE SEQUENCE auth_revocation_marks;

CREATE TABLE auth_replicas (
    replica     TEXT        PRIMARY KEY,
    acked_mark  BIGINT      NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);

-- A writer's mark, drawn and announced at once.
CREATE FUNCTION auth_revocation_mark() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    mark bigint := nextval('auth_revocation_marks');
BEGIN
    PERFORM pg_notify('auth_revocations', 'mark:' || mark);
    RETURN mark;
END
$$;
