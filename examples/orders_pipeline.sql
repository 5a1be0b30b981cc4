-- The sample agribusiness order pipeline (see the README's tutorial).
-- Run with: psql -v endpoint=http://127.0.0.1:9000 -f examples/orders_pipeline.sql
CREATE EXTENSION IF NOT EXISTS medallion;

-- The local S3 server's credentials, usable only by this role.
SELECT medallion.create_secret('landing', 'S3RVER', 'S3RVER');

-- A continuous pipeline: a worker runs an update every 500 ms.
SELECT medallion.create_pipeline('orders', mode => 'continuous',
                                 trigger_interval => '500 ms');

-- Bronze: every new object under s3://landing/orders/, exactly once.
CREATE SCHEMA bronze;
SELECT medallion.create_bronze('orders', 'bronze.order_events', 's3://landing/orders/',
                               secret_name => 'landing', endpoint => :'endpoint',
                               options => '{"path_glob": "*.json"}');
