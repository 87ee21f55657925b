-- Products and their stock. Prices are integer cents, never floats; timestamps are unix
-- microseconds (the types sqlx's Any driver carries on both backends).
CREATE TABLE products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    -- The CHECK backs up AdjustStock's guarded UPDATE: stock can never be stored below zero.
    quantity BIGINT NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
