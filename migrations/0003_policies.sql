-- Uploaded policies, their versions and the decision log (MISSION.md
-- "Policies"). The shipped defaults are files, not rows.

-- A named policy of one owner: a parent account's tree, or the platform
-- (owner 'platform'). At most one version is active, in one mode.
CREATE TABLE policies (
    id             TEXT PRIMARY KEY,
    owner          TEXT NOT NULL,
    name           TEXT NOT NULL,
    name_key       TEXT NOT NULL,
    hook           TEXT NOT NULL CHECK (hook IN ('authorize', 'subaccount.validate', 'visibility', 'cascade')),
    active_version BIGINT,
    mode           TEXT CHECK (mode IN ('enforce', 'shadow')),
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    CONSTRAINT active_has_mode CHECK ((active_version IS NULL) = (mode IS NULL)),
    UNIQUE (owner, name_key)
);
CREATE INDEX policies_active ON policies (active_version);

-- Every uploaded version, kept for rollback. `source` is the Rhai text or
-- the component in base64; it is validated before it is stored.
CREATE TABLE policy_versions (
    policy_id  TEXT NOT NULL REFERENCES policies (id),
    version    BIGINT NOT NULL CHECK (version > 0),
    runtime    TEXT NOT NULL CHECK (runtime IN ('rhai', 'wasm')),
    source     TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (policy_id, version)
);

-- Bumped by every change to what is active; every host polls it and
-- reloads its registry when it moves.
CREATE TABLE policy_generation (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO policy_generation (id, generation) VALUES (1, 0);

-- One row per hook evaluation. `policies` is a JSON array of
-- {id, version, mode, outcome, reason, duration_us}. Bounded by age and by
-- count (the host's retention settings).
CREATE TABLE decisions (
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
CREATE INDEX decisions_by_tree ON decisions (tree_id, id);
CREATE INDEX decisions_by_account ON decisions (account_id, id);
