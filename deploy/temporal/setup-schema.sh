#!/bin/sh
# Creates or upgrades the Temporal schemas in PostgreSQL (the `temporal-schema` service of
# docker-compose.yml). Idempotent: on an existing database it only applies newer schema versions,
# so it also upgrades the schema when the Temporal image tag is raised.
set -eu

: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
port="${DB_PORT:-5432}"
schemas=/etc/temporal/schema/postgresql/v12

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" "$@"
}

ensure() {
  db="$1"
  dir="$schemas/$2/versioned"
  if sql --db "$db" update-schema -d "$dir" >/dev/null 2>&1; then
    echo "schema of '$db' is up to date"
    return
  fi
  echo "creating database '$db'"
  sql --db "$db" create
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$dir"
  echo "schema of '$db' created"
}

ensure temporal temporal
ensure temporal_visibility visibility
