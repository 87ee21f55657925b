-- The product feed across inventory replicas (DESIGN.md, "Design: the product cache"), on the
-- model of auth's revocation feed: every change to a product is announced on the channel
-- `inventory_products` by a trigger, so the announcement commits with the write itself, and no
-- write (an import, an operator's own SQL) can skip it. PostgreSQL delivers notifications in
-- commit order to every listening replica, which drops what its product cache holds.
CREATE FUNCTION inventory_announce_product() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('inventory_products', 'product:' || OLD.id);
    ELSE
        PERFORM pg_notify('inventory_products', 'product:' || NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER products_changed
    AFTER INSERT OR UPDATE OR DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION inventory_announce_product();

-- A TRUNCATE fires no row trigger: it announces that every product changed.
CREATE FUNCTION inventory_announce_products() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('inventory_products', 'products');
    RETURN NULL;
END
$$;

CREATE TRIGGER products_truncated
    AFTER TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION inventory_announce_products();

-- Each replica keeping a product cache, and how far it has applied the feed. A writer, after
-- its commit, announces a mark (a number from `inventory_change_marks`) on the same channel and
-- waits until every replica whose lease is live has acknowledged a mark at least as high. A
-- replica renews its lease only while its own announcements come back to it, so a replica cut
-- off from the feed stops serving its cache before its own lease here runs out.
CREATE SEQUENCE inventory_change_marks;

CREATE TABLE inventory_replicas (
    replica     TEXT        PRIMARY KEY,
    acked_mark  BIGINT      NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);

-- A writer's mark, drawn and announced at once.
CREATE FUNCTION inventory_change_mark() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    mark bigint := nextval('inventory_change_marks');
BEGIN
    PERFORM pg_notify('inventory_products', 'mark:' || mark);
    RETURN mark;
END
$$;
