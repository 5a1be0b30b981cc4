#!/usr/bin/env bash
# The tutorial's two gold views at a larger size: the example pipeline
# (examples/orders_pipeline.sql), triggered, with EVENTS order events and
# their customer events already processed; then ROUNDS updates, each
# bringing a file of 1,000 order events and the file of their customer
# events (creations already seen, moves, renames). For each update: the
# whole update's time, and each gold flow's time (its flow_progress
# duration_ms) with what it did (deltas, recomputed); then CREATE TABLE AS of
# each view's query, three times, for comparison. gold.revenue_by_region is
# maintained by deltas, gold.customer_rank (a window function) recomputed.
#
#   bench/tutorial_views_bench.sh [EVENTS] [ROUNDS]     (default 200000 3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/local_env.sh"
EVENTS=${1:-200000}
ROUNDS=${2:-3}
WORK=${BENCH_WORK:-/tmp/medallion-bench-tutorial}

local_env_prepare
echo "load at start: $(uptime | sed 's/.*load average: //')"
local_env_root rm -rf "$WORK"
local_env_start "$WORK" 55441 59011 shared_buffers=256MB
FEED=$(mktemp -d)
chmod 755 "$FEED"
trap 'rm -rf "$FEED"; local_env_stop' EXIT

python3 "$ROOT/bench/generate_orders.py" --events "$EVENTS" --files 100 --out "$FEED/orders" \
	--prefix part- --customers-out "$FEED/customers" >/dev/null
local_env_aws s3 cp "$FEED/orders" s3://landing/orders/ --recursive --only-show-errors
local_env_aws s3 cp "$FEED/customers" s3://landing/customers/ --recursive --only-show-errors
local_env_example -v mode=triggered >/dev/null
local_env_drain orders
local_env_psql -c "VACUUM ANALYZE" >/dev/null
echo "current orders: $(local_env_psql -At -c 'SELECT count(*) FROM gold.order_history_current')," \
	"customers: $(local_env_psql -At -c 'SELECT count(*) FROM gold.customers')"

# "rows_written milliseconds" of one run_pipeline call
timed_update() {
	local_env_psql -At <<SQL | tail -1
SELECT clock_timestamp() AS t0 \gset
SELECT coalesce(sum(rows_written), 0) AS w FROM medallion.run_pipeline('orders') \gset
SELECT :w || ' ' || round(extract(epoch FROM clock_timestamp() - :'t0') * 1000);
SQL
}
for n in $(seq 1 "$ROUNDS"); do
	python3 "$ROOT/bench/generate_orders.py" --events 1000 --files 1 --out "$FEED/new$n" \
		--prefix "new$n-" --seed "$n" --first-order $((9000000 + n * 10000)) \
		--first-sequence $((90000000 + n * 10000)) \
		--customers-out "$FEED/newcustomers$n" --customer-prefix "new$n-" >/dev/null
	local_env_aws s3 cp "$FEED/new$n" s3://landing/orders/ --recursive --only-show-errors
	local_env_aws s3 cp "$FEED/newcustomers$n" s3://landing/customers/ --recursive --only-show-errors
	echo "update $n (rows written, ms): $(timed_update)"
	local_env_psql -At -F ' ' -c "
		SELECT '  ' || flow_name, round((details->>'duration_ms')::numeric) || ' ms',
		       coalesce(details->>'maintenance', '')
		  FROM medallion.event_log
		 WHERE event_type = 'flow_progress' AND flow_name LIKE 'gold.%'
		   AND update_id = (SELECT max(update_id) FROM medallion.event_log
		                     WHERE pipeline_name = 'orders')
		 ORDER BY id"
done
for view in gold.revenue_by_region gold.customer_rank; do
	query=$(local_env_psql -At -c "SELECT definition->>'query' FROM medallion.flows WHERE flow_name = '$view'")
	for _ in 1 2 3; do
		local_env_psql -At -c '\timing on' -c "CREATE TEMP TABLE t AS $query" |
			sed -n "s/^Time: \([0-9.]*\) ms.*/CREATE TABLE AS of $view: \1 ms/p"
	done
done
echo "load at end: $(uptime | sed 's/.*load average: //')"
