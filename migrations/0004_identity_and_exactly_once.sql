-- Identity (invariant 6), postpaid credit that returns cannot lift past the
-- limit, and Idempotency-Keys recorded with the effect they guard
-- (invariant 7).

-- A user is verified once they used a token the platform sent to the
-- e-mail itself (a password reset).
ALTER TABLE users ADD COLUMN verified_at BIGINT;

-- A membership is reached by the user's own credentials (sessions) only
-- once that user accepted it. API keys issued with it (the operator's
-- first admin key) work before. Memberships that exist already were made
-- under the earlier rules and stay reachable.
ALTER TABLE memberships ADD COLUMN accepted_at BIGINT;
UPDATE memberships SET accepted_at = created_at;

-- The user an invitation created itself (the first admin of a new parent):
-- the only user whose credentials that invitation may set.
ALTER TABLE invitations ADD COLUMN created_user_id TEXT REFERENCES users (id);
-- Open invitations of a first admin who has no password yet were the ones
-- that created that user.
UPDATE invitations SET created_user_id = (
    SELECT u.id FROM users u WHERE u.email_key = invitations.email_key AND u.password_hash IS NULL)
WHERE used_at IS NULL AND EXISTS (
    SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
    WHERE m.account_id = invitations.account_id AND u.email_key = invitations.email_key
      AND u.password_hash IS NULL);

-- A password reset: asked for by e-mail, its token minted and mailed by the
-- outbox (never stored in clear), used once.
CREATE TABLE password_resets (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    -- SHA-256 of the token; NULL until the outbox mints and sends it.
    token_hash   TEXT UNIQUE,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    claimed_until BIGINT,
    delivered_at BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX password_resets_undelivered ON password_resets (delivered_at, id);
CREATE INDEX password_resets_by_user ON password_resets (user_id, created_at);

-- A postpaid month: `restored_micros` is the part of the returns that gave
-- credit back, never more than was spent or allocated in the same month, so
-- budget allocated last month and returned this month cannot lift this
-- month past its limit. The available credit the balance route shows is
-- exactly what this table allows: limit - (usage + allocated - restored).
CREATE TABLE monthly_spend_v2 (
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    month            TEXT NOT NULL,
    usage_micros     BIGINT NOT NULL DEFAULT 0 CHECK (usage_micros >= 0),
    allocated_micros BIGINT NOT NULL DEFAULT 0 CHECK (allocated_micros >= 0),
    returned_micros  BIGINT NOT NULL DEFAULT 0 CHECK (returned_micros >= 0),
    restored_micros  BIGINT NOT NULL DEFAULT 0 CHECK (restored_micros >= 0),
    limit_micros     BIGINT,
    CONSTRAINT restored_within_returned CHECK (restored_micros <= returned_micros),
    CONSTRAINT monthly_net_not_negative CHECK (usage_micros + allocated_micros - restored_micros >= 0),
    CONSTRAINT within_monthly_limit CHECK (limit_micros IS NULL
        OR usage_micros + allocated_micros - restored_micros <= limit_micros),
    -- A third of the ledger's range each (domain::money::COUNTER_MICROS_MAX),
    -- so the sums above cannot overflow.
    CONSTRAINT within_storage_range CHECK (usage_micros <= 3000000000000000000
        AND allocated_micros <= 3000000000000000000 AND returned_micros <= 3000000000000000000),
    PRIMARY KEY (account_id, month)
);
INSERT INTO monthly_spend_v2 (account_id, month, usage_micros, allocated_micros, returned_micros,
                              restored_micros, limit_micros)
SELECT account_id, month, usage_micros, allocated_micros, returned_micros,
       CASE WHEN returned_micros < usage_micros + allocated_micros
            THEN returned_micros ELSE usage_micros + allocated_micros END,
       limit_micros
FROM monthly_spend;
DROP TABLE monthly_spend;
ALTER TABLE monthly_spend_v2 RENAME TO monthly_spend;

-- Idempotency-Keys: the row is written in the transaction of the effect it
-- guards (status_code NULL: committed, answer not yet stored), or with the
-- answer of a request that changed nothing (a 4xx). `scope` is the
-- principal, the account acted in and the route. `resource` names what the
-- effect created, so a retry after a lost answer replays it. Secrets are
-- never stored: `redacted` lists the fields a replay leaves out.
CREATE TABLE idempotency_keys_v2 (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    -- The request that wrote the row: only it stores the answer of an
    -- effect, so a twin's refusal never overwrites a committed effect.
    owner         TEXT,
    resource      TEXT,
    status_code   BIGINT,
    content_type  TEXT,
    response_body TEXT,
    redacted      TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
-- Answers stored under the old scoping (the raw path) are kept, so a retry
-- across the upgrade is still answered; keys of requests that never
-- answered are dropped (their effect is in a transaction of its own).
INSERT INTO idempotency_keys_v2 (scope, key, request_hash, status_code, content_type,
                                 response_body, created_at)
SELECT scope, key, request_hash, status_code, content_type, response_body, created_at
FROM idempotency_keys WHERE status_code IS NOT NULL;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_v2 RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- The decision log's retention purge deletes by age.
CREATE INDEX decisions_by_age ON decisions (created_at);
