-- Webhooks (API.md, "Traffic"): what a webhook's payloads leave out, and
-- which host holds a delivery attempt.

-- The `visibility` groups hidden from the webhook's creator when it was
-- made, comma-separated (e.g. 'balance,plan,pricing,usage'); payloads
-- leave out their fields.
ALTER TABLE webhooks ADD COLUMN hidden TEXT NOT NULL DEFAULT '';

-- The host attempting a delivery, until `claimed_until` (wall clock); the
-- outcome is recorded only by that host.
ALTER TABLE webhook_deliveries ADD COLUMN claimed_by TEXT;
