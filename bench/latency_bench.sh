#!/usr/bin/env bash
# Continuous-mode benchmark: end-to-end latency, idle cost, parallel ingest.
#
#  1. latency: 100 single-file uploads to the example pipeline
#     (examples/orders_pipeline.sql, trigger_interval 500 ms); for each, the
#     time from the end of the upload (the AWS CLI returned) until the file's
#     rows are visible in bronze, and until its day appears in the gold
#     aggregate gold.daily_sales; p50 and p99.
#  2. idle cost: CPU used by the pipeline worker over 30 s with no new file.
#  3. parallel ingestion: 20 objects of 10 MB with max_parallel_objects 1 and 2.
#
#   bench/latency_bench.sh [FILES]          (default 100)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/local_env.sh"
FILES=${1:-100}
WORK=${BENCH_WORK:-/tmp/medallion-bench-latency}

local_env_prepare
local_env_root rm -rf "$WORK"
local_env_start "$WORK" 55434 59002 medallion.launcher_naptime=200ms
local_env_example >/dev/null

FEED=$(mktemp -d)
now_s() { date +%s.%N; }
: > "$WORK/latency.txt"
for i in $(seq 1 "$FILES"); do
	day=$(date -u -d "2030-01-01 +$i days" +%Y-%m-%d)
	rm -f "$FEED"/*.json
	python3 "$ROOT/bench/generate_orders.py" --events 20 --files 1 --out "$FEED" \
		--prefix "lat-$(printf %04d "$i")-" --seed "$i" --first-order $((i * 100)) \
		--first-sequence $((i * 1000)) --start "${day}T00:00:00+00:00" --late-rate 0 >/dev/null
	file=$(ls "$FEED"/*.json)
	local_env_aws s3 cp "$file" "s3://landing/orders/$(basename "$file")" --only-show-errors
	uploaded=$(now_s)
	bronze=
	gold=
	for _ in $(seq 1 1000); do
		if [ -z "$bronze" ] && [ "$(local_env_psql -At -c "SELECT count(*) > 0 FROM bronze.order_events WHERE _file_name = '$(basename "$file")'")" = t ]; then
			bronze=$(now_s)
		fi
		if [ -n "$bronze" ] && [ "$(local_env_psql -At -c "SELECT count(*) > 0 FROM gold.daily_sales WHERE order_date >= '$day'")" = t ]; then
			gold=$(now_s)
			break
		fi
		sleep 0.01
	done
	echo "$uploaded $bronze $gold" >> "$WORK/latency.txt"
done

# idle: CPU ticks of the pipeline worker over 30 s
pid=$(pgrep -f 'medallion worker' | head -1)
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
before=$(ticks); sleep 30; after=$(ticks)
hz=$(getconf CLK_TCK)

# parallel ingestion: 20 objects of 10 MB
mkdir -p "$WORK/par"
python3 "$ROOT/bench/generate_orders.py" --events 800000 --files 20 --out "$FEED/par" --prefix par- >/dev/null
local_env_aws s3 cp "$FEED/par" s3://landing/par/ --recursive --only-show-errors
local_env_psql -v endpoint="$LOCAL_ENV_ENDPOINT" <<SQL >/dev/null
SELECT medallion.create_pipeline('serial');
SELECT medallion.create_bronze('serial', 'bronze.par_serial', 's3://landing/par/',
	secret_name => 'landing', endpoint => :'endpoint');
SELECT medallion.create_pipeline('parallel');
SELECT medallion.create_bronze('parallel', 'bronze.par_parallel', 's3://landing/par/',
	secret_name => 'landing', endpoint => :'endpoint', options => '{"max_parallel_objects": 2}');
SQL
local_env_psql -c "SELECT medallion.stop_pipeline('orders')" >/dev/null
serial=$(local_env_psql -At -c "SELECT extract(epoch FROM duration) FROM medallion.run_pipeline('serial')")
parallel=$(local_env_psql -At -c "SELECT extract(epoch FROM duration) FROM medallion.run_pipeline('parallel')")
rm -rf "$FEED"

# percentiles with sort(1): mawk, Debian's default awk, has no asort
percentile() {  # percentile P COLUMN (2: bronze, 3: gold)
	awk -v c="$2" '$c != "" { printf "%.3f\n", $c - $1 }' "$WORK/latency.txt" | sort -n |
		awk -v p="$1" '{ v[NR] = $1 } END { i = int(p * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'
}
count() { awk -v c="$1" '$c != ""' "$WORK/latency.txt" | wc -l; }
printf "\ncontinuous mode, trigger_interval 500 ms, %d single-file uploads\n" "$(wc -l < "$WORK/latency.txt")"
printf "%-34s %8s %8s %8s\n" "upload finished -> visible in" "p50 s" "p99 s" "files"
printf "%-34s %8s %8s %8s   (target p50 <= 1 s, p99 <= 2 s)\n" "bronze" "$(percentile 0.5 2)" "$(percentile 0.99 2)" "$(count 2)"
printf "%-34s %8s %8s %8s   (target p50 <= 1 s, p99 <= 2 s)\n" "gold aggregate (daily_sales)" "$(percentile 0.5 3)" "$(percentile 0.99 3)" "$(count 3)"
awk -v t=$((after - before)) -v hz="$hz" 'BEGIN { printf "idle pipeline worker: %.2f%% of one core over 30 s   (target < 1%%)\n", 100 * t / hz / 30 }'
awk -v s="$serial" -v p="$parallel" 'BEGIN { printf "20 objects of 10 MB: serial %.2f s, max_parallel_objects 2: %.2f s, speed-up %.2fx   (target >= 1.3x)\n", s, p, s / p }'
