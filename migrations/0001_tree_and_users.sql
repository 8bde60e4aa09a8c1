-- The account tree, users and credentials.
-- Written in the SQL common to SQLite and PostgreSQL: times are microseconds
-- since the Unix epoch (BIGINT), money is integer micro-units (BIGINT, scale 6),
-- flags are 0/1 BIGINT, lists and maps are JSON text.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL CHECK (kind IN ('parent', 'subaccount')),
    parent_id         TEXT,
    -- Always 'parent' when set: with the foreign key below, the schema itself
    -- refuses a sub-account under a sub-account (invariant 1).
    parent_kind       TEXT CHECK (parent_kind = 'parent'),
    name              TEXT NOT NULL,
    name_key          TEXT NOT NULL,   -- Unicode case-folded name
    email             TEXT NOT NULL,
    email_key         TEXT NOT NULL,   -- case-folded e-mail
    external_id       TEXT,
    company_name      TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('invited', 'active', 'suspended', 'deleted')),
    -- What a cascade restores; set only while suspended.
    previous_status   TEXT CHECK (previous_status IN ('invited', 'active')),
    suspended_by      TEXT CHECK (suspended_by IN ('self', 'parent')),
    timezone          TEXT NOT NULL,
    channels          TEXT NOT NULL,
    -- Parent only (sub-accounts inherit them through parent_id).
    billing_type      TEXT CHECK (billing_type IN ('prepaid', 'postpaid')),
    currency          TEXT,
    region            TEXT,
    prices            TEXT,
    monthly_credit_limit_micros BIGINT CHECK (monthly_credit_limit_micros >= 0),
    subaccounts_enabled         BIGINT NOT NULL DEFAULT 0 CHECK (subaccounts_enabled IN (0, 1)),
    subaccount_module           TEXT CHECK (subaccount_module IN ('enterprise', 'reseller')),
    monthly_usage_limit_enabled BIGINT NOT NULL DEFAULT 0 CHECK (monthly_usage_limit_enabled IN (0, 1)),
    -- Sub-account only.
    credit_mode                 TEXT CHECK (credit_mode IN ('assigned_budget', 'shared_usage')),
    monthly_usage_limit_micros  BIGINT CHECK (monthly_usage_limit_micros >= 0),
    low_balance_threshold_micros BIGINT CHECK (low_balance_threshold_micros >= 0),
    low_balance_emails          TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    deleted_at        BIGINT,
    UNIQUE (id, kind),
    FOREIGN KEY (parent_id, parent_kind) REFERENCES accounts (id, kind),
    CHECK ((kind = 'parent' AND parent_id IS NULL AND parent_kind IS NULL
            AND billing_type IS NOT NULL AND currency IS NOT NULL AND prices IS NOT NULL
            AND credit_mode IS NULL)
        OR (kind = 'subaccount' AND parent_id IS NOT NULL AND parent_kind = 'parent'
            AND billing_type IS NULL AND currency IS NULL AND prices IS NULL
            AND credit_mode IS NOT NULL)),
    CHECK ((status = 'suspended') = (suspended_by IS NOT NULL)),
    CHECK (previous_status IS NULL OR status = 'suspended'),
    CHECK ((status = 'deleted') = (deleted_at IS NOT NULL))
);
-- An account's e-mail is unique on the platform until its data is purged.
CREATE UNIQUE INDEX accounts_email_key ON accounts (email_key);
-- A name is unique within its parent among sub-accounts that are not deleted.
CREATE UNIQUE INDEX accounts_subaccount_name_key ON accounts (parent_id, name_key)
    WHERE parent_id IS NOT NULL AND status <> 'deleted';
CREATE INDEX accounts_by_parent ON accounts (parent_id, id);
CREATE INDEX accounts_parents ON accounts (kind, id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL,
    name          TEXT,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email_key);

CREATE TABLE memberships (
    user_id    TEXT NOT NULL REFERENCES users (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    role       TEXT NOT NULL CHECK (role IN ('admin', 'advanced', 'basic')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, account_id)
);
CREATE INDEX memberships_by_account ON memberships (account_id, user_id);

CREATE TABLE invitations (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    email      TEXT NOT NULL,
    email_key  TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'advanced', 'basic')),
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX invitations_by_account ON invitations (account_id, id);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,   -- SHA-256 of the secret, hex
    user_id     TEXT NOT NULL REFERENCES users (id),
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_by_account ON api_keys (account_id, id);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users (id),
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,   -- the account acted in, or 'operator'
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   BIGINT,          -- NULL while the first request is in progress
    content_type  TEXT,
    response_body TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
