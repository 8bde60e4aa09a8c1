#!/usr/bin/env bash
# Runs every test on SQLite and on PostgreSQL, from a fresh machine:
# starts PostgreSQL if it is installed but stopped, drops the databases that
# earlier runs left, builds the binary the process tests start, then runs
# the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL=${CANOPY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export CANOPY_TEST_POSTGRES_URL=$PG_URL

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "test.sh: starting PostgreSQL"
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    else
        echo "test.sh: PostgreSQL is not installed; install it (apt-get install postgresql) or set CANOPY_TEST_POSTGRES_URL" >&2
        exit 1
    fi
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

# Each PostgreSQL test makes its own database; forget those of earlier runs.
if command -v psql >/dev/null; then
    psql "$PG_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'canopy_t_%'" 2>/dev/null |
        while read -r db; do psql "$PG_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done
fi

# tests/tests/e2e/readme_commands.rs runs the documented curl and jq commands.
for tool in curl jq; do
    if ! command -v "$tool" >/dev/null; then
        echo "test.sh: installing $tool"
        { apt-get update -q && apt-get install -y -q "$tool"; } >/dev/null ||
            { echo "test.sh: $tool is missing; install it (apt-get install $tool)" >&2; exit 1; }
    fi
done

# The browser tests (the /docs page and the web console) drive Debian's
# headless Chromium over chromedriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "test.sh: installing chromium and chromium-driver"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } >/dev/null ||
        { echo "test.sh: chromium is missing; install it (apt-get install chromium chromium-driver)" >&2; exit 1; }
fi

# The binary the process tests start, built with the tests in one invocation
# (features unified with their dev-dependencies), so nothing builds twice.
cargo build --locked --bins --tests
# The suite, then one plain line over every test binary (cargo's own last
# line is the doc-tests' and says little).
log=$(mktemp)
status=0
cargo test --locked "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i - 1); if ($(i) ~ /^failed;?$/) f += $(i - 1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
