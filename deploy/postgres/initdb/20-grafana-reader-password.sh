#!/bin/sh
# Sets the password of the grafana_reader role (10-grafana-reader.sql) from GRAFANA_DB_PASSWORD. The postgres
# image runs this once, when it creates the database; psql quotes the value (:'password').
set -eu
psql -v ON_ERROR_STOP=1 -v password="$GRAFANA_DB_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
ALTER ROLE grafana_reader PASSWORD :'password';
SQL
