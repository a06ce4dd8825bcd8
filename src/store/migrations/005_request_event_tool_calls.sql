-- What kind of answer a call gave: the finish reason ('stop', 'length', 'tool_calls', 'content_filter'),
-- and, when capture is on, the tool calls themselves (OpenAI shape: id, type, function { name, arguments }).
-- A tool call is the caller's to run: a shadow's tool calls are recorded here for comparison, never executed.
ALTER TABLE request_events ADD COLUMN finish_reason text;
ALTER TABLE request_events ADD COLUMN tool_calls jsonb;
