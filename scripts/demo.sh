#!/usr/bin/env bash
# The main job of medallion, on one machine: a local PostgreSQL with
# medallion and a local S3-compatible server, the sample agribusiness order
# pipeline of examples/orders_pipeline.sql running in continuous mode, and a
# feeder that uploads a batch of realistic order events every few seconds
# (new orders, status changes, late and duplicate events, a few invalid
# records, and from the fourth batch on a new field, "discount"). The screen
# shows the gold tables and the pipeline's progress as data arrives.
#
#   sudo bash scripts/demo.sh            (root: bash scripts/demo.sh)
#
# Ctrl-C stops the feeder, PostgreSQL and the S3 server; nothing is left
# running. Environment: DEMO_INTERVAL (seconds between batches, default 3),
# DEMO_BATCHES (stop after this many, default 0 = until Ctrl-C),
# DEMO_EVENTS (events per batch, default 300), DEMO_WORK (default
# /tmp/medallion-demo), DEMO_PGPORT (55433), DEMO_S3PORT (59001).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/local_env.sh"

INTERVAL=${DEMO_INTERVAL:-3}
BATCHES=${DEMO_BATCHES:-0}
EVENTS=${DEMO_EVENTS:-300}
WORK=${DEMO_WORK:-/tmp/medallion-demo}
PGPORT=${DEMO_PGPORT:-55433}
S3PORT=${DEMO_S3PORT:-59001}

echo "medallion demo: installing dependencies and building (the first run takes a few minutes)..."
local_env_prepare
local_env_root rm -rf "$WORK"
local_env_start "$WORK" "$PGPORT" "$S3PORT" medallion.launcher_naptime=200ms
trap 'echo; echo "stopping..."; local_env_stop; echo "stopped: PostgreSQL and the S3 server are down."; exit 0' INT TERM
trap local_env_stop EXIT

local_env_example >/dev/null

FEED=$(mktemp -d)
batch=0
order=1
sequence=0
while [ "$BATCHES" -eq 0 ] || [ "$batch" -lt "$BATCHES" ]; do
	batch=$((batch + 1))
	discount=0
	[ "$batch" -ge 4 ] && discount=0.3
	start=$(date -u -d "2026-09-01 +$((batch * 4)) hours" +%Y-%m-%dT%H:%M:%S+00:00)
	rm -f "$FEED"/*.json
	python3 "$ROOT/bench/generate_orders.py" --events "$EVENTS" --files 1 --out "$FEED" \
		--prefix "batch-$(printf %06d "$batch")-" --seed "$batch" --first-order "$order" \
		--first-sequence "$sequence" --start "$start" --late-rate 0.05 \
		--duplicate-rate 0.03 --invalid-rate 0.02 --discount-rate "$discount" >/dev/null
	order=$((order + EVENTS / 2))
	sequence=$((sequence + EVENTS))
	for file in "$FEED"/*.json; do
		local_env_aws s3 cp "$file" "s3://landing/orders/$(basename "$file")" --only-show-errors
	done
	uploaded=$(date +%s.%N)
	# wait (briefly) for the batch to reach the end of the pipeline
	for _ in $(seq 1 50); do
		done_count=$(local_env_psql -At -c "SELECT count(*) FROM medallion.ingested_files WHERE path LIKE '%batch-$(printf %06d "$batch")-%'")
		[ "$done_count" -gt 0 ] && break
		sleep 0.1
	done
	seen=$(date +%s.%N)
	clear 2>/dev/null || true
	echo "medallion demo — batch $batch: $EVENTS order events uploaded to s3://landing/orders/"
	awk -v a="$seen" -v b="$uploaded" \
		'BEGIN { printf "upload finished -> ingested by the continuous pipeline in %.2f s\n", a - b }'
	local_env_psql -P pager=off -f "$ROOT/examples/dashboard.sql"
	echo
	echo "Look around:  psql -h 127.0.0.1 -p $PGPORT -U postgres     (Ctrl-C here stops everything)"
	sleep "$INTERVAL"
done
