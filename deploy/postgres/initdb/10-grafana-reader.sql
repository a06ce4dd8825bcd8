-- A read-only role for Grafana's Postgres data source (the dashboard's scoring panels and its decision and
-- routing-change annotations). Grafana runs whatever SQL a dashboard editor writes, so it gets SELECT and
-- nothing else. Idempotent: run it once by hand on a database whose volume predates it
--   psql "$DATABASE_URL" -f 10-grafana-reader.sql
-- as the role that applies model-rollout's migrations (its future tables and partitions are covered too).
-- The password is set by 20-grafana-reader-password.sh (or by hand: ALTER ROLE grafana_reader PASSWORD ...).
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana_reader') THEN
    CREATE ROLE grafana_reader LOGIN;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
