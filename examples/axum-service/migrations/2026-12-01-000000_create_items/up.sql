CREATE TABLE items (
    id SERIAL PRIMARY KEY,
    name VARCHAR(64) NOT NULL UNIQUE,
    qty INTEGER NOT NULL CHECK (qty >= 0),
    created_by VARCHAR(64)
);
