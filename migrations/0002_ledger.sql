-- The double-entry ledger (invariant 4), messages and the notification outbox.

-- One row per wallet. Balances are kept here in the same transaction as the
-- transfers that move them, and can always be recomputed from `transfers`.
CREATE TABLE ledger_accounts (
    id             TEXT PRIMARY KEY,   -- la_{kind}_{key}_{currency}
    kind           TEXT NOT NULL CHECK (kind IN ('balance', 'credit', 'budget', 'topups', 'revenue', 'closed')),
    -- The customer account it belongs to; NULL for the platform's own
    -- accounts (top-ups received, usage revenue, closed accounts).
    owner_id       TEXT REFERENCES accounts (id),
    currency       TEXT NOT NULL,
    balance_micros BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    -- A prepaid balance and an assigned budget never go below zero.
    CONSTRAINT never_negative CHECK (kind NOT IN ('balance', 'budget') OR balance_micros >= 0),
    -- ... and never above the maximum balance (domain::money::BALANCE_MAX_UNITS).
    CONSTRAINT within_balance_max CHECK (kind NOT IN ('balance', 'budget')
        OR balance_micros <= 100000000000000000),
    -- No ledger account leaves the range a 64-bit integer holds with room
    -- for one more amount (domain::money::STORED_MICROS_MAX).
    CONSTRAINT within_storage_range CHECK (balance_micros BETWEEN -9000000000000000000 AND 9000000000000000000),
    CHECK ((kind IN ('balance', 'credit', 'budget')) = (owner_id IS NOT NULL))
);
CREATE INDEX ledger_accounts_by_owner ON ledger_accounts (owner_id);

-- Immutable: the store has no UPDATE or DELETE for this table; a correction
-- is a new transfer.
CREATE TABLE transfers (
    id                   TEXT PRIMARY KEY,
    idempotency_key      TEXT NOT NULL UNIQUE,
    kind                 TEXT NOT NULL CHECK (kind IN ('topup', 'allocation', 'return', 'usage', 'closure')),
    debit_id             TEXT NOT NULL REFERENCES ledger_accounts (id),
    credit_id            TEXT NOT NULL REFERENCES ledger_accounts (id),
    amount_micros        BIGINT NOT NULL CHECK (amount_micros > 0),
    currency             TEXT NOT NULL,
    debit_balance_after  BIGINT NOT NULL,
    credit_balance_after BIGINT NOT NULL,
    -- The account the transfer is for (the sender of a message, the
    -- sub-account given budget), and the parent of its tree.
    subject_id           TEXT NOT NULL REFERENCES accounts (id),
    tree_id              TEXT NOT NULL REFERENCES accounts (id),
    month                TEXT NOT NULL,   -- UTC calendar month, 'YYYY-MM'
    reference            TEXT,
    created_at           BIGINT NOT NULL,
    CHECK (debit_id <> credit_id)
);
CREATE INDEX transfers_by_debit ON transfers (debit_id, id);
CREATE INDEX transfers_by_credit ON transfers (credit_id, id);
CREATE INDEX transfers_by_subject ON transfers (subject_id, id);
CREATE INDEX transfers_by_tree_month ON transfers (tree_id, month);

-- What a postpaid parent (or a shared-usage sub-account) spent in a month,
-- kept beside the transfers so limits are checked with one conditional update.
CREATE TABLE monthly_spend (
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    month            TEXT NOT NULL,
    usage_micros     BIGINT NOT NULL DEFAULT 0 CHECK (usage_micros >= 0),
    allocated_micros BIGINT NOT NULL DEFAULT 0 CHECK (allocated_micros >= 0),
    returned_micros  BIGINT NOT NULL DEFAULT 0 CHECK (returned_micros >= 0),
    -- The limit the last posting was held to (NULL: none); the row can
    -- never be written past it.
    limit_micros     BIGINT,
    CONSTRAINT within_monthly_limit CHECK (limit_micros IS NULL
        OR usage_micros + allocated_micros - returned_micros <= limit_micros),
    -- A third of the ledger's range each, so the sum above cannot overflow
    -- (domain::money::COUNTER_MICROS_MAX).
    CONSTRAINT within_storage_range CHECK (usage_micros <= 3000000000000000000
        AND allocated_micros <= 3000000000000000000 AND returned_micros <= 3000000000000000000),
    PRIMARY KEY (account_id, month)
);

CREATE TABLE messages (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    channel      TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('sent')),
    price_micros BIGINT NOT NULL CHECK (price_micros >= 0),
    currency     TEXT NOT NULL,
    transfer_id  TEXT REFERENCES transfers (id),
    created_at   BIGINT NOT NULL
);
CREATE INDEX messages_by_account ON messages (account_id, id);

-- The durable outbox of notifications (low-balance alerts).
CREATE TABLE notifications (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    kind             TEXT NOT NULL CHECK (kind IN ('low_balance')),
    threshold_micros BIGINT,
    budget_micros    BIGINT,
    emails           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    -- A host delivering it holds it until then, so two hosts never both send.
    claimed_until    BIGINT,
    delivered_at     BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX notifications_by_account ON notifications (account_id, id);
CREATE INDEX notifications_undelivered ON notifications (delivered_at, id);
