-- Account chores (issue 11, items 7 and 8).

-- Self top-up by a parent's admin: off until the operator enables it for
-- that parent (Canopy takes no payment).
ALTER TABLE accounts ADD COLUMN self_topups_enabled BIGINT NOT NULL DEFAULT 0 CHECK (self_topups_enabled IN (0, 1));

-- Newest-first lists walk these instead of sorting.
CREATE INDEX transfers_by_subject_created ON transfers (subject_id, created_at, id);
CREATE INDEX messages_by_account_created ON messages (account_id, created_at, id);
CREATE INDEX accounts_by_parent_created ON accounts (parent_id, created_at, id);

-- API keys may expire; `last_used_at` is kept to the minute (one write per
-- key and minute at most, never one per request).
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;

-- A user's sessions, listed newest first.
CREATE INDEX sessions_by_user ON sessions (user_id, created_at, id);
