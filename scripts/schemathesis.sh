#!/usr/bin/env bash
# The server conforms to its own OpenAPI document as an outside fuzzer sees
# it. Starts a server with its own SQLite database, makes two parents (each
# with an admin key), validates /openapi.json (openapi-spec-validator) and
# runs schemathesis with every check: once on the account and public routes
# as a parent's admin, once on the operator routes as the operator, with the
# real account ids for `{id}`. Exits non-zero on any failure.
#
# Tools come from PyPI into a venv (made when missing). Settings:
#   SCHEMATHESIS_MAX_EXAMPLES  cases per operation and phase (default 15)
#   SCHEMATHESIS_SEED          for a reproducible run (default 1)
#   CANOPY_BIN                 the server binary (default: cargo build's)
#   CANOPY_SCHEMATHESIS_VENV   where the venv lives
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.9.0
VENV=${CANOPY_SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/canopy/schemathesis-venv}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-15}
SEED=${SCHEMATHESIS_SEED:-1}
started=$(date +%s)

if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION" ||
    ! "$VENV/bin/pip" show openapi-spec-validator 2>/dev/null | grep -q "^Version: $VALIDATOR_VERSION"; then
    echo "schemathesis.sh: installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$VALIDATOR_VERSION"
fi

if [ -z "${CANOPY_BIN:-}" ]; then
    # Built in the one invocation the test suite needs anyway (features
    # unified with the tests' dev-dependencies), so nothing builds twice.
    cargo build --locked --bins --tests
    CANOPY_BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/canopy
fi

work=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
operator_token="cop_schemathesis_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
"$CANOPY_BIN" serve --listen "127.0.0.1:$port" --database-url "sqlite://$work/canopy.db" \
    --operator-token "$operator_token" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    curl -fs "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "$base/readyz" >/dev/null || { cat "$work/server.log"; echo "schemathesis.sh: the server did not start" >&2; exit 1; }

# A postpaid parent with sub-accounts enabled, and its admin's key.
parent() {
    local domain=$1 created id
    created=$(curl -fsS -X POST "$base/v1/operator/accounts" -H "Authorization: Bearer $operator_token" \
        -H 'Content-Type: application/json' -d @- <<EOF
{"name": "Fuzz $domain", "company_name": "Fuzz Ltd", "email": "billing@$domain",
 "billing_type": "postpaid", "currency": "USD", "monthly_credit_limit": "1000.00",
 "prices": {"sms": "0.0075"}, "admin": {"email": "admin@$domain", "name": "Admin"}}
EOF
    )
    id=$(jq -r .account.id <<<"$created")
    curl -fsS -X PATCH "$base/v1/operator/accounts/$id" -H "Authorization: Bearer $operator_token" \
        -H 'Content-Type: application/json' \
        -d '{"subaccounts_enabled": true, "subaccount_module": "enterprise", "monthly_usage_limit_enabled": true}' >/dev/null
    echo "$id $(jq -r .api_key.secret <<<"$created")"
}
read -r admin_account admin_key < <(parent fuzz-admin.example)
read -r operator_account _ < <(parent fuzz-operator.example)

curl -fsS "$base/openapi.json" >"$work/openapi.json"
echo "schemathesis.sh: validating the OpenAPI document"
"$VENV/bin/openapi-spec-validator" "$work/openapi.json"

# One run: $1 names it, $2 is the bearer token, $3 the account for ids, the
# rest are filters.
run() {
    local name=$1 token=$2 account=$3
    shift 3
    cat >"$work/$name.toml" <<EOF
[auth.openapi.bearer]
bearer = "$token"

[parameters]
"path.id" = "$account"
"path.parent_id" = "$account"

# A write whose body matches the schema can still be refused for what no
# schema can say: the tree's state and money (409, 402), a
# \`subaccount.validate\` policy, an e-mail domain, a webhook host that does
# not resolve, ids that are not in this tree (422). Every such refusal must
# still be a documented problem+json (the other checks stay on).
[[operations]]
include-method = ["POST", "PUT", "PATCH"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "402", "403", "404", "409", "410", "422", "429", "5xx"]

# Reports over time: \`to\` before \`from\`, a range over the most periods a
# report holds, a period that has not begun by the server's clock.
[[operations]]
include-path = ["/v1/accounts/{id}/analytics", "/v1/accounts/{id}/billing/summary"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422", "429", "5xx"]
EOF
    echo "schemathesis.sh: $name (account $account)"
    # From the scratch folder: schemathesis keeps its cache where it runs.
    (cd "$work" && "$VENV/bin/st" --config-file "$work/$name.toml" run "$base/openapi.json" \
        --checks all --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 \
        --request-timeout 10 --suppress-health-check all "$@")
}
# One worker: with two, schemathesis's generator threads race inside
# hypothesis and CPython's `ast` (describing a strategy's lambdas: "AST
# constructor recursion depth mismatch", or a FlakyFailure raised from
# `hypothesis/internal/lambda_sources.py`), failing a run with no request
# involved. Should such an error still appear (and no FAILURES section,
# which only the server's answers produce), the run goes once more.
run_once_more_on_generator_error() {
    local log=$work/$1.log code=0
    run "$@" 2>&1 | tee "$log" || code=${PIPESTATUS[0]}
    if [ "$code" -ne 0 ] && ! grep -q '= FAILURES =' "$log" &&
        grep -Eq 'AST constructor recursion depth mismatch|hypothesis/internal/lambda_sources\.py' "$log"; then
        echo "schemathesis.sh: $1 hit an error inside the generator, not a failure of the server; running it once more"
        code=0
        run "$@" || code=$?
    fi
    return "$code"
}
status=0
run_once_more_on_generator_error parent-admin "$admin_key" "$admin_account" --exclude-path-regex '^/v1/operator/' || status=$?
run_once_more_on_generator_error operator "$operator_token" "$operator_account" --include-path-regex '^/v1/operator/' || status=$?
echo "schemathesis.sh: finished in $(($(date +%s) - started)) s"
if [ "$status" -ne 0 ]; then
    echo "schemathesis.sh: failures above; server log:" >&2
    tail -n 50 "$work/server.log" >&2
fi
exit "$status"
