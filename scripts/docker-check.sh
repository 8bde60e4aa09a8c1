#!/usr/bin/env bash
# Checks the Dockerfile and docker-compose.yml: builds the image where a
# Docker daemon runs (`--build`, slow: a release build), validates the
# compose file with `docker compose config` where the plugin exists, and
# otherwise checks the compose file's shape with Python. Not part of
# .ci/run: building needs the network (crates, base images).
set -euo pipefail
cd "$(dirname "$0")/.."
export CANOPY_OPERATOR_TOKEN=cop_check_only CANOPY_DATA_KEY=$(printf '0%.0s' {1..64}) POSTGRES_PASSWORD=check

if docker compose version >/dev/null 2>&1; then
  docker compose -f docker-compose.yml config --quiet
  echo "docker-compose.yml: valid (docker compose config)"
else
  python3 - <<'PY'
import yaml
doc = yaml.safe_load(open("docker-compose.yml"))
services = doc["services"]
assert {"postgres", "canopy-a", "canopy-b"} <= set(services), services.keys()
ports = set()
for name in ("canopy-a", "canopy-b"):
    s = services[name]
    assert s["build"] == ".", name
    assert s["depends_on"]["postgres"]["condition"] == "service_healthy", name
    env = s["environment"]
    for key in ("CANOPY_DATABASE_URL", "CANOPY_OPERATOR_TOKEN", "CANOPY_DATA_KEY", "CANOPY_LISTEN"):
        assert key in env, (name, key)
    assert env["CANOPY_DATABASE_URL"].startswith("postgres://"), name
    ports.update(s["ports"])
assert len(ports) == 2, ports
assert "healthcheck" in services["postgres"]
print("docker-compose.yml: valid shape (no `docker compose` here)")
PY
fi

# The Dockerfile: two stages, the runtime one Debian-based and not root.
grep -q '^FROM rust:.* AS build' Dockerfile
grep -q '^FROM debian:' Dockerfile
grep -q '^USER canopy' Dockerfile
echo "Dockerfile: multi-stage, Debian runtime, non-root user"

if [[ "${1:-}" == "--build" ]]; then
  if docker info >/dev/null 2>&1; then
    docker build -t canopy:check .
    docker run --rm canopy:check --version
  else
    echo "no Docker daemon here: image not built" >&2
    exit 1
  fi
fi
