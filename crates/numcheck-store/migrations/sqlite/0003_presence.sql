-- A counter of profile changes made by processes that do not keep the in-memory presence
-- filter (the CLI importing next to a running server), and the number of profiles, so the
-- server can size its filter and knows when to rebuild it.
CREATE TABLE evidence_meta (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    epoch    INTEGER NOT NULL,
    profiles INTEGER NOT NULL
);
INSERT INTO evidence_meta (id, epoch, profiles) SELECT 1, 0, COUNT(*) FROM profiles;
