#!/usr/bin/env bash
# Automatic failover of a continuous medallion pipeline, on one machine, with
# pg_auto_failover (Debian package postgresql-15-auto-failover, installed if
# missing): a monitor and two PostgreSQL 15 nodes that preload medallion, and
# the local S3 server. A continuous pipeline (bronze -> silver -> gold SCD2)
# runs on the primary; the script uploads files, stops the primary's node
# with --immediate in the middle of the uploads, lets the monitor promote the
# secondary by itself, uploads more, and shows that every record arrived
# exactly once, read through the formation's multi-host URI.
#
#   sudo bash scripts/failover-demo.sh       (root: bash scripts/failover-demo.sh)
#
# Everything it starts is stopped at the end (or on Ctrl-C). Environment:
# FAILOVER_WORK (default /tmp/medallion-failover), FAILOVER_PORT (first of
# three consecutive PostgreSQL ports, default 56200), FAILOVER_S3PORT (59201).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/local_env.sh"

WORK=${FAILOVER_WORK:-/tmp/medallion-failover}
PORT=${FAILOVER_PORT:-56200}
S3PORT=${FAILOVER_S3PORT:-59201}
FILES=20        # per wave; 10 records each
MONITOR="postgres://autoctl_node@127.0.0.1:$PORT/pg_auto_failover?sslmode=disable"

say() { printf '\n== %s\n' "$*"; }

# pg_autoctl as the cluster's OS user, with its configuration under WORK
autoctl() {
	local_env_as_user env PATH="$LOCAL_ENV_BIN:/usr/bin:/bin" \
		XDG_CONFIG_HOME="$WORK/config" XDG_DATA_HOME="$WORK/share" \
		XDG_RUNTIME_DIR="$WORK/run" pg_autoctl "$@"
}

stop_all() {
	for node in node2 node1 monitor; do
		[ -d "$WORK/$node" ] && autoctl stop --pgdata "$WORK/$node" >/dev/null 2>&1 || true
	done
	for node in node2 node1 monitor; do
		for _ in $(seq 1 100); do
			[ -f "$WORK/$node/postmaster.pid" ] || break
			sleep 0.1
		done
	done
	local_env_stop
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds
wait_for() {
	local limit=$1
	shift
	for _ in $(seq 1 $((limit * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "timed out waiting for: $*" >&2
	return 1
}

echo "medallion failover demo: installing dependencies and building..."
local_env_prepare
if ! command -v pg_autoctl >/dev/null; then
	local_env_root apt-get install -y postgresql-15-auto-failover >&2
fi
local_env_root rm -rf "$WORK"
local_env_root mkdir -p "$WORK/run"
local_env_root chown -R "$LOCAL_ENV_USER" "$WORK"
trap 'echo; stop_all; exit 130' INT TERM
trap stop_all EXIT
local_env_start_s3 "$WORK" "$S3PORT"

say "monitor on port $PORT (failure detection tuned to about two seconds)"
autoctl create monitor --pgdata "$WORK/monitor" --pgport "$PORT" --hostname 127.0.0.1 \
	--auth trust --no-ssl >"$WORK/monitor.log" 2>&1
cat >>"$WORK/monitor/postgresql.conf" <<EOF
pgautofailover.health_check_period = 500
pgautofailover.health_check_timeout = 500
pgautofailover.health_check_max_retries = 1
pgautofailover.health_check_retry_delay = 200
pgautofailover.node_considered_unhealthy_timeout = 2000
pgautofailover.primary_demote_timeout = 2000
EOF
autoctl run --pgdata "$WORK/monitor" >>"$WORK/monitor.log" 2>&1 &
wait_for 60 local_env_as_user "$LOCAL_ENV_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"

# A node: created by pg_autoctl, then given medallion's settings before it
# first runs (the secondary copies them with its base backup).
create_node() {
	local name=$1 port=$2
	autoctl create postgres --pgdata "$WORK/$name" --pgport "$port" --hostname 127.0.0.1 \
		--name "$name" --monitor "$MONITOR" --auth trust --no-ssl \
		--pgctl "$LOCAL_ENV_BIN/pg_ctl" >"$WORK/$name.log" 2>&1
	if ! grep -q medallion "$WORK/$name/postgresql.conf"; then
		cat >>"$WORK/$name/postgresql.conf" <<EOF
shared_preload_libraries = 'medallion'
medallion.launcher_naptime = '200ms'
max_worker_processes = 16
timezone = 'UTC'
EOF
	fi
	autoctl run --pgdata "$WORK/$name" >>"$WORK/$name.log" 2>&1 &
}

# state_is NODE STATE...: the node reports one of these states to the monitor
state_is() {
	local node=$1 reported
	shift
	reported=$(autoctl show state --pgdata "$WORK/monitor" 2>/dev/null |
		awk -v n="$node" '$1 == n { print $(NF - 2) }')
	for state in "$@"; do [ "$reported" = "$state" ] && return 0; done
	return 1
}

say "primary node1 on port $((PORT + 1))"
create_node node1 $((PORT + 1))
wait_for 60 state_is node1 single
say "secondary node2 on port $((PORT + 2)) (a base backup of node1)"
create_node node2 $((PORT + 2))
wait_for 120 state_is node2 secondary
autoctl show state --pgdata "$WORK/monitor"

URI=$(autoctl show uri --pgdata "$WORK/monitor" --formation default)
echo "formation URI: $URI"
export PGUSER=postgres
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$URI" -c "$1"; }
# count_is SQL VALUE: the query, through the formation URI, returns VALUE
count_is() { test "$(sql "$1")" = "$2"; }

say "a continuous pipeline bronze -> silver -> gold SCD2 on the primary"
psql -X -q -v ON_ERROR_STOP=1 -d "$URI" <<EOF >/dev/null
CREATE EXTENSION medallion;
SELECT medallion.create_secret('s3rver', 'S3RVER', 'S3RVER');
SELECT medallion.create_pipeline('events', 'continuous', '200 ms');
SELECT medallion.create_bronze('events', 'bronze_events', 's3://landing/events/',
    secret_name => 's3rver', endpoint => '$LOCAL_ENV_ENDPOINT',
    options => '{"max_files_per_batch": 2}');
SELECT medallion.create_silver('events', 'silver_events', \$q\$
    SELECT (data->>'id')::bigint AS id, (data->>'customer')::int AS customer,
           (data->>'seq')::bigint AS seq, (data->>'amount')::numeric AS amount
      FROM bronze_events\$q\$);
SELECT medallion.create_auto_cdc_flow('events', 'gold_customers', 'silver_events',
    keys => ARRAY['customer'], sequence_by => 'seq', stored_as_scd_type => 2);
EOF

FEED=$(mktemp -d)
upload_wave() {
	local wave=$1 f r id
	rm -f "$FEED"/*.json
	for f in $(seq 1 $FILES); do
		for r in $(seq 1 10); do
			id=$(((wave * FILES + f - 1) * 10 + r))
			printf '{"id": %d, "customer": %d, "seq": %d, "amount": %d.%02d}\n' \
				"$id" $((id % 7)) "$id" $((id % 500)) $((id % 100))
		done >"$FEED/w$wave-$(printf %04d "$f").json"
	done
	local_env_aws s3 cp "$FEED" s3://landing/events/ --recursive --only-show-errors
}

say "wave 1: $FILES files uploaded"
upload_wave 0
wait_for 60 count_is 'SELECT count(*) FROM bronze_events' $((FILES * 10))

say "wave 2 uploading; node1 (the primary) is stopped with --immediate meanwhile"
upload_wave 1 &
uploader=$!
sleep 0.5
stopped=$(date +%s.%N)
autoctl stop --pgdata "$WORK/node1" --immediate
wait $uploader
wait_for 120 state_is node2 wait_primary primary
promoted=$(date +%s.%N)
autoctl show state --pgdata "$WORK/monitor"
awk -v a="$promoted" -v b="$stopped" 'BEGIN { printf "node2 promoted by the monitor %.1f s after node1 stopped\n", a - b }'
echo "medallion on node2 while the monitor confirmed the promotion (read-only by default):"
grep -h "medallion worker" "$WORK"/node2/log/*.log | grep -E "waits|ERROR" | cut -d' ' -f2,5- | head -3 || true
echo "errors in node2's log since its promotion: $(cat "$WORK"/node2/log/*.log |
	awk '/received promote request/ { promoted = 1 } promoted && /ERROR: / { n++ } END { print n + 0 }')"

say "wave 3: $FILES more files, to the new primary"
upload_wave 2
rows=$((3 * FILES * 10))
wait_for 120 count_is 'SELECT count(*) FROM gold_customers' "$rows"
resumed=$(sql "SELECT round((extract(epoch FROM min(ts)) - $stopped)::numeric, 1) FROM medallion.event_log
                WHERE event_type = 'update_start' AND ts > to_timestamp($stopped)")
echo "first update on node2: ${resumed} s after node1 stopped"

say "every record exactly once, read through the formation URI (now node2)"
psql -X -q -d "$URI" -P pager=off <<EOF
SELECT inet_server_port() AS port, pg_is_in_recovery() AS in_recovery;
SELECT (SELECT count(*) FROM bronze_events) AS bronze_rows,
       (SELECT count(DISTINCT data->>'id') FROM bronze_events) AS distinct_ids,
       (SELECT count(*) FROM silver_events) AS silver_rows,
       (SELECT count(*) FROM gold_customers) AS gold_versions,
       (SELECT count(*) FROM medallion.ingested_files) AS objects,
       $rows AS expected;
SELECT pipeline_name, state, last_update_end, last_error FROM medallion.pipelines;
EOF
count_is "SELECT count(DISTINCT data->>'id') = count(*) AND count(*) = $rows FROM bronze_events" t
echo "failover demo: OK"
