-- Every policy decision and trigger check of a rollout, with the numbers behind it: the audit of why a
-- rollout moved (or did not), next to routing_changes (which records what moved).
CREATE TABLE rollout_decisions (
  id           bigserial PRIMARY KEY,
  route        text NOT NULL,
  workflow_id  text NOT NULL,
  run_id       text NOT NULL,
  phase        text NOT NULL,
  share_bps    integer NOT NULL,
  action       text NOT NULL,              -- promote-step | hold | rollback | trigger-fired | ...
  policy       text,
  reasons      jsonb NOT NULL,
  stats        jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rollout_decisions_route_idx ON rollout_decisions (route, id);
CREATE INDEX rollout_decisions_run_idx ON rollout_decisions (workflow_id, run_id, id);
