-- The SQL surface of pipelines, secrets and bronze flows, without S3:
-- argument checks, catalog rows, views, privileges.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS medallion;
\set VERBOSITY default

-- pipelines
SELECT medallion.create_pipeline('orders');
SELECT medallion.create_pipeline('orders');
SELECT medallion.create_pipeline('live', 'continuous', '500 ms');
SELECT medallion.create_pipeline('bad_mode', 'sometimes');
SELECT medallion.create_pipeline('bad_interval', 'continuous', '0 s');
SELECT medallion.create_pipeline(NULL);
SELECT medallion.create_pipeline('');
SELECT medallion.create_pipeline(repeat('x', 60));
SELECT pipeline_name, owner, mode, trigger_interval, state, flow_count
  FROM medallion.pipelines ORDER BY 1;

-- start/stop apply to continuous pipelines
SELECT medallion.start_pipeline('orders');
SELECT medallion.stop_pipeline('live');
SELECT state FROM medallion.pipelines WHERE pipeline_name = 'live';
SELECT medallion.start_pipeline('live');
SELECT state FROM medallion.pipelines WHERE pipeline_name = 'live';
SELECT medallion.stop_pipeline('nope');

-- a triggered pipeline left 'running' by a cancelled update (its worker is
-- gone and holds no update lock) shows as idle
UPDATE medallion.pipeline SET state = 'running' WHERE pipeline_name = 'orders';
SELECT state FROM medallion.pipelines WHERE pipeline_name = 'orders';
UPDATE medallion.pipeline SET state = 'idle' WHERE pipeline_name = 'orders';

-- secrets
SELECT medallion.create_secret('aws', 'AKIAEXAMPLE', 'wJalrXUtnFEMI/K7MDENG');
SELECT medallion.create_secret('aws', 'AKIAEXAMPLE', 'wJalrXUtnFEMI/K7MDENG');
SELECT medallion.create_secret('temp', 'ASIAEXAMPLE', 'secret', 'token');
SELECT medallion.create_secret('empty', '', 'secret');
SELECT secret_name, has_session_token FROM medallion.secrets ORDER BY 1;
SELECT medallion.drop_secret('temp');
SELECT medallion.drop_secret('temp');

-- bronze flows: argument checks
SELECT medallion.create_bronze('nope', 'b', 's3://landing/orders/');
SELECT medallion.create_bronze('orders', 'b', 'http://landing/orders/');
SELECT medallion.create_bronze('orders', 'b', 's3://');
SELECT medallion.create_bronze('orders', 'b', 's3://landing/', format => 'parquet');
SELECT medallion.create_bronze('orders', 'b', 's3://landing/', options => '{"max_files": 3}');
SELECT medallion.create_bronze('orders', 'b', 's3://landing/', options => '{"max_files_per_batch": -3}');
SELECT medallion.create_bronze('orders', 'b', 's3://landing/', options => '{"allow_overwrites": "maybe"}');
SELECT medallion.create_bronze('orders', 'b', 's3://landing/', options => '[1]');
SELECT medallion.create_bronze('orders', 'b', 's3://landing/', secret_name => 'missing');
SELECT medallion.create_bronze('orders', 'b', 's3://landing/', endpoint => 'ftp://host');
SELECT medallion.create_bronze('orders', 'b', 's3://landing/', endpoint => 'http://host/path');
CREATE TABLE taken (id int);
SELECT medallion.create_bronze('orders', 'taken', 's3://landing/');

-- a bronze flow and its table
CREATE SCHEMA raw;
SELECT medallion.create_bronze('orders', 'raw.orders', 's3://landing/orders/',
							   secret_name => 'aws', endpoint => 'http://127.0.0.1:9000',
							   options => '{"path_glob": "*.json", "max_files_per_batch": 10}');
\d raw.orders
SELECT pipeline_name, flow_name, flow_type, source, target_table, definition
  FROM medallion.flows;
SELECT obj_description('raw.orders'::regclass);
SELECT attname, col_description(attrelid, attnum) FROM pg_attribute
 WHERE attrelid = 'raw.orders'::regclass AND attnum > 0 ORDER BY attnum;

-- hostile names are identifiers, never SQL
SELECT medallion.create_bronze('orders', 'raw."x; DROP TABLE taken; --"', 's3://landing/x/');
SELECT count(*) FROM taken;
SELECT flow_name FROM medallion.flows ORDER BY 1;

-- run_pipeline cannot see uncommitted work
BEGIN;
INSERT INTO taken VALUES (1);
SELECT * FROM medallion.run_pipeline('orders');
ROLLBACK;

-- ledger maintenance
SELECT medallion.skip_object('orders', 'landing/orders/a.json');
SELECT medallion.skip_object('orders', 's3://landing/orders/a.json');
SELECT path, etag, status, error FROM medallion.ingested_files ORDER BY flow_name;
SELECT medallion.retry_object('orders', 's3://landing/orders/a.json');
SELECT count(*) FROM medallion.ingested_files;

-- other roles
CREATE ROLE mallory;
GRANT CREATE ON SCHEMA public TO mallory;
SET ROLE mallory;
SELECT count(*) FROM medallion.pipelines;
SELECT count(*) FROM medallion.secrets;
SELECT * FROM medallion.secret;
SELECT medallion.drop_pipeline('orders');
SELECT * FROM medallion.run_pipeline('orders');
SELECT medallion.create_bronze('orders', 'm', 's3://landing/');
SELECT medallion.create_pipeline('mallory_p');
SELECT medallion.create_bronze('mallory_p', 'm', 's3://landing/', secret_name => 'aws');
SELECT medallion.create_bronze('mallory_p', 'm', 's3://landing/', endpoint => 'http://169.254.169.254');
SELECT medallion.drop_secret('aws');
SELECT pipeline_name, owner FROM medallion.pipelines;
RESET ROLE;

-- drop_pipeline
SELECT medallion.drop_pipeline('mallory_p');
SELECT medallion.drop_pipeline('orders', drop_tables => true);
SELECT to_regclass('raw.orders') IS NULL AS dropped;
SELECT pipeline_name FROM medallion.pipelines ORDER BY 1;
SELECT event_type, COALESCE(pipeline_name, dropped_pipeline_name) AS pipeline_name, message
  FROM medallion.event_log
 WHERE COALESCE(pipeline_name, dropped_pipeline_name) IN ('orders', 'live', 'mallory_p')
 ORDER BY id;

-- cleanup
SELECT medallion.drop_pipeline('live');
SELECT medallion.drop_secret('aws');
DROP TABLE taken;
DROP SCHEMA raw;
REVOKE CREATE ON SCHEMA public FROM mallory;
DROP ROLE mallory;
