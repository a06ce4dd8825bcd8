-- Routing state: one row per route, shared by every router replica. `version` only grows; every change
-- is a compare-and-set on it, so a late retry can never overwrite a newer change (see routing-state.ts).
CREATE TABLE routes (
  name         text PRIMARY KEY,
  blue         jsonb NOT NULL,               -- { target, fallbacks[] }
  green        jsonb,                        -- null until a candidate is assigned
  stable_slot  text NOT NULL DEFAULT 'blue' CHECK (stable_slot IN ('blue', 'green')),
  canary_bps   integer NOT NULL DEFAULT 0 CHECK (canary_bps BETWEEN 0 AND 10000),
  shadow_rate  double precision NOT NULL DEFAULT 0 CHECK (shadow_rate >= 0 AND shadow_rate <= 1),
  salt         text NOT NULL DEFAULT '',
  version      bigint NOT NULL DEFAULT 1,
  owner        text,                         -- the rollout (workflow id) allowed to change it, if any
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Audit trail of every routing change: who, why, from, to, when.
CREATE TABLE routing_changes (
  id           bigserial PRIMARY KEY,
  route        text NOT NULL REFERENCES routes (name) ON DELETE CASCADE,
  version      bigint NOT NULL,              -- the version the change produced
  actor        text NOT NULL,
  reason       text NOT NULL,
  before       jsonb,
  after        jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX routing_changes_route_idx ON routing_changes (route, id);

-- One row per model call the router made (served or shadow).
CREATE TABLE request_events (
  id              bigserial PRIMARY KEY,
  request_id      text NOT NULL,
  route           text NOT NULL,
  tag             text NOT NULL CHECK (tag IN ('stable', 'canary', 'shadow')),
  slot            text,
  target          text NOT NULL,             -- provider:model that actually answered (or last tried)
  fallback_depth  integer NOT NULL DEFAULT 0,
  latency_ms      double precision NOT NULL,
  error_class     text,                      -- null when the call succeeded
  input_tokens    integer NOT NULL DEFAULT 0,
  output_tokens   integer NOT NULL DEFAULT 0,
  cost_usd        double precision NOT NULL DEFAULT 0,
  routing_version bigint,
  reference_id    text,                      -- question id when a reference answer exists
  prompt          jsonb,                     -- only when capture is enabled
  answer          text,                      -- only when capture is enabled
  quality_score   double precision,          -- 1-5, filled by the scorer
  quality_source  text,                      -- reference | judge | feedback | heuristic
  scored_at       timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX request_events_window_idx ON request_events (route, created_at);
CREATE INDEX request_events_tag_window_idx ON request_events (route, tag, created_at);
CREATE INDEX request_events_request_id_idx ON request_events (request_id);
CREATE INDEX request_events_unscored_idx ON request_events (route, created_at)
  WHERE quality_score IS NULL AND answer IS NOT NULL;

-- Stable vs shadow answers to the same request, compared by the control plane.
CREATE TABLE shadow_comparisons (
  id              bigserial PRIMARY KEY,
  route           text NOT NULL,
  request_id      text NOT NULL,
  stable_target   text NOT NULL,
  shadow_target   text NOT NULL,
  stable_event_id bigint,
  shadow_event_id bigint,
  verdict         text CHECK (verdict IN ('shadow_better', 'stable_better', 'tie')),
  stable_score    double precision,
  shadow_score    double precision,
  judge           text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  compared_at     timestamptz
);
CREATE INDEX shadow_comparisons_route_idx ON shadow_comparisons (route, created_at);
CREATE INDEX shadow_comparisons_pending_idx ON shadow_comparisons (route, id) WHERE verdict IS NULL;

-- User feedback posted back by request id.
CREATE TABLE feedback (
  id          bigserial PRIMARY KEY,
  request_id  text NOT NULL,
  score       double precision,              -- 1-5
  thumbs      text CHECK (thumbs IN ('up', 'down')),
  comment     text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_request_id_idx ON feedback (request_id);
