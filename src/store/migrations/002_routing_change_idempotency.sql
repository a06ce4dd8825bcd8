-- Idempotency key of a routing change (e.g. `<workflow id>:<step>`), so that an activity retried after its
-- change committed but before it saw the reply gets the change it already made back instead of a conflict.
-- See changeRoute() in src/store/routing-state.ts.
ALTER TABLE routing_changes ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX routing_changes_idempotency_idx ON routing_changes (route, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
