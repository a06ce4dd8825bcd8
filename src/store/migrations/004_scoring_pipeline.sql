-- Scoring as a pipeline: an answer the evaluators could not score (judge timeout, eval service down) keeps
-- no quality score and says why, so a failure is counted and reported, never mistaken for evidence, and
-- never picked up again by the next batch. `score_cost_usd` is what judging it cost (judge budget).
ALTER TABLE request_events ADD COLUMN score_error text;
ALTER TABLE request_events ADD COLUMN score_cost_usd double precision;
DROP INDEX IF EXISTS request_events_unscored_idx;
CREATE INDEX request_events_unscored_idx ON request_events (route, tag, id)
  WHERE quality_score IS NULL AND score_error IS NULL AND answer IS NOT NULL;
