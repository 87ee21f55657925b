-- The Django primary key an imported user came from (as the dump writes it), so that a
-- re-import skips exactly that user and a DRF token is attached only to the user imported from
-- its own `user` pk; NULL for users made here. Unique where set.
ALTER TABLE users ADD COLUMN django_pk TEXT;
CREATE UNIQUE INDEX users_django_pk ON users (django_pk);
