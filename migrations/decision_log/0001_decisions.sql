-- The decision log's own SQLite file (`canopy.db-decisions`): the same
-- table as migrations 0003 and 0004 make in the database itself on
-- PostgreSQL. `IF NOT EXISTS`: a file made before this migration set
-- already has it.
CREATE TABLE IF NOT EXISTS decisions (
    id               TEXT PRIMARY KEY,
    tree_id          TEXT,
    account_id       TEXT,
    hook             TEXT NOT NULL,
    action           TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    reason           TEXT,
    shadow_disagrees BIGINT NOT NULL DEFAULT 0,
    policies         TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_tree ON decisions (tree_id, id);
CREATE INDEX IF NOT EXISTS decisions_by_account ON decisions (account_id, id);
CREATE INDEX IF NOT EXISTS decisions_by_age ON decisions (created_at);
