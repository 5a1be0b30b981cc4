--
-- medallion.row_id_in_range(row_id, after, up_to): the range of a delta.
--
-- Its value is after < row_id <= up_to.  What it is for is the planner:
-- a delta is the newest rows of a feed, past the histogram of its last
-- ANALYZE, where "_row_id > a AND _row_id <= b" is estimated at a row or
-- two.  The support function estimates the range at its size and reads it
-- by an index range scan.  The plans are read as JSON, so that only the
-- estimate and the index condition are compared, not costs.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS medallion;
CREATE SCHEMA row_range_test;
SET search_path = row_range_test, public;

-- the value, at the bounds and with NULLs (STRICT)
SELECT v, medallion.row_id_in_range(v, 10, 20) AS in_range
  FROM (VALUES (9), (10), (11), (19), (20), (21)) AS t(v);
SELECT medallion.row_id_in_range(NULL, 1, 2) IS NULL AS null_row_id,
       medallion.row_id_in_range(1, NULL, 2) IS NULL AS null_after,
       medallion.row_id_in_range(1, 0, NULL) IS NULL AS null_up_to;
-- an empty or reversed range holds no row
SELECT medallion.row_id_in_range(5, 5, 5) AS empty,
       medallion.row_id_in_range(5, 9, 1) AS reversed;

-- A feed analysed at 10,000 rows, then 2,000 rows more: the delta.
CREATE TABLE feed (_row_id bigint PRIMARY KEY, customer_id int, amount int);
INSERT INTO feed SELECT i, i % 100, i % 7 FROM generate_series(1, 10000) AS i;
ANALYZE feed;
INSERT INTO feed SELECT i, i % 100, i % 7 FROM generate_series(10001, 12000) AS i;

CREATE FUNCTION plan_of(query text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	plan json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
	RETURN (plan -> 0 -> 'Plan')::jsonb;
END
$$;

-- The comparisons take the 2,000 new rows for about a hundred (the
-- histogram ends at 10,000: only its last bin reaches the index's largest
-- value, and the range gets part of that bin); the call is estimated at 2,000 and still read by the
-- primary key, with the two comparisons as the index condition.
SELECT (p ->> 'Plan Rows')::int < 200 AS comparisons_underestimated
  FROM plan_of('SELECT * FROM feed WHERE _row_id > 10000 AND _row_id <= 12000') AS p;
SELECT (p ->> 'Plan Rows')::int BETWEEN 1800 AND 2200 AS call_estimated_at_size,
       p ->> 'Node Type' AS node,
       p ->> 'Index Name' AS index,
       p ->> 'Index Cond' AS index_condition,
       p ->> 'Filter' AS filter
  FROM plan_of('SELECT * FROM feed WHERE medallion.row_id_in_range(_row_id, 10000, 12000)') AS p;
-- a narrow range of old rows: an index scan of its size too
SELECT (p ->> 'Plan Rows')::int BETWEEN 5 AND 15 AS narrow_range_estimated,
       p ->> 'Index Cond' AS index_condition
  FROM plan_of('SELECT * FROM feed WHERE medallion.row_id_in_range(_row_id, 100, 110)') AS p;
-- the rows read are the range's, whichever way they are read
SELECT count(*), min(_row_id), max(_row_id)
  FROM feed WHERE medallion.row_id_in_range(_row_id, 10000, 12000);
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT p ->> 'Node Type' AS node, p ->> 'Filter' AS filter
  FROM plan_of('SELECT * FROM feed WHERE medallion.row_id_in_range(_row_id, 10000, 12000)') AS p;
SELECT count(*), min(_row_id), max(_row_id)
  FROM feed WHERE medallion.row_id_in_range(_row_id, 10000, 12000);
RESET enable_indexscan;
RESET enable_bitmapscan;

-- Joined to a 12-row lookup table, the delta is hashed once rather than
-- the lookup table scanned for every delta row (what the comparisons'
-- estimate of a row or two gave).
CREATE TABLE labels (customer_id int PRIMARY KEY, label text);
INSERT INTO labels SELECT i, 'label ' || i FROM generate_series(0, 11) AS i;
ANALYZE labels;
SELECT p ->> 'Node Type' AS join_node
  FROM plan_of('SELECT l.label, sum(f.amount) FROM feed f JOIN labels l USING (customer_id)
				 WHERE medallion.row_id_in_range(f._row_id, 10000, 12000) GROUP BY l.label') AS top,
	   LATERAL (SELECT top -> 'Plans' -> 0 AS p) AS child;

-- bounds given as parameters of a prepared statement are folded into the
-- custom plan's estimate
PREPARE delta(bigint, bigint) AS
	SELECT * FROM feed WHERE medallion.row_id_in_range(_row_id, $1, $2);
CREATE FUNCTION prepared_plan_rows() RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	plan json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) EXECUTE delta(10000, 12000)' INTO plan;
	RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::int;
END
$$;
SELECT prepared_plan_rows() BETWEEN 1800 AND 2200 AS prepared_estimated_at_size;
DEALLOCATE delta;

DROP SCHEMA row_range_test CASCADE;
