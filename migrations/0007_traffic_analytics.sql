-- Analytics kept on write (docs/TRAFFIC.md, "Analytics").
--
-- An inbound message marks as responded the day and month of its
-- conversation's latest outbound message: the conversation remembers which
-- periods those were, so the write needs no date arithmetic in SQL.
ALTER TABLE conversations ADD COLUMN last_outbound_day TEXT;
ALTER TABLE conversations ADD COLUMN last_outbound_month TEXT;
-- The user a conversation's period counts for in the per-user counters: the
-- first user who wrote in the conversation in that period ('' for none).
ALTER TABLE conversation_periods ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
-- Conversation lists filtered by state walk an index.
CREATE INDEX conversations_by_state ON conversations (account_id, state, id);
CREATE INDEX conversations_by_user ON conversations (account_id, user_id, id);
-- Messages of one user (basic users see only theirs) by direction.
CREATE INDEX messages_by_user ON messages (account_id, user_id, id);
-- Merged sub-accounts roll into their target in analytics.
CREATE INDEX accounts_by_merge_target ON accounts (merged_into);
