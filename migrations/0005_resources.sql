-- Lines and SIMs (seeds 003, 004): resources and where they are, bulk
-- operations, offers, billing, merges and data retention.
-- Same dialect as before: times in microseconds (BIGINT), money in integer
-- micro-units, lists and maps as JSON text.

-- A merged sub-account is stored as deleted with `merged_into` set (the API
-- shows it as `merged`); `purged_at` marks an account whose personal data
-- was removed after the retention period.
ALTER TABLE accounts ADD COLUMN merged_into TEXT REFERENCES accounts (id);
ALTER TABLE accounts ADD COLUMN purged_at BIGINT;

-- One row per line or SIM. `account_id` is its one holder: the parent itself
-- while it is in the Available pool, or one of the parent's sub-accounts.
-- Every move is a conditional UPDATE of that column (`WHERE account_id =
-- $from`), so a resource is in exactly one place at every instant.
CREATE TABLE resources (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('line', 'sim')),
    -- E.164 for a line, the ICCID for a SIM; unique on the platform.
    identifier  TEXT NOT NULL UNIQUE,
    -- The parent of the tree it belongs to (fixed at provisioning).
    tree_id     TEXT NOT NULL REFERENCES accounts (id),
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    status      TEXT NOT NULL,
    tags        TEXT NOT NULL DEFAULT '[]',
    -- The number of the last `resource_history` row: every change writes
    -- the next one, in the same transaction.
    seq         BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    assigned_at BIGINT NOT NULL,
    CONSTRAINT status_of_kind CHECK (
        (kind = 'line' AND status IN ('active', 'disconnected'))
        OR (kind = 'sim' AND status IN ('inventory', 'active', 'suspended', 'terminated')))
);
CREATE INDEX resources_by_tree ON resources (tree_id, id);
CREATE INDEX resources_by_tree_kind_status ON resources (tree_id, kind, status, id);
CREATE INDEX resources_by_account ON resources (account_id, id);
-- Counts per holder read the index alone.
CREATE INDEX resources_counts ON resources (account_id, kind, status);

-- Tags, one row each, so a tag filter is an index lookup.
CREATE TABLE resource_tags (
    tree_id     TEXT NOT NULL REFERENCES accounts (id),
    tag         TEXT NOT NULL,
    resource_id TEXT NOT NULL REFERENCES resources (id),
    PRIMARY KEY (tree_id, tag, resource_id)
);

-- Every placement and status a resource had: from, to, when, by which
-- operation. Billing reads it; rows are never updated.
CREATE TABLE resource_history (
    resource_id     TEXT NOT NULL REFERENCES resources (id),
    seq             BIGINT NOT NULL,
    -- What changed: provisioned, moved, or its status.
    event           TEXT NOT NULL CHECK (event IN ('provision', 'transfer', 'status', 'merge')),
    from_account_id TEXT REFERENCES accounts (id),
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    from_status     TEXT,
    status          TEXT NOT NULL,
    operation_id    TEXT,
    at              BIGINT NOT NULL,
    PRIMARY KEY (resource_id, seq)
);
CREATE INDEX resource_history_by_time ON resource_history (at, resource_id);

-- Bulk work (transfers and SIM/line actions), durable across restarts.
-- A host claims a queued or expired operation by a conditional update of
-- `claimed_by`/`claimed_until` (PostgreSQL: FOR UPDATE SKIP LOCKED first).
CREATE TABLE operations (
    id             TEXT PRIMARY KEY,
    tree_id        TEXT NOT NULL REFERENCES accounts (id),
    -- The account the operation was requested in.
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    kind           TEXT NOT NULL CHECK (kind IN ('transfer', 'activate', 'suspend', 'resume', 'terminate', 'disconnect')),
    -- A transfer's destination (a sub-account, or the parent: Available).
    to_account_id  TEXT REFERENCES accounts (id),
    requested_by   TEXT,
    request        TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    total          BIGINT NOT NULL DEFAULT 0 CHECK (total >= 0),
    succeeded      BIGINT NOT NULL DEFAULT 0 CHECK (succeeded >= 0),
    failed         BIGINT NOT NULL DEFAULT 0 CHECK (failed >= 0),
    claimed_by     TEXT,
    claimed_until  BIGINT,
    created_at     BIGINT NOT NULL,
    finished_at    BIGINT,
    CHECK (succeeded + failed <= total),
    CHECK ((status IN ('completed', 'failed')) = (finished_at IS NOT NULL))
);
CREATE INDEX operations_by_tree ON operations (tree_id, id);
CREATE INDEX operations_by_account ON operations (account_id, id);
CREATE INDEX operations_pending ON operations (status, claimed_until);

-- One row per item of an operation, written when the operation is created;
-- an item is done exactly once (`WHERE outcome IS NULL`), in the same
-- transaction as its effect.
CREATE TABLE operation_items (
    operation_id TEXT NOT NULL REFERENCES operations (id),
    seq          BIGINT NOT NULL,
    resource_id  TEXT NOT NULL,
    outcome      TEXT CHECK (outcome IN ('succeeded', 'failed')),
    code         TEXT,
    reason       TEXT,
    done_at      BIGINT,
    PRIMARY KEY (operation_id, seq),
    CHECK ((outcome IS NULL) = (done_at IS NULL))
);
CREATE INDEX operation_items_failed ON operation_items (operation_id, outcome, seq);

-- Rate plans, set by the operator.
CREATE TABLE offers (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('line', 'sim')),
    monthly_fee_micros BIGINT NOT NULL CHECK (monthly_fee_micros >= 0),
    currency           TEXT NOT NULL,
    included           TEXT NOT NULL DEFAULT '{}',
    created_at         BIGINT NOT NULL
);

-- The offer of a place per kind: a sub-account's assigned offer, or on the
-- parent's own id its default offer (the Available pool, and sub-accounts
-- without one of their own).
CREATE TABLE account_offers (
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    kind        TEXT NOT NULL CHECK (kind IN ('line', 'sim')),
    offer_id    TEXT NOT NULL REFERENCES offers (id),
    assigned_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, kind)
);

-- Credits and discounts on a period's bill, by the operator.
CREATE TABLE adjustments (
    id            TEXT PRIMARY KEY,
    tree_id       TEXT NOT NULL REFERENCES accounts (id),
    -- The group it applies to; NULL: the parent's own (Available) group.
    account_id    TEXT REFERENCES accounts (id),
    kind          TEXT NOT NULL CHECK (kind IN ('credit', 'discount')),
    amount_micros BIGINT NOT NULL CHECK (amount_micros > 0),
    currency      TEXT NOT NULL,
    reason        TEXT NOT NULL,
    period        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX adjustments_by_tree_period ON adjustments (tree_id, period);

-- A closed period's bill, fixed: its groups and items as JSON.
CREATE TABLE invoices (
    id           TEXT PRIMARY KEY,
    tree_id      TEXT NOT NULL REFERENCES accounts (id),
    period       TEXT NOT NULL,
    currency     TEXT NOT NULL,
    total_micros BIGINT NOT NULL,
    -- What the ledger could not take at close (a prepaid balance never goes
    -- below zero): shown as due.
    due_micros   BIGINT NOT NULL DEFAULT 0 CHECK (due_micros >= 0),
    document     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (tree_id, period)
);

-- Merges of sub-accounts: requested, then approved (and run) or rejected.
CREATE TABLE merges (
    id           TEXT PRIMARY KEY,
    tree_id      TEXT NOT NULL REFERENCES accounts (id),
    target_id    TEXT NOT NULL REFERENCES accounts (id),
    sources      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'rejected')),
    requested_by TEXT NOT NULL,
    decided_by   TEXT,
    created_at   BIGINT NOT NULL,
    decided_at   BIGINT,
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX merges_by_tree ON merges (tree_id, id);
