#!/usr/bin/env bash
# A full refresh of the example pipeline against the rebuild a DBA would
# write by hand, side by side in one run (issue 14):
#
#   medallion   run_pipeline('orders', full_refresh => true) on the example
#               pipeline (bronze from S3, silver with expectations and dedup,
#               gold SCD2, two gold aggregates), every object already listed
#   by hand     COPY of the same files into a jsonb table, INSERT ... SELECT
#               with the casts, expectations and dedup for silver, an SCD2
#               derivation with window functions, the aggregates' GROUP BY
#
# The hand-written gold is checked equal to medallion's (EXCEPT ALL both
# ways, on the history and both aggregates), so the baseline is honest: the
# run fails when they differ.  The hand-written rebuild reads the files
# from local disk (no S3 round trips), which favours it.
#
# Then, on the same data, one incremental update that brings one new file of
# 1,000 events (median of three, the whole run_pipeline call: worker start
# included) against the full refresh (target <= 150 ms and <= 1%).  The
# load of the machine (uptime) is printed at the start and the end: other
# work on a shared machine moves the figures.
#
#   bench/full_refresh_bench.sh [EVENTS] [FILES]     (default 253000 100)
#   bench/full_refresh_bench.sh 1000000 1000         (issue 14's size)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/local_env.sh"
EVENTS=${1:-253000}
FILES=${2:-100}
WORK=${BENCH_WORK:-/tmp/medallion-bench-full-refresh}

local_env_prepare
echo "load at start: $(uptime | sed 's/.*load average: //')"
local_env_root rm -rf "$WORK"
local_env_start "$WORK" 55437 59006 shared_buffers=512MB max_wal_size=4GB
FEED="$WORK/feed"
local_env_root mkdir -p "$FEED"
local_env_root chmod 755 "$FEED"

local_env_root python3 "$ROOT/bench/generate_orders.py" --events "$EVENTS" --files "$FILES" \
	--out "$FEED" --prefix part- --duplicate-rate 0.01 --discount-rate 0.2 >/dev/null
local_env_root chmod -R a+r "$FEED"
local_env_aws s3 cp "$FEED" s3://landing/orders/ --recursive --only-show-errors
local_env_example -v mode=triggered >/dev/null

# seconds of one statement block, measured inside the server session
timed() {
	local_env_psql -At <<SQL | tail -1
SELECT clock_timestamp() AS t0 \gset
$1
SELECT extract(epoch FROM clock_timestamp() - :'t0');
SQL
}

# the first run ingests everything; the full refresh is what is measured
local_env_psql -c "SELECT count(*) FROM medallion.run_pipeline('orders')" >/dev/null
local_env_psql -c "CHECKPOINT" >/dev/null
medallion=$(timed "SELECT flow_name, count(*) AS steps, sum(rows_written) AS rows_written,
       round(extract(epoch FROM sum(duration))::numeric, 2) AS seconds
  FROM medallion.run_pipeline('orders', full_refresh => true) WITH ORDINALITY AS step
 GROUP BY flow_name ORDER BY min(step.ordinality) \\g $WORK/flows.txt")
local_env_psql -c "CHECKPOINT" >/dev/null

# by hand, with a mark (the clock, into a file) before each layer and at
# the end, for the time of each layer
marks() {
	awk -v dir="$WORK" '
	function mark(name) {
		printf "SELECT %s || extract(epoch FROM clock_timestamp()) \\g %s/mark-%s.txt\n",
			"'\''" name " '\''", dir, name
	}
	/^-- bronze/ { mark("bronze") }
	/^-- silver/ { mark("silver") }
	/^-- gold, SCD/ { mark("SCD2") }
	/^-- gold aggregates/ { mark("aggregates") }
	{ print }
	END { mark("end") }'
}
handwritten=$(timed "$(sed "s|:'feed'|'$FEED'|" "$ROOT/bench/full_refresh_handwritten.sql" | marks)")
hand_layers=$(for layer in bronze silver SCD2 aggregates end; do
	cat "$WORK/mark-$layer.txt"; done |
	awk '{ if (NR > 1) printf "%s%s %.2f", (NR > 2 ? ", " : ""), name, $2 - t; name = $1; t = $2 }')

# the check that makes the baseline honest
local_env_psql -At <<'SQL' >"$WORK/diff.txt"
SELECT 'order_history', count(*) FROM (
  (SELECT order_id, customer_id, product, category, quantity, unit_price, discount,
          status, event_ts, __start_at, __end_at FROM gold.order_history
   EXCEPT ALL SELECT * FROM hand.order_history)
  UNION ALL
  (SELECT * FROM hand.order_history
   EXCEPT ALL SELECT order_id, customer_id, product, category, quantity, unit_price, discount,
          status, event_ts, __start_at, __end_at FROM gold.order_history)) d;
SELECT 'daily_sales', count(*) FROM (
  (SELECT order_date, revenue, quantity, orders FROM gold.daily_sales
   EXCEPT ALL SELECT * FROM hand.daily_sales)
  UNION ALL
  (SELECT * FROM hand.daily_sales
   EXCEPT ALL SELECT order_date, revenue, quantity, orders FROM gold.daily_sales)) d;
SELECT 'daily_sales_by_category', count(*) FROM (
  (SELECT order_date, category, revenue, quantity, orders FROM gold.daily_sales_by_category
   EXCEPT ALL SELECT * FROM hand.daily_sales_by_category)
  UNION ALL
  (SELECT * FROM hand.daily_sales_by_category
   EXCEPT ALL SELECT order_date, category, revenue, quantity, orders
     FROM gold.daily_sales_by_category)) d;
SQL
rows=$(local_env_psql -At -c "SELECT (SELECT count(*) FROM gold.order_history) || ' versions, ' || (SELECT count(*) FROM silver.order_events) || ' silver rows'")
# one incremental update bringing one new file of 1,000 events: its time
# (whole run_pipeline call) and where it went (the update's own time and
# each flow's step, in ms); one argument: the number of the new file
incremental_update() {
	local n=$1
	local_env_root python3 "$ROOT/bench/generate_orders.py" --events 1000 --files 1 \
		--out "$WORK/new$n" --prefix "part-new$n-" --first-order $((90000000 + n * 10000)) \
		--first-sequence $((900000000 + n * 10000)) >/dev/null
	local_env_root chmod -R a+r "$WORK/new$n"
	local_env_aws s3 cp "$WORK/new$n" s3://landing/orders/ --recursive --only-show-errors
	timed "SELECT count(*) FROM medallion.run_pipeline('orders') \\g /dev/null"
	local_env_psql -At >>"$WORK/incremental.txt" <<'SQL'
SELECT 'update ' || round((e.details->>'duration_ms')::numeric) || ' ms: '
       || (SELECT string_agg(replace(flow_name, 'order_', '') || ' '
                             || round((details->>'duration_ms')::numeric), ', ' ORDER BY id)
             FROM medallion.event_log
            WHERE update_id = e.update_id AND event_type = 'flow_progress')
  FROM medallion.event_log e
 WHERE e.event_type = 'update_end' ORDER BY e.id DESC LIMIT 1;
SQL
}
# three times as the example is (a full listing each update: s3rver's
# listing costs about 0.4 ms per key), then three times with
# incremental_listing (one start-after request, as on S3), after one update
# that takes the listing's last key; the example's bronze options are
# fixed, so the flow's definition is changed in the catalog
updates=()
for n in 1 2 3; do
	updates+=("$(incremental_update $n)")
done
local_env_psql -c "UPDATE medallion.flow SET definition = jsonb_set(definition,
	'{options,incremental_listing}', 'true') WHERE flow_type = 'bronze'" >/dev/null
echo "(incremental_listing from here on, after one update)" >>"$WORK/incremental.txt"
incremental_update 4 >/dev/null
updates_inc=()
for n in 5 6 7; do
	updates_inc+=("$(incremental_update $n)")
done
incremental_inc=$(printf '%s\n' "${updates_inc[@]}" | sort -n | sed -n 2p)
incremental=$(printf '%s\n' "${updates[@]}" | sort -n | sed -n 2p)

echo "events: $EVENTS in $FILES objects ($rows)"
echo "full refresh, medallion:    $medallion s, by flow:"
sed 's/^/    /' "$WORK/flows.txt"
echo "rebuild written by hand:    $handwritten s ($hand_layers)"
awk -v m="$medallion" -v h="$handwritten" 'BEGIN { printf "ratio medallion / by hand: %.2f (target <= 1.00)\n", m / h }'
echo "incremental update, one new file of 1,000 events: ${updates[*]} s"
sed 's/^/    /' "$WORK/incremental.txt"
awk -v i="$incremental" -v m="$medallion" 'BEGIN {
	printf "  median %.3f s (target <= 0.150), %.2f%% of the full refresh (target <= 1%%)\n", i, 100 * i / m }'
echo "with incremental_listing: ${updates_inc[*]} s"
awk -v i="$incremental_inc" -v m="$medallion" 'BEGIN {
	printf "  median %.3f s (target <= 0.150), %.2f%% of the full refresh (target <= 1%%)\n", i, 100 * i / m }'
echo "load at end: $(uptime | sed 's/.*load average: //')"
if awk -F'|' '$2 != 0 { bad = 1 } END { exit !bad }' "$WORK/diff.txt"; then
	echo "gold differs from the hand-written rebuild (rows differing per table):" >&2
	cat "$WORK/diff.txt" >&2
	exit 1
fi
echo "gold equals the hand-written rebuild (order_history, daily_sales, daily_sales_by_category)"
