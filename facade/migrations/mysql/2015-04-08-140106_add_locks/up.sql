-- The table behind diesel-facade's lock guard: one row per lock name.
-- InnoDB for row locks and Galera replication; utf8mb4 so a 50-character
-- name is 50 characters whatever the script.
CREATE TABLE locks (
    id VARCHAR(50) NOT NULL PRIMARY KEY,
    ts DATETIME NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
