#!/usr/bin/env bash
# Soak test (not part of test/run-all.sh): a continuous pipeline
# bronze -> silver -> gold (AUTO CDC, SCD type 2, and an aggregate of it
# maintained by deltas) receives one new file every second for SOAK_MINUTES; the pipeline worker's memory is sampled every
# SOAK_SAMPLE_SECONDS from /proc/PID/smaps_rollup; at the end every file must
# be in bronze, silver and gold, the aggregate must equal its query, and the
# figures are printed.
#
# Memory: "anon" (Anonymous: the worker's own heap, which is what a leak
# grows) is the figure to watch; "private" (Private_Clean + Private_Dirty)
# also counts the pages of shared_buffers that only this worker has touched
# so far, so it grows while the tables grow, up to shared_buffers, without
# any leak; RSS adds the shared pages.
#
#   bash test/soak/soak.sh                 30 minutes
#   SOAK_MINUTES=3 bash test/soak/soak.sh  a short run
#
# Environment:
#   SOAK_MINUTES=30          how long files keep arriving
#   SOAK_INTERVAL=1          seconds between two files
#   SOAK_RECORDS=50          records per file
#   SOAK_SAMPLE_SECONDS=10   memory sampling period
#   SOAK_FAULT_RATE=0        share of S3 answers that fail transiently (0..1)
#   SOAK_MAX_GROWTH_KB=      fail if the worker's anonymous memory grows more
#                            than this between the first and the last sample
#   SOAK_KEEP=1              keep the scratch directory (data, logs, samples)
#   MEDALLION_TEST_USER      user that runs PostgreSQL when started as root
#                            (default postgres)
#
# It uses the medallion installed for PostgreSQL 15 (run `make install`, or
# test/run-all.sh, first), starts its own cluster on a Unix socket and its own
# S3 endpoint (test/fault/fault_s3.py) on 127.0.0.1, and stops both at exit.
# Exit status: 0 when no file is missing (and the growth limit, if any, holds).
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_BINDIR=/usr/lib/postgresql/15/bin

SOAK_MINUTES=${SOAK_MINUTES:-30}
SOAK_INTERVAL=${SOAK_INTERVAL:-1}
SOAK_RECORDS=${SOAK_RECORDS:-50}
SOAK_SAMPLE_SECONDS=${SOAK_SAMPLE_SECONDS:-10}
SOAK_FAULT_RATE=${SOAK_FAULT_RATE:-0}
SOAK_MAX_GROWTH_KB=${SOAK_MAX_GROWTH_KB:-}

# PostgreSQL refuses to run as root: run the whole script as the test user.
if [ "$(id -u)" -eq 0 ]; then
	TEST_USER=${MEDALLION_TEST_USER:-postgres}
	id "$TEST_USER" >/dev/null 2>&1 || { echo "soak: no user $TEST_USER" >&2; exit 2; }
	exec runuser -u "$TEST_USER" -- env SOAK_MINUTES="$SOAK_MINUTES" \
		SOAK_INTERVAL="$SOAK_INTERVAL" SOAK_RECORDS="$SOAK_RECORDS" \
		SOAK_SAMPLE_SECONDS="$SOAK_SAMPLE_SECONDS" SOAK_FAULT_RATE="$SOAK_FAULT_RATE" \
		SOAK_MAX_GROWTH_KB="$SOAK_MAX_GROWTH_KB" SOAK_KEEP="${SOAK_KEEP:-0}" \
		PATH="$PG_BINDIR:/usr/local/bin:/usr/bin:/bin" LANG=C.UTF-8 TZ=UTC \
		bash "$SRC/test/soak/soak.sh"
fi

export PATH="$PG_BINDIR:$PATH"
if [ ! -f "$("$PG_BINDIR/pg_config" --pkglibdir)/medallion.so" ]; then
	echo "soak: medallion is not installed for PostgreSQL 15 (run make install first)" >&2
	exit 2
fi

WORK=$(mktemp -d /tmp/medallion-soak.XXXXXX)
PGDATA=$WORK/data
LOG=$WORK/postgres.log
S3LOG=$WORK/fault_s3.log
SAMPLES=$WORK/samples.csv
S3PID=
PGSTARTED=0

cleanup() {
	local rc=$?
	[ "$PGSTARTED" = 1 ] && pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null 2>&1
	[ -n "$S3PID" ] && kill "$S3PID" 2>/dev/null && wait "$S3PID" 2>/dev/null
	if [ "${SOAK_KEEP:-0}" = 1 ]; then
		echo "soak: kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s soak: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { say "$*" >&2; [ -f "$LOG" ] && tail -n 30 "$LOG" >&2; exit 1; }

# ------------------------------------------------------------ S3 endpoint
python3 "$SRC/test/fault/fault_s3.py" --port 0 --bucket landing >"$S3LOG" 2>&1 &
S3PID=$!
ENDPOINT=
for _ in $(seq 1 100); do
	ENDPOINT=$(sed -n 's/^S3 listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$S3LOG")
	[ -n "$ENDPOINT" ] && break
	sleep 0.1
done
[ -n "$ENDPOINT" ] || die "the S3 endpoint did not start: $(cat "$S3LOG")"
if [ "$SOAK_FAULT_RATE" != 0 ]; then
	curl -sf -X POST "$ENDPOINT/__fault" -d "{\"name\": \"soak\", \"probability\": $SOAK_FAULT_RATE, \"seed\": 1,
		\"kinds\": [\"slowdown\", \"internal_error\", \"reset\", \"short_body\", \"truncated_xml\"], \"bytes\": 100}" >/dev/null ||
		die "could not configure faults"
fi

# --------------------------------------------------------------- cluster
initdb -D "$PGDATA" -A trust -E UTF8 --no-locale >"$WORK/initdb.log" 2>&1 || die "initdb failed: $(cat "$WORK/initdb.log")"
cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$WORK'
port = 5432
shared_preload_libraries = 'medallion'
medallion.enable_workers = on
medallion.launcher_naptime = '500ms'
max_worker_processes = 16
timezone = 'UTC'
log_min_messages = warning
EOF
pg_ctl -D "$PGDATA" -l "$LOG" -w start >/dev/null || die "the server did not start"
PGSTARTED=1
export PGHOST=$WORK PGPORT=5432 PGDATABASE=postgres
q() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

q "CREATE EXTENSION medallion" || die "CREATE EXTENSION failed"
q "SELECT medallion.create_secret('soak', 'S3RVER', 'S3RVER');
   SELECT medallion.create_pipeline('soak', 'continuous', '500 ms');
   SELECT medallion.create_bronze('soak', 'bronze_events', 's3://landing/soak/',
       secret_name => 'soak', endpoint => '$ENDPOINT');
   SELECT medallion.create_silver('soak', 'silver_events', \$q\$
       SELECT medallion.try_cast(data->>'event_id', NULL::bigint) AS event_id,
              medallion.try_cast(data->>'customer_id', NULL::int) AS customer_id,
              medallion.try_cast(data->>'seq', NULL::bigint) AS seq,
              medallion.try_cast(data->>'amount', NULL::numeric) AS amount
         FROM bronze_events\$q\$, dedup_keys => ARRAY['event_id']);
   SELECT medallion.add_expectation('silver_events', 'positive_amount', 'amount > 0', 'drop');
   SELECT medallion.create_auto_cdc_flow('soak', 'gold_customers', 'silver_events',
       keys => ARRAY['customer_id'], sequence_by => 'seq', stored_as_scd_type => 2,
       except_column_list => ARRAY['seq']);
   SELECT medallion.create_aggregate('soak', 'gold_buckets', 'gold_customers',
       group_by => ARRAY['customer_id % 10 AS bucket'],
       aggregates => ARRAY['count(*) AS customers', 'sum(amount) AS amount',
                           'count(DISTINCT event_id) AS events'],
       filter => '__end_at IS NULL');" >/dev/null || die "creating the pipeline failed"
# what the aggregate (maintained by deltas from the change feed) must equal
AGGREGATE_QUERY="SELECT customer_id % 10, count(*), sum(amount), count(DISTINCT event_id)
                   FROM gold_customers WHERE __end_at IS NULL GROUP BY 1"

# ------------------------------------------------------------------ soak
worker_pid() {
	q "SELECT pid FROM pg_stat_activity WHERE application_name = 'medallion worker: soak' LIMIT 1" 2>/dev/null
}
# anonymous, private (Private_Clean + Private_Dirty) and resident memory of a
# process, in kB
memory_of() {
	awk '/^Rss:/ {rss=$2} /^Anonymous:/ {anon=$2} /^Private_Clean:/ {pc=$2} /^Private_Dirty:/ {pd=$2}
	     END {if (rss == "") exit 1; print anon + 0, pc + pd, rss}' "/proc/$1/smaps_rollup" 2>/dev/null
}
cpu_ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }

say "S3 endpoint $ENDPOINT, cluster in $WORK; a file every ${SOAK_INTERVAL}s with $SOAK_RECORDS records for $SOAK_MINUTES minutes"
echo "elapsed_s,files,bronze_rows,worker_pid,anon_kb,private_kb,rss_kb" >"$SAMPLES"
START=$(date +%s)
END=$((START + SOAK_MINUTES * 60))
FILES=0
EVENT=0
NEXT_SAMPLE=$START
FIRST_PID=
PIDS_SEEN=
CPU_START=
while :; do
	now=$(date +%s)
	[ "$now" -ge "$END" ] && break
	# one file
	FILES=$((FILES + 1))
	body=
	for _ in $(seq 1 "$SOAK_RECORDS"); do
		EVENT=$((EVENT + 1))
		body+="{\"event_id\": $EVENT, \"customer_id\": $((EVENT % 500)), \"seq\": $EVENT, \"amount\": $((EVENT % 997 + 1)).25}"$'\n'
	done
	printf '%s' "$body" | curl -sf -X PUT --data-binary @- \
		"$ENDPOINT/__object/landing/soak/$(printf 'f-%07d.json' "$FILES")" >/dev/null ||
		die "upload of file $FILES failed"
	# a memory sample
	if [ "$now" -ge "$NEXT_SAMPLE" ]; then
		pid=$(worker_pid)
		if [ -n "$pid" ]; then
			[ -z "$FIRST_PID" ] && FIRST_PID=$pid && CPU_START=$(cpu_ticks_of "$pid") && CPU_T0=$now
			case " $PIDS_SEEN " in *" $pid "*) ;; *) PIDS_SEEN="$PIDS_SEEN $pid" ;; esac
			read -r anon priv rss <<<"$(memory_of "$pid")"
			rows=$(q "SELECT count(*) FROM bronze_events")
			echo "$((now - START)),$FILES,$rows,$pid,${anon:-},${priv:-},${rss:-}" >>"$SAMPLES"
			say "t=$((now - START))s files=$FILES bronze=$rows worker=$pid anon=${anon:-?}kB private=${priv:-?}kB rss=${rss:-?}kB"
		fi
		NEXT_SAMPLE=$((now + SOAK_SAMPLE_SECONDS))
	fi
	sleep_for=$(awk -v s="$SOAK_INTERVAL" -v t0="$(date +%s.%N)" -v n="$now" 'BEGIN {d = n + s - t0; if (d < 0) d = 0; print d}')
	sleep "$sleep_for"
done
ELAPSED=$(($(date +%s) - START))

# ------------------------------------------------------------- the verdict
say "files stopped after ${ELAPSED}s; waiting for the pipeline to catch up"
ROWS=$((FILES * SOAK_RECORDS))
caught_up=0
for _ in $(seq 1 240); do
	ok=$(q "SELECT (SELECT count(*) FROM medallion.ingested_files WHERE pipeline_name = 'soak' AND status = 'ingested') = $FILES
	           AND (SELECT count(*) FROM silver_events) = $ROWS
	           AND (SELECT watermark FROM medallion.flows WHERE flow_name = 'public.gold_customers')
	               = (SELECT coalesce(max(_row_id), 0) FROM silver_events)
	           AND NOT EXISTS (TABLE gold_buckets EXCEPT $AGGREGATE_QUERY)
	           AND NOT EXISTS ($AGGREGATE_QUERY EXCEPT TABLE gold_buckets)" 2>/dev/null)
	[ "$ok" = t ] && { caught_up=1; break; }
	sleep 0.5
done
LAST_PID=$(worker_pid)
[ -n "$LAST_PID" ] && CPU_END=$(cpu_ticks_of "$LAST_PID")

missing=$(q "SELECT count(*) FROM generate_series(1, $FILES) n
             WHERE NOT EXISTS (SELECT FROM medallion.ingested_files i
                               WHERE i.pipeline_name = 'soak' AND i.status = 'ingested'
                                 AND i.path = 's3://landing/soak/' || pg_catalog.format('f-%s.json', lpad(n::text, 7, '0')))")
bronze_rows=$(q "SELECT count(*) FROM bronze_events")
bronze_dup=$(q "SELECT count(*) - count(DISTINCT data->>'event_id') FROM bronze_events")
silver_rows=$(q "SELECT count(*) FROM silver_events")
gold_rows=$(q "SELECT count(*) FROM gold_customers")
gold_current=$(q "SELECT count(*) FROM gold_customers_current")
aggregate_diff=$(q "SELECT (SELECT count(*) FROM (TABLE gold_buckets EXCEPT $AGGREGATE_QUERY) a)
                         + (SELECT count(*) FROM ($AGGREGATE_QUERY EXCEPT TABLE gold_buckets) b)")
feed_rows=$(q "SELECT count(*) FROM gold_customers__change_feed")
failures=$(q "SELECT count(*) FROM medallion.event_log WHERE pipeline_name = 'soak' AND event_type = 'error'")
retries=$(q "SELECT count(*) FROM medallion.event_log WHERE pipeline_name = 'soak' AND event_type = 'retry'")
faults=$(curl -sf "$ENDPOINT/__fault" | awk -F': ' '/"injected_total"/ {gsub(/,/, "", $2); print $2}')

# memory figures from the samples: column 5 anon, 6 private, 7 RSS (kB)
figures() {
	awk -F, -v c="$1" 'NR > 1 && $c != "" {n++; if (n == 1) f = $c; l = $c; if ($c > mx) mx = $c; if (mn == "" || $c < mn) mn = $c; v[n] = $c}
		END {h = v[int(n / 2) + 1]; print n + 0, f + 0, l + 0, mn + 0, mx + 0, l - f, l - h}' "$SAMPLES"
}
read -r n first last min max growth half_growth <<<"$(figures 5)"
read -r _ priv_first priv_last _ priv_max priv_growth _ <<<"$(figures 6)"
read -r _ rss_first rss_last _ rss_max rss_growth _ <<<"$(figures 7)"
cpu_pct=
if [ -n "${CPU_START:-}" ] && [ -n "${CPU_END:-}" ] && [ "$LAST_PID" = "$FIRST_PID" ]; then
	hz=$(getconf CLK_TCK)
	span=$(($(date +%s) - CPU_T0))
	cpu_pct=$(awk -v a="$CPU_START" -v b="$CPU_END" -v hz="$hz" -v s="$span" 'BEGIN {if (s > 0) printf "%.2f", 100 * (b - a) / hz / s}')
fi

echo
echo "=== soak figures"
echo "  duration:           ${ELAPSED}s of arrivals (SOAK_MINUTES=$SOAK_MINUTES), a file every ${SOAK_INTERVAL}s"
echo "  files:              $FILES uploaded, $missing missing from the ledger"
echo "  rows:               $ROWS expected; bronze $bronze_rows ($bronze_dup duplicated), silver $silver_rows, gold SCD2 versions $gold_rows ($gold_current current)"
echo "  gold aggregate:     $aggregate_diff rows differ from its query (by deltas; $feed_rows rows left in the change feed)"
echo "  caught up:          $([ $caught_up = 1 ] && echo yes || echo NO)"
echo "  error events:       $failures; retry events: $retries; faults injected: ${faults:-0}"
echo "  worker:             pids seen:${PIDS_SEEN:- none} (a restart would show two); CPU ${cpu_pct:-?}% of a core"
echo "  worker anon kB:     first $first, last $last, min $min, max $max, growth $growth (second half: $half_growth), $n samples"
echo "  worker private kB:  first $priv_first, last $priv_last, max $priv_max, growth $priv_growth (includes shared_buffers pages only it touched)"
echo "  worker RSS kB:      first $rss_first, last $rss_last, max $rss_max, growth $rss_growth"
echo "  samples:            $SAMPLES$([ "${SOAK_KEEP:-0}" = 1 ] || echo ' (removed; SOAK_KEEP=1 keeps it)')"

status=0
[ "$missing" = 0 ] || { echo "FAIL: $missing files missing"; status=1; }
[ "$bronze_rows" = "$ROWS" ] && [ "$bronze_dup" = 0 ] || { echo "FAIL: bronze has $bronze_rows rows ($bronze_dup duplicated), expected $ROWS"; status=1; }
[ "$caught_up" = 1 ] || { echo "FAIL: the pipeline did not catch up within 2 minutes"; status=1; }
[ "$aggregate_diff" = 0 ] || { echo "FAIL: the gold aggregate differs from its query in $aggregate_diff rows"; status=1; }
if [ -n "$SOAK_MAX_GROWTH_KB" ] && [ "$growth" -gt "$SOAK_MAX_GROWTH_KB" ]; then
	echo "FAIL: the worker's anonymous memory grew by ${growth} kB (limit $SOAK_MAX_GROWTH_KB)"
	status=1
fi
[ $status = 0 ] && echo "PASS: every file ingested exactly once through bronze, silver and gold"
exit $status
