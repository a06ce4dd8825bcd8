-- Evidence at scale (issue 15): request events and shadow comparisons partitioned by day, so retention drops
-- whole partitions instead of deleting rows; per-minute rollups that the decision and trigger queries read
-- instead of scanning raw events; a sample weight per event for a sampled stable arm.
--
-- Partitions are named <table>_pYYYYMMDD and hold one UTC day [00:00, 24:00). There is deliberately NO
-- default partition: DETACH PARTITION ... CONCURRENTLY (how retention drops a day without blocking writers
-- or readers) refuses a table that has one, and attaching a day would have to scan it. The safety net is
-- instead in the writer: a batch refused because its day has no partition creates that day and retries
-- (event-writer.ts), and the worker's retention schedule creates days ahead.

-- Creates the missing daily partitions of `parent` for the UTC days [from_day, to_day]. A new day is made as
-- a plain table and then attached: ATTACH takes only a SHARE UPDATE EXCLUSIVE lock on the parent, which
-- writers and readers do not conflict with (CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE).
CREATE FUNCTION event_partitions_ensure(parent regclass, from_day date, to_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  d date;
  part text;
  made integer := 0;
BEGIN
  -- Two processes making the same day at once would collide on the table name.
  PERFORM pg_advisory_xact_lock(727275);
  d := from_day;
  WHILE d <= to_day LOOP
    part := parent::text || '_p' || to_char(d, 'YYYYMMDD');
    IF to_regclass(part) IS NULL THEN
      EXECUTE format('CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
      EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, part,
                     d::text || ' 00:00:00+00', (d + 1)::text || ' 00:00:00+00');
      made := made + 1;
    END IF;
    d := d + 1;
  END LOOP;
  RETURN made;
END $$;

-- ---------------------------------------------------------------------------------------------------------
-- request_events: the existing table is renamed, a partitioned one takes its name, the rows are copied into
-- their days (ids kept: the id sequence moves over), and the old table is dropped. One transaction: a writer
-- waits for the rename's lock and then inserts into the new table.
-- sample_weight: how many requests an event stands for (1, or 1/rate for a sampled stable event).
ALTER TABLE request_events ADD COLUMN sample_weight real NOT NULL DEFAULT 1;
ALTER TABLE request_events RENAME TO request_events_unpartitioned;
ALTER TABLE request_events_unpartitioned DROP CONSTRAINT request_events_pkey;
DROP INDEX request_events_window_idx, request_events_tag_window_idx, request_events_request_id_idx,
  request_events_unscored_idx;

CREATE TABLE request_events (LIKE request_events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
  PARTITION BY RANGE (created_at);
ALTER TABLE request_events ADD PRIMARY KEY (id, created_at);
ALTER SEQUENCE request_events_id_seq OWNED BY request_events.id;
CREATE INDEX request_events_window_idx ON request_events (route, created_at);
CREATE INDEX request_events_tag_window_idx ON request_events (route, tag, created_at);
CREATE INDEX request_events_request_id_idx ON request_events (request_id);
CREATE INDEX request_events_unscored_idx ON request_events (route, tag, id)
  WHERE quality_score IS NULL AND score_error IS NULL AND answer IS NOT NULL;

SELECT event_partitions_ensure('request_events',
  least((now() AT TIME ZONE 'UTC')::date - 1, (SELECT min(created_at AT TIME ZONE 'UTC')::date FROM request_events_unpartitioned)),
  greatest((now() AT TIME ZONE 'UTC')::date + 7, (SELECT max(created_at AT TIME ZONE 'UTC')::date FROM request_events_unpartitioned)));
INSERT INTO request_events SELECT * FROM request_events_unpartitioned;
DROP TABLE request_events_unpartitioned;

-- ---------------------------------------------------------------------------------------------------------
-- shadow_comparisons: the same conversion.
ALTER TABLE shadow_comparisons RENAME TO shadow_comparisons_unpartitioned;
ALTER TABLE shadow_comparisons_unpartitioned DROP CONSTRAINT shadow_comparisons_pkey;
DROP INDEX shadow_comparisons_route_idx, shadow_comparisons_pending_idx;

CREATE TABLE shadow_comparisons (LIKE shadow_comparisons_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
  PARTITION BY RANGE (created_at);
ALTER TABLE shadow_comparisons ADD PRIMARY KEY (id, created_at);
ALTER SEQUENCE shadow_comparisons_id_seq OWNED BY shadow_comparisons.id;
CREATE INDEX shadow_comparisons_route_idx ON shadow_comparisons (route, created_at);
CREATE INDEX shadow_comparisons_pending_idx ON shadow_comparisons (route, id) WHERE verdict IS NULL;

SELECT event_partitions_ensure('shadow_comparisons',
  least((now() AT TIME ZONE 'UTC')::date - 1, (SELECT min(created_at AT TIME ZONE 'UTC')::date FROM shadow_comparisons_unpartitioned)),
  greatest((now() AT TIME ZONE 'UTC')::date + 7, (SELECT max(created_at AT TIME ZONE 'UTC')::date FROM shadow_comparisons_unpartitioned)));
INSERT INTO shadow_comparisons SELECT * FROM shadow_comparisons_unpartitioned;
DROP TABLE shadow_comparisons_unpartitioned;

-- ---------------------------------------------------------------------------------------------------------
-- Rollups: one row per route, tag, minute, target, routing version, error class ('' = success) and whether a
-- fallback answered, with sums the policy and triggers need. Every event counts here, sampled out of the raw
-- table or not, so the rollups are exact. Latency is a histogram (see rollup_bucket) so that the p95 and the
-- slow count (above a threshold known only at decision time) can be computed for any set of minutes.
CREATE TABLE request_rollups (
  route           text NOT NULL,
  tag             text NOT NULL,
  minute          timestamptz NOT NULL,
  target          text NOT NULL,
  routing_version bigint NOT NULL,           -- 0 when the event had none
  error_class     text NOT NULL,             -- '' when the call succeeded
  fallback        boolean NOT NULL,          -- a fallback answered (fallback_depth > 0)
  requests        bigint NOT NULL,
  latency_sum_ms  double precision NOT NULL,
  cost_usd        double precision NOT NULL,
  -- Counts per latency bucket, stored sparse: the array's subscripts are the bucket numbers it covers.
  latency_hist    integer[] NOT NULL,
  scored          bigint NOT NULL DEFAULT 0,
  score_sum       double precision NOT NULL DEFAULT 0,
  score_sq_sum    double precision NOT NULL DEFAULT 0,
  PRIMARY KEY (route, tag, minute, target, routing_version, error_class, fallback)
);

-- The latency bucket of a call: 0 below 1 ms, i for [2^((i-1)/10), 2^(i/10)) ms, 201 from 2^20 ms (17.5 min)
-- up. Each bucket is 7.2% wide: a p95 read from the histogram is the upper edge of its bucket, at most 7.2%
-- above the exact value. The bounds are the same numbers as LATENCY_BOUNDS in src/store/latency-histogram.ts.
CREATE FUNCTION rollup_bucket(latency_ms double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT width_bucket(latency_ms, '{1,1.0717734625362931,1.148698354997035,1.2311444133449163,1.3195079107728942,1.4142135623730951,1.515716566510398,1.624504792712471,1.7411011265922482,1.8660659830736148,2,2.1435469250725863,2.2973967099940698,2.4622888266898326,2.6390158215457884,2.82842712474619,3.0314331330207964,3.249009585424942,3.4822022531844965,3.7321319661472296,4,4.2870938501451725,4.59479341998814,4.924577653379664,5.278031643091577,5.65685424949238,6.062866266041593,6.498019170849885,6.964404506368992,7.464263932294459,8,8.574187700290345,9.18958683997628,9.849155306759329,10.556063286183154,11.31370849898476,12.125732532083186,12.99603834169977,13.928809012737984,14.928527864588919,16,17.148375400580687,18.37917367995256,19.698310613518657,21.112126572366314,22.62741699796952,24.251465064166364,25.99207668339954,27.85761802547597,29.857055729177844,32,34.29675080116137,36.75834735990512,39.396621227037315,42.22425314473263,45.25483399593904,48.50293012833273,51.98415336679908,55.71523605095194,59.71411145835569,64,68.59350160232275,73.51669471981025,78.79324245407463,84.44850628946526,90.50966799187808,97.00586025666546,103.96830673359815,111.43047210190387,119.42822291671138,128,137.1870032046455,147.0333894396205,157.58648490814926,168.89701257893051,181.01933598375615,194.0117205133309,207.9366134671963,222.86094420380775,238.85644583342275,256,274.374006409291,294.0667788792408,315.17296981629875,337.79402515786103,362.0386719675123,388.0234410266618,415.8732269343924,445.7218884076158,477.7128916668455,512,548.748012818582,588.1335577584816,630.3459396325975,675.5880503157221,724.0773439350246,776.0468820533237,831.7464538687848,891.4437768152316,955.425783333691,1024,1097.496025637164,1176.2671155169633,1260.691879265195,1351.1761006314441,1448.1546878700492,1552.0937641066473,1663.4929077375696,1782.8875536304631,1910.851566667382,2048,2194.992051274328,2352.5342310339265,2521.38375853039,2702.3522012628882,2896.3093757400984,3104.1875282132946,3326.985815475139,3565.7751072609262,3821.703133334764,4096,4389.984102548656,4705.068462067853,5042.76751706078,5404.7044025257765,5792.618751480197,6208.375056426589,6653.971630950278,7131.5502145218525,7643.406266669528,8192,8779.968205097312,9410.136924135706,10085.53503412156,10809.408805051553,11585.237502960394,12416.750112853179,13307.943261900557,14263.100429043705,15286.812533339056,16384,17559.936410194623,18820.273848271412,20171.07006824312,21618.817610103106,23170.475005920787,24833.500225706357,26615.886523801113,28526.20085808741,30573.625066678112,32768,35119.872820389246,37640.547696542824,40342.14013648624,43237.63522020621,46340.950011841574,49667.000451412714,53231.773047602226,57052.40171617482,61147.250133356225,65536,70239.74564077858,75281.09539308565,80684.28027297248,86475.2704404123,92681.90002368315,99334.00090282554,106463.54609520445,114104.80343234964,122294.5002667123,131072,140479.49128155716,150562.1907861713,161368.56054594496,172950.5408808246,185363.8000473663,198668.0018056511,212927.0921904089,228209.60686469928,244589.0005334246,262144,280958.9825631143,301124.3815723426,322737.1210918899,345901.0817616492,370727.6000947326,397336.0036113022,425854.1843808178,456419.21372939856,489178.0010668492,524288,561917.9651262286,602248.7631446852,645474.2421837798,691802.1635232985,741455.2001894652,794672.0072226044,851708.3687616356,912838.4274587971,978356.0021336984,1048576}'::float8[])
$$;

-- A sparse histogram from a list of bucket numbers: subscripts min..max, counts (zeros inside the range).
CREATE FUNCTION rollup_hist(buckets integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ('[' || min(g) || ':' || max(g) || ']=' || array_agg(coalesce(c.n, 0) ORDER BY g)::text)::integer[]
    FROM generate_series((SELECT min(x) FROM unnest(buckets) x), (SELECT max(x) FROM unnest(buckets) x)) g
    LEFT JOIN (SELECT x, count(*)::integer AS n FROM unnest(buckets) x GROUP BY x) c ON c.x = g
$$;

-- The sum of two sparse histograms (the upsert of a rollup row).
CREATE FUNCTION rollup_hist_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ('[' || min(g) || ':' || max(g) || ']=' || array_agg(coalesce(a[g], 0) + coalesce(b[g], 0) ORDER BY g)::text)::integer[]
    FROM generate_series(least(array_lower(a, 1), array_lower(b, 1)), greatest(array_upper(a, 1), array_upper(b, 1))) g
$$;

INSERT INTO request_rollups (route, tag, minute, target, routing_version, error_class, fallback, requests,
  latency_sum_ms, cost_usd, latency_hist, scored, score_sum, score_sq_sum)
SELECT route, tag, date_bin('1 minute', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), target,
       coalesce(routing_version, 0), coalesce(error_class, ''), fallback_depth > 0, count(*), sum(latency_ms),
       sum(cost_usd), rollup_hist(array_agg(rollup_bucket(latency_ms))), count(quality_score),
       coalesce(sum(quality_score), 0), coalesce(sum(quality_score * quality_score), 0)
  FROM request_events
 GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- Captured text is nulled by the capture retention (the event stays); this index keeps that pass to the rows
-- that still hold text, however many old partitions there are (captures exist only for some routes).
CREATE INDEX request_events_captured_idx ON request_events (created_at)
  WHERE prompt IS NOT NULL OR answer IS NOT NULL OR tool_calls IS NOT NULL;

-- The same sums per hour: a window of days reads its whole hours here and only its ends per minute, so a
-- decision reads a few hundred rollup rows at most, whatever the window's length.
CREATE TABLE request_rollups_hourly (LIKE request_rollups INCLUDING DEFAULTS);
ALTER TABLE request_rollups_hourly RENAME COLUMN minute TO hour;
ALTER TABLE request_rollups_hourly
  ADD PRIMARY KEY (route, tag, hour, target, routing_version, error_class, fallback);

INSERT INTO request_rollups_hourly (route, tag, hour, target, routing_version, error_class, fallback, requests,
  latency_sum_ms, cost_usd, latency_hist, scored, score_sum, score_sq_sum)
SELECT route, tag, date_bin('1 hour', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), target,
       coalesce(routing_version, 0), coalesce(error_class, ''), fallback_depth > 0, count(*), sum(latency_ms),
       sum(cost_usd), rollup_hist(array_agg(rollup_bucket(latency_ms))), count(quality_score),
       coalesce(sum(quality_score), 0), coalesce(sum(quality_score * quality_score), 0)
  FROM request_events
 GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- The rollup retention deletes by time. BRIN: rows arrive in time order, the index is a few pages, and the
-- planner never prefers it to the primary key for a decision's (route, tag, time range).
CREATE INDEX request_rollups_minute_idx ON request_rollups USING brin (minute);
CREATE INDEX request_rollups_hourly_hour_idx ON request_rollups_hourly USING brin (hour);
