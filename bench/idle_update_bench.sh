#!/usr/bin/env bash
# What an update that finds nothing new costs, and where the time goes
# (issue 14): pipelines of three flows (bronze, a silver flow over it, an
# aggregate over the silver table) over a prefix of 200 and of 10,000
# objects, each processed once already, with and without
# incremental_listing, against the project's own S3 server
# (test/fault/fault_s3.py: byte-order listings; s3rver answers start-after
# by walking its whole directory, which would measure s3rver).
#
# The split of one run_pipeline call (the best of five by total):
#   worker     starting the update's background worker, waiting for it and
#              returning its result: the call's time less the update's own
#              (update_end's duration_ms in the event log)
#   listing    the bronze flow's step (credentials, S3 listing, ledger)
#   flows      the other flows' steps (each finds its watermark at the
#              source's ceiling and stops)
#   bookkeeping the rest of the update: lock, catalog reads, update_start
#              and update_end events, the pipeline's state
#
#   bench/idle_update_bench.sh [COUNTS]      (default "200 10000")
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/local_env.sh"
COUNTS=${1:-200 10000}
WORK=${BENCH_WORK:-/tmp/medallion-bench-idle}
STUB_PORT=59008

local_env_prepare
echo "load at start: $(uptime | sed 's/.*load average: //')"
local_env_root rm -rf "$WORK"
local_env_start "$WORK" 55438 59007
python3 "$ROOT/test/fault/fault_s3.py" --port "$STUB_PORT" --bucket landing > "$WORK/stub.log" 2>&1 &
STUB_PID=$!
trap 'kill $STUB_PID 2>/dev/null; local_env_stop' EXIT
for _ in $(seq 1 50); do grep -q "S3 listening" "$WORK/stub.log" 2>/dev/null && break; sleep 0.1; done

local_env_psql -c "CREATE EXTENSION IF NOT EXISTS medallion" -c "SELECT medallion.create_secret('stub', 'S3RVER', 'S3RVER')" >/dev/null
for count in $COUNTS; do
	python3 - "$STUB_PORT" "$count" <<'PY'
import http.client, sys
connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for i in range(int(sys.argv[2])):
    connection.request("PUT", "/__object/landing/idle%s/obj-%06d.json" % (sys.argv[2], i),
                       body=b'{"n": 1}\n')
    connection.getresponse().read()
PY
	for listing in incremental full; do
		p="idle_${count}_$listing"
		inc=$([ "$listing" = incremental ] && echo true || echo false)
		local_env_psql -v endpoint="http://127.0.0.1:$STUB_PORT" <<SQL >/dev/null
SELECT medallion.create_pipeline('$p');
SELECT medallion.create_bronze('$p', 'bronze_$p', 's3://landing/idle$count/',
	secret_name => 'stub', endpoint => :'endpoint',
	options => '{"incremental_listing": $inc, "max_files_per_batch": 100000}');
SELECT medallion.create_silver('$p', 'silver_$p',
	\$q\$SELECT (data->>'n')::int AS n FROM bronze_$p\$q\$);
SELECT medallion.create_aggregate('$p', 'gold_$p', 'silver_$p',
	ARRAY['n'], ARRAY['count(*) AS n_rows']);
SELECT count(*) FROM medallion.run_pipeline('$p');
SQL
	done
done
local_env_psql -c "VACUUM ANALYZE" >/dev/null

# "total worker listing flows bookkeeping" in ms, of one idle update
split_once() {
	local_env_psql -At <<SQL | tail -1
SELECT clock_timestamp() AS t0 \gset
SELECT 1000 * extract(epoch FROM sum(duration) FILTER (WHERE flow_type = 'bronze')) AS listing,
       1000 * extract(epoch FROM sum(duration) FILTER (WHERE flow_type <> 'bronze')) AS flows
  FROM medallion.run_pipeline('$1') \gset
SELECT extract(epoch FROM clock_timestamp() - :'t0') * 1000 AS total \gset
SELECT (details->>'duration_ms')::float8 AS update_ms FROM medallion.event_log
 WHERE pipeline_name = '$1' AND event_type = 'update_end' ORDER BY id DESC LIMIT 1 \gset
SELECT round(:total::numeric, 1) || ' ' || round((:total - :update_ms)::numeric, 1) || ' '
       || round(:listing::numeric, 1) || ' ' || round(:flows::numeric, 1) || ' '
       || round((:update_ms - :listing - :flows)::numeric, 1);
SQL
}

echo
echo "an update that finds nothing new; best of 5 by total; ms"
printf "%-8s %-12s %8s %8s %8s %8s %12s\n" objects listing total worker listing flows bookkeeping
for count in $COUNTS; do
	for listing in incremental full; do
		best=
		for _ in 1 2 3 4 5; do
			s=$(split_once "idle_${count}_$listing")
			if [ -z "$best" ] || awk -v a="${s%% *}" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then
				best=$s
			fi
		done
		# shellcheck disable=SC2086
		printf "%-8s %-12s %8s %8s %8s %8s %12s\n" "$count" "$listing" $best
	done
done
echo "load at end: $(uptime | sed 's/.*load average: //')"
