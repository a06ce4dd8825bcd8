-- Retried failures are evidence (issue 19, finding 11): a request whose provider failed twice before the
-- third attempt answered looks like a success to the user, but the candidate made them wait and cost more.
-- Each event records how many provider calls it made (`attempts`: retries and fallbacks, not targets an
-- open breaker skipped) and how many of those failed for the model's reasons (`attempt_errors`: not
-- refusals or hang-ups); the rollups sum both, so the policy compares the arms' attempt-error rates.
-- Events from before carry one attempt and no failed one (what the decision saw of them then).
ALTER TABLE request_events
  ADD COLUMN attempts integer NOT NULL DEFAULT 1,
  ADD COLUMN attempt_errors integer NOT NULL DEFAULT 0;

ALTER TABLE request_rollups
  ADD COLUMN attempts bigint NOT NULL DEFAULT 0,
  ADD COLUMN attempt_errors bigint NOT NULL DEFAULT 0;
UPDATE request_rollups SET attempts = requests WHERE requests > 0;

ALTER TABLE request_rollups_hourly
  ADD COLUMN attempts bigint NOT NULL DEFAULT 0,
  ADD COLUMN attempt_errors bigint NOT NULL DEFAULT 0;
UPDATE request_rollups_hourly SET attempts = requests WHERE requests > 0;
