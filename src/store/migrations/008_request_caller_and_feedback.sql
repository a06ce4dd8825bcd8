-- Who asked, and under which id: `caller` is the name of the gateway API key that made the request (null
-- for in-process callers and a gateway without keys); `client_request_id` the x-request-id the client sent,
-- kept for correlation only. `request_id` is always the gateway's own (a client cannot choose it, so it
-- cannot collide with another request's feedback or shadow pair).
ALTER TABLE request_events ADD COLUMN caller text;
ALTER TABLE request_events ADD COLUMN client_request_id text;

-- Feedback belongs to the key whose request it rates, once per request (changed only by an explicit
-- update). Earlier duplicates keep their newest row, which is the one scoring already read.
ALTER TABLE feedback ADD COLUMN caller text;
ALTER TABLE feedback ADD COLUMN updated_at timestamptz;
DELETE FROM feedback f USING feedback g WHERE f.request_id = g.request_id AND f.id < g.id;
DROP INDEX IF EXISTS feedback_request_id_idx;
CREATE UNIQUE INDEX feedback_request_id_key ON feedback (request_id);
