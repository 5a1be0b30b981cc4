#!/usr/bin/env bash
# The promise of the project, measured: incremental instead of full refresh.
#
#  1. incremental cost: the example pipeline (bronze, silver with
#     expectations, gold SCD2, two gold aggregates), triggered, with 1M
#     events in 1,000 files already processed; a new file of 1,000 events:
#     the time of one incremental update of the whole pipeline (the median of
#     three, a file each) vs the time of a full refresh of the same pipeline
#     (target ratio <= 1%).
#  2. listing cost: 10,000 objects in a prefix of the project's own S3
#     server; an update that finds nothing new, with incremental_listing
#     (start-after) and without (target <= 100 ms with incremental listing).
#
#   bench/pipeline_bench.sh [EVENTS] [FILES] [LISTING_OBJECTS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/local_env.sh"
EVENTS=${1:-1000000}
FILES=${2:-1000}
LISTING=${3:-10000}
WORK=${BENCH_WORK:-/tmp/medallion-bench-pipeline}

local_env_prepare
local_env_root rm -rf "$WORK"
local_env_start "$WORK" 55435 59003 shared_buffers=512MB max_wal_size=4GB
FEED=$(mktemp -d)
trap 'rm -rf "$FEED"; local_env_stop' EXIT

python3 "$ROOT/bench/generate_orders.py" --events "$EVENTS" --files "$FILES" --out "$FEED/history" --prefix part- >/dev/null
local_env_aws s3 cp "$FEED/history" s3://landing/orders/ --recursive --only-show-errors
local_env_example -v mode=triggered >/dev/null

# process the history (100 files per update)
local_env_drain orders
local_env_psql -c "VACUUM ANALYZE" >/dev/null

# "rows_written seconds" of one run_pipeline call
timed_update() {
	local_env_psql -At <<SQL | tail -1
SELECT clock_timestamp() AS t0 \gset
SELECT coalesce(sum(rows_written), 0) AS w FROM medallion.run_pipeline('orders', full_refresh => $1) \gset
SELECT :w || ' ' || extract(epoch FROM clock_timestamp() - :'t0');
SQL
}
# three new files of 1,000 events, one update each: the median
updates=()
for n in 1 2 3; do
	python3 "$ROOT/bench/generate_orders.py" --events 1000 --files 1 --out "$FEED/new$n" \
		--prefix "part-new$n-" --first-order $((9000000 + n * 10000)) \
		--first-sequence $((90000000 + n * 10000)) >/dev/null
	local_env_aws s3 cp "$FEED/new$n" s3://landing/orders/ --recursive --only-show-errors
	t=$(timed_update false)
	updates+=("${t#* }")
done
incremental=$(printf '%s\n' "${updates[@]}" | sort -n | sed -n 2p)
echo "incremental updates, one new file each: ${updates[*]} s"
# a full refresh processes all it lists, batch after batch (a capped flow
# would leave the rest to later updates): sum the
# updates until the history is processed again
t=$(timed_update true)
full=${t#* }
while [ "${t%% *}" != 0 ]; do
	t=$(timed_update false)
	full=$(awk -v a="$full" -v b="${t#* }" 'BEGIN {print a + b}')
done

# listing cost, against the project's own S3 server (test/fault/fault_s3.py:
# byte-order listings; s3rver answers start-after by walking its whole
# directory, which would measure s3rver, not medallion)
STUB_PORT=59004
python3 "$ROOT/test/fault/fault_s3.py" --port "$STUB_PORT" --bucket landing > "$WORK/stub.log" 2>&1 &
STUB_PID=$!
trap 'kill $STUB_PID 2>/dev/null; rm -rf "$FEED"; local_env_stop' EXIT
for _ in $(seq 1 50); do grep -q "S3 listening" "$WORK/stub.log" 2>/dev/null && break; sleep 0.1; done
python3 - "$STUB_PORT" "$LISTING" <<'PY'
import http.client, sys
connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for i in range(int(sys.argv[2])):
    connection.request("PUT", "/__object/landing/listing/obj-%06d.json" % i, body=b'{"n": 1}\n')
    connection.getresponse().read()
PY
local_env_psql -v endpoint="http://127.0.0.1:$STUB_PORT" <<SQL >/dev/null
SELECT medallion.create_pipeline('listing_incremental');
SELECT medallion.create_bronze('listing_incremental', 'bronze.listing_incremental', 's3://landing/listing/',
	secret_name => 'landing', endpoint => :'endpoint',
	options => '{"incremental_listing": true, "max_files_per_batch": 100000}');
SELECT medallion.create_pipeline('listing_full');
SELECT medallion.create_bronze('listing_full', 'bronze.listing_full', 's3://landing/listing/',
	secret_name => 'landing', endpoint => :'endpoint', options => '{"max_files_per_batch": 100000}');
SELECT count(*) FROM medallion.run_pipeline('listing_incremental');
SELECT count(*) FROM medallion.run_pipeline('listing_full');
SQL
measure_idle() {
	local best=999
	for _ in 1 2 3 4 5; do
		t=$(local_env_psql -At <<SQL | tail -1
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM medallion.run_pipeline('$1');
SELECT extract(epoch FROM clock_timestamp() - :'t0');
SQL
)
		best=$(awk -v a="$best" -v b="$t" 'BEGIN {print (b < a) ? b : a}')
	done
	echo "$best"
}
listing_incremental=$(measure_idle listing_incremental)
listing_full=$(measure_idle listing_full)

awk -v inc="$incremental" -v full="$full" -v li="$listing_incremental" -v lf="$listing_full" \
	-v events="$EVENTS" -v files="$FILES" -v listing="$LISTING" 'BEGIN {
	printf "\nexample pipeline (bronze, silver + 6 expectations, gold SCD2, 2 aggregates), %d events in %d files\n", events, files;
	printf "%-70s %10s\n", "", "seconds";
	printf "%-70s %10.3f\n", "incremental update with one new file of 1,000 events (median of 3)", inc;
	printf "%-70s %10.3f\n", "full refresh of the same pipeline", full;
	printf "ratio incremental / full refresh: %.2f%%   (target <= 1%%)\n", 100 * inc / full;
	printf "\nan update that finds nothing new among %d objects (best of 5, whole run_pipeline call)\n", listing;
	printf "%-52s %10.3f   (target <= 0.100)\n", "with incremental_listing (start-after)", li;
	printf "%-52s %10.3f\n", "with a full listing", lf;
}'
