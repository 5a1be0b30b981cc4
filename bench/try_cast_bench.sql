--
-- try_cast_bench.sql: cost of medallion.try_cast on valid input, compared
-- with the plain cast it replaces.
--
-- Run with:  psql -X -d <db> -f bench/try_cast_bench.sql
--
-- 1M valid strings per type, single process (no parallelism, no JIT).  Each
-- query runs once to warm up, then 5 times; the best time is kept.  The
-- target is a ratio try_cast / cast <= 1.2 for the fast-path types.  The last
-- rows show, for information, the generic path (inet: input function in a
-- subtransaction) and invalid input, which a plain cast cannot survive.
--
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS medallion;
SET max_parallel_workers_per_gather = 0;
SET jit = off;
SET timezone = 'UTC';
SET datestyle = 'ISO, MDY';

-- an unlogged table (not a temporary one: 1M rows do not fit temp_buffers
-- and re-reading them would blur the comparison)
DROP TABLE IF EXISTS try_cast_bench;
CREATE UNLOGGED TABLE try_cast_bench AS
SELECT (g::bigint * 7919 % 2000000 - 1000000)::text AS i,
       ((g::bigint * 7919 % 2000000) / 100.0 - 10000)::text AS n,
       (timestamptz '2020-01-01' + g * interval '37 seconds')::text AS t,
       '10.' || g % 256 || '.' || g / 256 % 256 || '.1' AS a,
       'x' || g AS bad
FROM generate_series(1, 1000000) AS g;
VACUUM ANALYZE try_cast_bench;

SELECT i, n, t, a FROM try_cast_bench LIMIT 3;

-- best of "runs" executions of q, in milliseconds
CREATE FUNCTION pg_temp.bench_ms(q text, runs int DEFAULT 5) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
	t0		timestamptz;
	best	float8 := 'Infinity';
BEGIN
	EXECUTE q;
	FOR r IN 1..runs LOOP
		t0 := clock_timestamp();
		EXECUTE q;
		best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1000);
	END LOOP;
	RETURN best;
END
$$;

-- one timed run of each, for a look with \timing
\timing on
SELECT sum(medallion.try_cast(i, NULL::int)) FROM try_cast_bench;
SELECT sum(i::int) FROM try_cast_bench;
SELECT sum(medallion.try_cast(n, NULL::numeric)) FROM try_cast_bench;
SELECT sum(n::numeric) FROM try_cast_bench;
SELECT max(medallion.try_cast(t, NULL::timestamptz)) FROM try_cast_bench;
SELECT max(t::timestamptz) FROM try_cast_bench;
\timing off

SELECT what, round(try_cast_ms::numeric, 1) AS try_cast_ms,
       round(cast_ms::numeric, 1) AS cast_ms,
       round((try_cast_ms / cast_ms)::numeric, 2) AS ratio
FROM (VALUES
  ('integer',
   pg_temp.bench_ms('SELECT sum(medallion.try_cast(i, NULL::int)) FROM try_cast_bench'),
   pg_temp.bench_ms('SELECT sum(i::int) FROM try_cast_bench')),
  ('numeric',
   pg_temp.bench_ms('SELECT sum(medallion.try_cast(n, NULL::numeric)) FROM try_cast_bench'),
   pg_temp.bench_ms('SELECT sum(n::numeric) FROM try_cast_bench')),
  ('timestamptz',
   pg_temp.bench_ms('SELECT max(medallion.try_cast(t, NULL::timestamptz)) FROM try_cast_bench'),
   pg_temp.bench_ms('SELECT max(t::timestamptz) FROM try_cast_bench')),
  ('inet (generic path, information)',
   pg_temp.bench_ms('SELECT count(medallion.try_cast(a, NULL::inet)) FROM try_cast_bench', 1),
   pg_temp.bench_ms('SELECT count(a::inet) FROM try_cast_bench', 1)),
  ('integer, all invalid (vs valid cast, information)',
   pg_temp.bench_ms('SELECT count(medallion.try_cast(bad, NULL::int)) FROM try_cast_bench'),
   pg_temp.bench_ms('SELECT sum(i::int) FROM try_cast_bench'))
) AS b(what, try_cast_ms, cast_ms);

DROP TABLE try_cast_bench;
