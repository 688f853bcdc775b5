#!/bin/sh
# Makes the namespace amiflow runs in (the plain temporalio/server image creates none) and
# registers amiflow's search attributes in it (the `temporal-setup` service of docker-compose.yml).
# AMIFLOW_SEARCH_ATTRIBUTES lists them as Name=Type,Name=Type (workflows/contracts.ts,
# SEARCH_ATTRIBUTE_TYPES; test/compose checks the two agree). Idempotent.
set -eu

address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_NAMESPACE_RETENTION:-168h}"
: "${AMIFLOW_SEARCH_ATTRIBUTES:?set AMIFLOW_SEARCH_ATTRIBUTES to Name=Type,...}"

# Runs "$@" until it succeeds, every 2 s, at most 60 times.
retry() {
  n=0
  until "$@"; do
    n=$((n + 1))
    if [ "$n" -ge 60 ]; then
      echo "gave up after 60 tries: $*" >&2
      return 1
    fi
    sleep 2
  done
}

echo "waiting for the Temporal server at $address"
retry temporal operator cluster health --address "$address" >/dev/null

if temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1; then
  echo "namespace '$namespace' exists"
else
  temporal operator namespace create --address "$address" --namespace "$namespace" --retention "$retention"
  echo "namespace '$namespace' created (retention $retention)"
fi

for pair in $(echo "$AMIFLOW_SEARCH_ATTRIBUTES" | tr ',' ' '); do
  name="${pair%%=*}"
  type="${pair#*=}"
  # A new namespace takes a few seconds to reach every server role: retry until the list answers.
  existing="$(retry temporal operator search-attribute list --address "$address" --namespace "$namespace")"
  if printf '%s\n' "$existing" | grep -qw -- "$name"; then
    echo "search attribute $name exists"
    continue
  fi
  retry temporal operator search-attribute create --address "$address" --namespace "$namespace" \
    --name "$name" --type "$type"
  echo "search attribute $name ($type) registered"
done
