-- Canary versions (issue 11): one version of a policy enforced and another
-- evaluated in shadow beside it. `active_version`/`mode` keep their meaning
-- (the enforced version, or the only version when it runs in shadow alone);
-- `shadow_version` is a second version shadowing the enforced one.
ALTER TABLE policies ADD COLUMN shadow_version BIGINT
    CONSTRAINT shadow_beside_enforced
    CHECK (shadow_version IS NULL OR (mode = 'enforce' AND shadow_version <> active_version));
