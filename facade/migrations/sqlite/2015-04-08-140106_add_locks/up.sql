-- The table behind diesel-facade's lock guard: one row per lock name.
CREATE TABLE locks (
    id VARCHAR(50) NOT NULL PRIMARY KEY,
    ts TIMESTAMP NOT NULL
);
