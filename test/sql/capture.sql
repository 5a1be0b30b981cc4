-- Change capture of plain tables (src/capture.c): a flow reading a lookup
-- table that a DBA edits by hand learns every insert, update, delete and
-- truncate of it from a change log, written by triggers as the log's owner:
-- the writers need no right on the log and get none.  The C API is driven
-- here through the internal medallion._capture_* functions.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS medallion;
RESET client_min_messages;
\set VERBOSITY default

CREATE ROLE cap_owner LOGIN;		-- owns the pipeline that reads the table
CREATE ROLE cap_writer LOGIN;		-- edits the table by hand
CREATE ROLE cap_analyst LOGIN;		-- another pipeline owner, SELECT only
CREATE SCHEMA cap AUTHORIZATION cap_owner;
CREATE SCHEMA cap_w AUTHORIZATION cap_writer;
CREATE SCHEMA cap_a AUTHORIZATION cap_analyst;

-- the lookup table: a dropped column, a generated column, a toasted value
CREATE TABLE public.product_lookup (id int PRIMARY KEY, gone int,
	label text, price numeric,
	price_with_tax numeric GENERATED ALWAYS AS (price * 1.2) STORED,
	notes text);
ALTER TABLE public.product_lookup DROP COLUMN gone;
INSERT INTO public.product_lookup (id, label, price) VALUES (1, 'one', 10), (2, 'two', 20);
GRANT SELECT, TRIGGER ON public.product_lookup TO cap_owner;
GRANT SELECT ON public.product_lookup TO cap_analyst;
GRANT INSERT, UPDATE, DELETE, TRUNCATE ON public.product_lookup TO cap_writer;
GRANT SELECT (id) ON public.product_lookup TO cap_writer;	-- for WHERE id = ...

-- two consumer flows of cap_owner, one of cap_analyst (silver flows
-- reading a table of their own: capture does not care what they are)
SET ROLE cap_owner;
CREATE TABLE cap.raw (_row_id bigint GENERATED ALWAYS AS IDENTITY, data jsonb);
SELECT medallion.create_pipeline('cap_p');
SELECT medallion.create_silver('cap_p', 'cap.first', 'SELECT data FROM cap.raw');
SELECT medallion.create_silver('cap_p', 'cap.second', 'SELECT data FROM cap.raw');
GRANT SELECT ON cap.raw TO cap_analyst;
GRANT USAGE ON SCHEMA cap TO cap_analyst;
SET ROLE cap_analyst;
SELECT medallion.create_pipeline('cap_analyst_p');
SELECT medallion.create_silver('cap_analyst_p', 'cap_a.analyst_view', 'SELECT data FROM cap.raw');
RESET ROLE;
SELECT flow_id AS first_flow FROM medallion.flow WHERE flow_name = 'cap.first' \gset
SELECT flow_id AS second_flow FROM medallion.flow WHERE flow_name = 'cap.second' \gset
SELECT flow_id AS analyst_flow FROM medallion.flow WHERE flow_name = 'cap_a.analyst_view' \gset

-- the internal functions are not for anyone
SET ROLE cap_owner;
SELECT medallion._capture_ensure('public.product_lookup', :first_flow);
RESET ROLE;

-- what cannot be captured, and why (the view then recomputes in full)
SELECT medallion._capture_available('public.product_lookup', 'cap_analyst');
SELECT medallion._capture_available('public.product_lookup', 'cap_owner') IS NULL AS available;
CREATE TEMP TABLE temp_lookup (id int);
SELECT regexp_replace(medallion._capture_available('temp_lookup', 'cap_owner'), 'pg_temp_\d+', 'pg_temp_N');
CREATE UNLOGGED TABLE public.unlogged_lookup (id int);
SELECT medallion._capture_available('public.unlogged_lookup', CURRENT_USER::regrole);
CREATE TABLE public.parted (id int) PARTITION BY RANGE (id);
CREATE TABLE public.parted_1 PARTITION OF public.parted FOR VALUES FROM (0) TO (10);
SELECT medallion._capture_available('public.parted', CURRENT_USER::regrole);
SELECT medallion._capture_available('public.parted_1', CURRENT_USER::regrole);
CREATE VIEW public.lookup_view AS SELECT * FROM public.product_lookup;
SELECT medallion._capture_available('public.lookup_view', CURRENT_USER::regrole);
SELECT medallion._capture_available('medallion.pipeline', CURRENT_USER::regrole);
SELECT medallion._capture_available('cap.first', CURRENT_USER::regrole);
CREATE TABLE public.clash (id int, __sign int);
SELECT medallion._capture_available('public.clash', CURRENT_USER::regrole);
CREATE TABLE public.secured (id int);
ALTER TABLE public.secured ENABLE ROW LEVEL SECURITY;
SELECT medallion._capture_available('public.secured', CURRENT_USER::regrole);
DROP TABLE temp_lookup, public.unlogged_lookup, public.parted, public.clash, public.secured;
DROP VIEW public.lookup_view;
SELECT medallion._capture_ensure('public.product_lookup', :analyst_flow);

-- capture begins: a log owned by the pipeline owner, four triggers
SELECT medallion._capture_ensure('public.product_lookup', :first_flow);
SELECT medallion._capture_ensure('public.product_lookup', :first_flow);	-- idempotent
SELECT relid, table_name, log_table FROM medallion.captured_table;
SELECT relid, f.flow_name, position FROM medallion.capture_consumer JOIN medallion.flow f USING (flow_id);
SELECT relowner::regrole, relacl FROM pg_class WHERE oid = 'medallion_state.public__product_lookup__changes'::regclass;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'public.product_lookup'::regclass ORDER BY tgname;
\d medallion_state.public__product_lookup__changes

-- the state the consumer starts from
CREATE TABLE public.start_state AS SELECT * FROM public.product_lookup;

-- a writer with only INSERT, UPDATE, DELETE and TRUNCATE on the table (and
-- SELECT on its key, to name rows): it cannot read what it captures
SET ROLE cap_writer;
INSERT INTO public.product_lookup (id, label, price) VALUES (3, 'three', 30), (4, 'four', 40);
UPDATE public.product_lookup SET label = 'TWO' WHERE id = 2;
UPDATE public.product_lookup SET label = 'none' WHERE id = 99;	-- no row: nothing logged
DELETE FROM public.product_lookup WHERE id = 1;
INSERT INTO public.product_lookup (id, label, price, notes)
	VALUES (5, 'five', 50, repeat(md5('x'), 10000));		-- toasted
-- ... can neither read nor write the log, nor use the trigger function
SELECT count(*) FROM medallion_state.public__product_lookup__changes;
INSERT INTO medallion_state.public__product_lookup__changes (__sign, id) VALUES (1, 666);
DELETE FROM medallion_state.public__product_lookup__changes;
CREATE TABLE cap_w.evil (id int);
CREATE TRIGGER evil AFTER INSERT ON cap_w.evil REFERENCING NEW TABLE AS __capture_new
	FOR EACH STATEMENT EXECUTE FUNCTION medallion.capture_changes();
SELECT * FROM medallion.captured_tables;
RESET ROLE;

-- what the consumer reads: exactly the changes, in order
SELECT log_table, from_id, to_id FROM medallion._capture_begin('public.product_lookup', :first_flow) \gset
SELECT :'log_table' AS log_table, :from_id AS from_id, :to_id AS to_id;
SELECT __change_id, __sign, id, label, price, price_with_tax, length(notes) AS notes
  FROM medallion_state.public__product_lookup__changes
 WHERE __change_id > :from_id AND __change_id <= :to_id ORDER BY __change_id;
-- start state + added - removed = the table now
CREATE FUNCTION pg_temp.replayed(from_id bigint, to_id bigint)
RETURNS TABLE (id int, label text, price numeric, price_with_tax numeric, notes text)
LANGUAGE sql AS $$
	(SELECT id, label, price, price_with_tax, notes FROM public.start_state
	 UNION ALL
	 SELECT id, label, price, price_with_tax, notes FROM medallion_state.public__product_lookup__changes
	  WHERE __sign = 1 AND __change_id > from_id AND __change_id <= to_id)
	EXCEPT ALL
	SELECT id, label, price, price_with_tax, notes FROM medallion_state.public__product_lookup__changes
	 WHERE __sign = -1 AND __change_id > from_id AND __change_id <= to_id
$$;
CREATE FUNCTION pg_temp.differences(from_id bigint, to_id bigint) RETURNS bigint
LANGUAGE sql AS $$
	SELECT count(*) FROM (
		(SELECT * FROM pg_temp.replayed(from_id, to_id)
		 EXCEPT ALL SELECT id, label, price, price_with_tax, notes FROM public.product_lookup)
		UNION ALL
		(SELECT id, label, price, price_with_tax, notes FROM public.product_lookup
		 EXCEPT ALL SELECT * FROM pg_temp.replayed(from_id, to_id))) d
$$;
SELECT pg_temp.differences(:from_id, :to_id);

-- a second consumer starts at the current position; the first one's end
-- prunes only what both have read
SELECT medallion._capture_ensure('public.product_lookup', :second_flow);
TRUNCATE public.start_state;
INSERT INTO public.start_state SELECT * FROM public.product_lookup;
SELECT medallion._capture_end('public.product_lookup', :first_flow, :to_id);
SELECT count(*) AS log_rows FROM medallion_state.public__product_lookup__changes;
SET ROLE cap_writer;
TRUNCATE public.product_lookup;
INSERT INTO public.product_lookup (id, label, price) VALUES (7, 'seven', 70);
RESET ROLE;
SELECT from_id AS second_from, to_id AS second_to
  FROM medallion._capture_begin('public.product_lookup', :second_flow) \gset
SELECT :second_from = :to_id AS second_starts_where_first_ended;
SELECT __sign, id, label, length(notes) AS notes FROM medallion_state.public__product_lookup__changes
 WHERE __change_id > :second_from AND __change_id <= :second_to ORDER BY __change_id;
SELECT pg_temp.differences(:second_from, :second_to);
SELECT medallion._capture_end('public.product_lookup', :second_flow, :second_to);
SELECT count(*) AS log_rows FROM medallion_state.public__product_lookup__changes;
SET ROLE cap_owner;
SELECT table_name, log_table, consumers, pending_changes FROM medallion.captured_tables;
RESET ROLE;

-- the table's columns change: writers go on, the log keeps its columns
ALTER TABLE public.product_lookup ADD COLUMN extra int;
ALTER TABLE public.product_lookup DROP COLUMN notes;
SET ROLE cap_writer;
INSERT INTO public.product_lookup (id, label, price, extra) VALUES (8, 'eight', 80, 1);
RESET ROLE;
SELECT __sign, id, label, length(notes) AS notes FROM medallion_state.public__product_lookup__changes ORDER BY __change_id;

-- capture needs READ COMMITTED to read
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM medallion._capture_begin('public.product_lookup', :first_flow);
ROLLBACK;
SELECT * FROM medallion._capture_begin('public.product_lookup', 123456);

-- a consumer goes; the last one takes the triggers and the log with it
-- (here by dropping its flow)
SELECT medallion._capture_release('public.product_lookup', :first_flow);
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'public.product_lookup'::regclass;
SELECT medallion.drop_flow('cap.second', drop_table => true);
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'public.product_lookup'::regclass;
SELECT to_regclass('medallion_state.public__product_lookup__changes') AS log;
SELECT count(*) FROM medallion.captured_table;

-- a captured table dropped: its log goes with it, its reader fails clearly
SELECT medallion._capture_ensure('public.product_lookup', :first_flow);
SELECT 'public.product_lookup'::regclass::oid AS lookup_oid \gset
DROP TABLE public.product_lookup;
SELECT to_regclass('medallion_state.public__product_lookup__changes') AS log;
SELECT * FROM medallion._capture_begin(:lookup_oid::oid::regclass, :first_flow);
-- ... and drop_pipeline cleans up
SELECT medallion.drop_pipeline('cap_p', drop_tables => true);
SELECT count(*) AS captured, (SELECT count(*) FROM medallion.capture_consumer) AS consumers
  FROM medallion.captured_table;

-- cleanup
SELECT medallion.drop_pipeline('cap_analyst_p', drop_tables => true);
DROP TABLE public.start_state;
DROP SCHEMA cap, cap_w, cap_a CASCADE;
DROP ROLE cap_owner, cap_writer, cap_analyst;
