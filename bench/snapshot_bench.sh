#!/bin/bash
# AUTO CDC FROM SNAPSHOT benchmark: a 1M-row table refilled between
# updates, each new snapshot with 1% of the rows changed, 0.5% new and 0.5%
# gone.  medallion (create_auto_cdc_from_snapshot_flow, SCD type 1 and type
# 2, the source read whole at each update) against the hand-written diff in
# the same run: a FULL JOIN ... IS DISTINCT FROM into a temporary table,
# then DELETE / UPDATE / INSERT (SCD1) or close + insert (SCD2).  Target:
# medallion's time <= the hand-written time (ratio <= 1.0).  After every
# round the targets are compared with the hand-written ones: they must be
# equal (SCD2: versions by round number).  The hand-written SQL is timed at
# the session's work_mem (ratio) and, on targets of its own, at work_mem =
# maintenance_work_mem too, the setting medallion gives its diff, on
# targets of its own (ratio_mem; those run third in a round, on tables less
# likely to be cached, so read ratio first).
#
# medallion's time is the flow's own duration (its flow_progress event,
# measured in the server); the hand-written time is measured in the server
# around one function call.  Both leave out commit.  Rounds alternate which
# side goes first; the medians over the rounds are printed.
#
# Each round starts from a checkpoint taken after the refill, so that
# whichever side runs first does not pay for writing out the refill's
# dirty pages; with an even number of rounds each side goes first equally
# often.
#
# Usage: bench/snapshot_bench.sh [rows] [rounds]   (default 1000000, 6)
# Connects with the usual libpq variables; needs a server with medallion
# installed (bench/run.sh starts one).  Creates and drops database
# snapshot_bench.
set -euo pipefail

ROWS=${1:-1000000}
ROUNDS=${2:-6}
DB=snapshot_bench
PSQL=(psql -X -q -v ON_ERROR_STOP=1)

"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"

"${PSQL[@]}" -d $DB <<SQL
CREATE EXTENSION medallion;
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.18);

-- the current snapshot, refilled into src before each update
CREATE TABLE cur (id bigint PRIMARY KEY, qty int, price numeric, status text,
				  note text);
INSERT INTO cur
SELECT i, (i * 7) % 100, round((i % 1000) / 10.0, 2),
	   (ARRAY['new', 'open', 'closed'])[1 + i % 3],
	   CASE WHEN i % 10 = 0 THEN NULL ELSE 'note ' || (i % 977) END
  FROM generate_series(1, $ROWS) i;
CREATE TABLE src (id bigint, qty int, price numeric, status text, note text);
INSERT INTO src SELECT * FROM cur;

SELECT medallion.create_pipeline('bench');
SELECT medallion.create_auto_cdc_from_snapshot_flow('bench', 'm_scd1', 'src',
	keys => ARRAY['id']);
SELECT medallion.create_auto_cdc_from_snapshot_flow('bench', 'm_scd2', 'src',
	keys => ARRAY['id'], stored_as_scd_type => 2);

-- hand-written targets, loaded with the first snapshot like medallion's
CREATE TABLE h_scd1 (LIKE src, PRIMARY KEY (id));
CREATE TABLE h_scd2 (LIKE src, __start_at int NOT NULL, __end_at int,
					 PRIMARY KEY (id, __start_at)) WITH (fillfactor = 90);
INSERT INTO h_scd1 SELECT * FROM src;
INSERT INTO h_scd2 SELECT *, 0, NULL FROM src;
CREATE TABLE w_scd1 (LIKE h_scd1 INCLUDING ALL);
CREATE TABLE w_scd2 (LIKE h_scd2 INCLUDING ALL) WITH (fillfactor = 90);
INSERT INTO w_scd1 SELECT * FROM h_scd1;
INSERT INTO w_scd2 SELECT * FROM h_scd2;
SELECT count(*) FROM medallion.run_pipeline('bench');
VACUUM ANALYZE;

CREATE TABLE timings (round int, method text, ms float8);

-- The hand-written SCD1 apply of the snapshot in src, into h_scd1 at the
-- session's work_mem, or into w_scd1 at work_mem = maintenance_work_mem
-- (what medallion gives its diff).
CREATE FUNCTION hand_scd1(r int, big_mem boolean) RETURNS void
LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
		t text := CASE WHEN big_mem THEN 'w_scd1' ELSE 'h_scd1' END;
BEGIN
	IF big_mem THEN
		PERFORM set_config('work_mem', current_setting('maintenance_work_mem'), true);
	END IF;
	EXECUTE format(\$q\$
	CREATE TEMP TABLE d ON COMMIT DROP AS
	SELECT s.id AS sid, t.id AS tid, s.qty, s.price, s.status, s.note
	  FROM src s FULL JOIN %1\$s t ON s.id = t.id
	 WHERE s.id IS NULL OR t.id IS NULL
		OR (s.qty, s.price, s.status, s.note)
		   IS DISTINCT FROM (t.qty, t.price, t.status, t.note);
	DELETE FROM %1\$s t USING d WHERE d.sid IS NULL AND t.id = d.tid;
	UPDATE %1\$s t SET qty = d.qty, price = d.price, status = d.status,
		   note = d.note
	  FROM d WHERE d.tid IS NOT NULL AND d.sid IS NOT NULL AND t.id = d.sid;
	INSERT INTO %1\$s SELECT sid, qty, price, status, note FROM d
	 WHERE d.tid IS NULL\$q\$, t);
	INSERT INTO timings VALUES (r, CASE WHEN big_mem THEN 'hand+mem scd1' ELSE 'hand scd1' END,
		extract(epoch FROM clock_timestamp() - t0) * 1000);
END \$\$;

-- The hand-written SCD2 apply: close the current versions that changed or
-- are gone, open versions for the changed and the new keys.
CREATE FUNCTION hand_scd2(r int, big_mem boolean) RETURNS void
LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
		t text := CASE WHEN big_mem THEN 'w_scd2' ELSE 'h_scd2' END;
BEGIN
	IF big_mem THEN
		PERFORM set_config('work_mem', current_setting('maintenance_work_mem'), true);
	END IF;
	EXECUTE format(\$q\$
	CREATE TEMP TABLE d2 ON COMMIT DROP AS
	SELECT s.id AS sid, t.id AS tid, s.qty, s.price, s.status, s.note
	  FROM src s FULL JOIN (SELECT * FROM %1\$s WHERE __end_at IS NULL) t
		ON s.id = t.id
	 WHERE s.id IS NULL OR t.id IS NULL
		OR (s.qty, s.price, s.status, s.note)
		   IS DISTINCT FROM (t.qty, t.price, t.status, t.note);
	UPDATE %1\$s t SET __end_at = %2\$s
	  FROM d2 WHERE d2.tid IS NOT NULL AND t.id = d2.tid
	   AND t.__end_at IS NULL;
	INSERT INTO %1\$s SELECT sid, qty, price, status, note, %2\$s, NULL FROM d2
	 WHERE d2.sid IS NOT NULL\$q\$, t, r);
	INSERT INTO timings VALUES (r, CASE WHEN big_mem THEN 'hand+mem scd2' ELSE 'hand scd2' END,
		extract(epoch FROM clock_timestamp() - t0) * 1000);
END \$\$;

-- The next snapshot: 1% changed, 0.5% gone, 0.5% new.
CREATE FUNCTION next_snapshot() RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE n bigint := (SELECT count(*) FROM cur);
		top bigint := (SELECT max(id) FROM cur);
BEGIN
	DELETE FROM cur WHERE id IN (SELECT id FROM cur TABLESAMPLE BERNOULLI (0.5));
	UPDATE cur SET qty = qty + 1,
		   note = CASE WHEN note IS NULL THEN 'was null' ELSE NULL END
	 WHERE id IN (SELECT id FROM cur TABLESAMPLE BERNOULLI (1));
	INSERT INTO cur SELECT top + i, i % 100, 1.5, 'new', NULL
	  FROM generate_series(1, n / 200) i;
	TRUNCATE src;
	INSERT INTO src SELECT * FROM cur;
	ANALYZE src;
END \$\$;
SQL

for round in $(seq 1 "$ROUNDS"); do
	"${PSQL[@]}" -d $DB -c "SELECT next_snapshot()" -c "CHECKPOINT" >/dev/null
	medallion() {
		"${PSQL[@]}" -d $DB >/dev/null <<SQL
SELECT count(*) FROM medallion.run_pipeline('bench');
INSERT INTO timings
SELECT $round, 'medallion ' || replace(flow_name, 'public.m_', ''),
	   (details->>'duration_ms')::float8
  FROM medallion.event_log
 WHERE event_type = 'flow_progress' AND pipeline_name = 'bench'
   AND update_id = (SELECT max(update_id) FROM medallion.event_log
					 WHERE pipeline_name = 'bench');
SQL
	}
	hand() {
		"${PSQL[@]}" -d $DB -c "SELECT hand_scd1($round, false)" -c "SELECT hand_scd2($round, false)" \
			-c "SELECT hand_scd1($round, true)" -c "SELECT hand_scd2($round, true)" >/dev/null
	}
	if [ $((round % 2)) -eq 1 ]; then medallion; hand; else hand; medallion; fi
	# equal results: SCD1 whole, SCD2 with versions as round numbers
	"${PSQL[@]}" -d $DB -At <<SQL | grep -q '^0|0$' || { echo "round $round: targets differ" >&2; exit 1; }
WITH u AS (SELECT ts, row_number() OVER (ORDER BY ts) - 1 AS n
			 FROM medallion.event_log
			WHERE pipeline_name = 'bench' AND event_type = 'update_start'),
m2 AS (SELECT id, qty, price, status, note, s.n::int AS s, e.n::int AS e
		 FROM m_scd2 JOIN u s ON s.ts = __start_at
		 LEFT JOIN u e ON e.ts = __end_at)
SELECT (SELECT count(*) FROM ((TABLE m_scd1 EXCEPT ALL TABLE h_scd1)
							  UNION ALL (TABLE h_scd1 EXCEPT ALL TABLE m_scd1)) x),
	   (SELECT count(*) FROM ((TABLE m2 EXCEPT ALL TABLE h_scd2)
							  UNION ALL (TABLE h_scd2 EXCEPT ALL TABLE m2)) y);
SQL
done

"${PSQL[@]}" -d $DB <<SQL
\echo AUTO CDC FROM SNAPSHOT, $ROWS rows, 1% changed, 0.5% new, 0.5% gone; medians of $ROUNDS rounds (ms)
WITH med AS (
	SELECT method, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms
	  FROM timings GROUP BY method)
SELECT scd, round(m.ms::numeric, 1) AS medallion_ms,
	   round(h.ms::numeric, 1) AS hand_ms,
	   round((m.ms / h.ms)::numeric, 2) AS ratio,
	   round(w.ms::numeric, 1) AS hand_mem_ms,
	   round((m.ms / w.ms)::numeric, 2) AS ratio_mem
  FROM (VALUES ('scd1'), ('scd2')) v(scd)
  JOIN med m ON m.method = 'medallion ' || scd
  JOIN med h ON h.method = 'hand ' || scd
  JOIN med w ON w.method = 'hand+mem ' || scd
 ORDER BY scd;
SQL
[ "${KEEP_DB:-0}" = 1 ] || "${PSQL[@]}" -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
