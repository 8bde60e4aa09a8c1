-- Traffic (API.md, "Traffic"): inbound messages and conversations, the
-- analytics counters kept on write, scheduled campaigns, webhooks and the
-- event outbox they are delivered from.

-- Messages gain a direction, the account's line and a conversation; inbound
-- messages have no sending user. SQLite cannot change a column or a CHECK in
-- place, so the table is rebuilt (nothing references it).
CREATE TABLE messages_v2 (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    -- The sender of an outbound message; for an inbound one, the user who
    -- last wrote in its conversation (a basic user sees the replies to its
    -- own messages), or NULL.
    user_id         TEXT REFERENCES users (id),
    direction       TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    channel         TEXT NOT NULL,
    -- The account's line (E.164): `from` of an outbound message, `to` of an
    -- inbound one; '' when an outbound message names no line.
    line            TEXT NOT NULL DEFAULT '',
    -- The other party: the recipient of an outbound message, the sender of
    -- an inbound one.
    remote          TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('sent', 'received')),
    price_micros    BIGINT NOT NULL CHECK (price_micros >= 0),
    currency        TEXT NOT NULL,
    transfer_id     TEXT REFERENCES transfers (id),
    conversation_id TEXT,
    campaign_id     TEXT,
    created_at      BIGINT NOT NULL,
    CHECK ((direction = 'outbound') = (status = 'sent'))
);
INSERT INTO messages_v2 (id, account_id, user_id, direction, channel, line, remote, body, status,
                         price_micros, currency, transfer_id, conversation_id, campaign_id, created_at)
SELECT id, account_id, user_id, 'outbound', channel, '', recipient, body, status,
       price_micros, currency, transfer_id, NULL, NULL, created_at
FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v2 RENAME TO messages;
CREATE INDEX messages_by_account ON messages (account_id, id);
CREATE INDEX messages_by_direction ON messages (account_id, direction, id);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX messages_by_campaign ON messages (campaign_id);

-- One account's line with one remote number on one channel. Its state is
-- kept on every message write, never recomputed from the messages.
CREATE TABLE conversations (
    id               TEXT PRIMARY KEY,
    tree_id          TEXT NOT NULL REFERENCES accounts (id),
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    channel          TEXT NOT NULL,
    line             TEXT NOT NULL,
    remote           TEXT NOT NULL,
    -- 'new' until an inbound message follows an outbound one.
    state            TEXT NOT NULL CHECK (state IN ('new', 'responded')),
    -- The user of the last outbound message (replies count as theirs).
    user_id          TEXT,
    messages         BIGINT NOT NULL DEFAULT 0 CHECK (messages >= 0),
    first_message_at BIGINT NOT NULL,
    last_message_at  BIGINT NOT NULL,
    last_outbound_at BIGINT,
    last_inbound_at  BIGINT,
    responded_at     BIGINT,
    UNIQUE (account_id, channel, line, remote)
);
CREATE INDEX conversations_by_account ON conversations (account_id, id);

-- Which periods (a UTC day 'YYYY-MM-DD' or month 'YYYY-MM') a conversation
-- had an outbound message in, and whether that was answered: the counters
-- below move only when one of these flags first turns on.
CREATE TABLE conversation_periods (
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    granularity     TEXT NOT NULL CHECK (granularity IN ('day', 'month')),
    period          TEXT NOT NULL,
    outbound        BIGINT NOT NULL DEFAULT 0 CHECK (outbound IN (0, 1)),
    responded       BIGINT NOT NULL DEFAULT 0 CHECK (responded IN (0, 1)),
    PRIMARY KEY (conversation_id, granularity, period)
);

-- Analytics, maintained in the same write as each message: one row per
-- account, user ('' = the whole account) and period.
CREATE TABLE traffic_counters (
    tree_id                 TEXT NOT NULL REFERENCES accounts (id),
    account_id              TEXT NOT NULL REFERENCES accounts (id),
    user_id                 TEXT NOT NULL,
    granularity             TEXT NOT NULL CHECK (granularity IN ('day', 'month')),
    period                  TEXT NOT NULL,
    sent                    BIGINT NOT NULL DEFAULT 0 CHECK (sent >= 0),
    received                BIGINT NOT NULL DEFAULT 0 CHECK (received >= 0),
    conversations_new       BIGINT NOT NULL DEFAULT 0 CHECK (conversations_new >= 0),
    -- Conversations with an outbound message in the period.
    conversations_outbound  BIGINT NOT NULL DEFAULT 0 CHECK (conversations_outbound >= 0),
    conversations_responded BIGINT NOT NULL DEFAULT 0 CHECK (conversations_responded >= 0),
    spend_micros            BIGINT NOT NULL DEFAULT 0 CHECK (spend_micros >= 0),
    PRIMARY KEY (account_id, user_id, granularity, period)
);
CREATE INDEX traffic_counters_by_tree ON traffic_counters (tree_id, user_id, granularity, period);

-- Scheduled sends (API.md): claimed by lease on any host, each recipient
-- sent exactly once (`outcome IS NULL` in the transaction that charges it).
CREATE TABLE campaigns (
    id            TEXT PRIMARY KEY,
    tree_id       TEXT NOT NULL REFERENCES accounts (id),
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    created_by    TEXT NOT NULL,
    name          TEXT NOT NULL,
    channel       TEXT NOT NULL,
    line          TEXT NOT NULL DEFAULT '',
    body          TEXT NOT NULL,
    scheduled_at  BIGINT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('scheduled', 'queued', 'sending', 'completed', 'stopped', 'canceled', 'deleted')),
    -- Why a campaign stopped before its end (e.g. 'insufficient_funds').
    stop_reason   TEXT,
    total         BIGINT NOT NULL CHECK (total >= 0),
    sent          BIGINT NOT NULL DEFAULT 0 CHECK (sent >= 0),
    failed        BIGINT NOT NULL DEFAULT 0 CHECK (failed >= 0),
    claimed_by    TEXT,
    claimed_until BIGINT,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT,
    finished_at   BIGINT,
    CHECK (sent + failed <= total)
);
CREATE INDEX campaigns_by_account ON campaigns (account_id, id);
CREATE INDEX campaigns_by_tree ON campaigns (tree_id, id);
CREATE INDEX campaigns_due ON campaigns (status, scheduled_at);

CREATE TABLE campaign_recipients (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    seq         BIGINT NOT NULL,
    recipient   TEXT NOT NULL,
    outcome     TEXT CHECK (outcome IN ('sent', 'failed', 'skipped')),
    message_id  TEXT,
    error       TEXT,
    PRIMARY KEY (campaign_id, seq)
);

-- Webhooks (seed 002). The secret signs deliveries, so it cannot be hashed:
-- it is stored sealed under the host's data key, never in clear.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    tree_id    TEXT NOT NULL REFERENCES accounts (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX webhooks_by_account ON webhooks (account_id, id);
CREATE INDEX webhooks_by_tree ON webhooks (tree_id, id);

-- The event outbox: written in the transaction of the change it reports,
-- then fanned out into one delivery per subscribed webhook.
CREATE TABLE events (
    id            TEXT PRIMARY KEY,
    tree_id       TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    type          TEXT NOT NULL,
    data          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    dispatched_at BIGINT
);
CREATE INDEX events_undispatched ON events (dispatched_at, id);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id),
    event_id        TEXT NOT NULL REFERENCES events (id),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    last_status     BIGINT,
    last_error      TEXT,
    claimed_until   BIGINT,
    delivered_at    BIGINT,
    created_at      BIGINT NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
