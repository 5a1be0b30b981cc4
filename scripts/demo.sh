#!/usr/bin/env bash
# The main job of medallion, on one machine: a local PostgreSQL with
# medallion and a local S3-compatible server, the sample agribusiness order
# pipeline of examples/orders_pipeline.sql running in continuous mode, and a
# feeder that uploads a batch of realistic order events every few seconds
# (new orders, status changes, late and duplicate events, invalid records,
# lines cut short, odd values the warn expectations count, and from the
# fourth batch on a new field, "discount"), with the customer events of the
# customers they name (creations, region moves, renames) under customers/.
# After each batch the screen
# (80x24, or the terminal's size) shows how long the batch took from the end
# of its upload to the end of the update that brought it into every gold
# table, every bronze row accounted for as an equation (bronze = silver +
# deduplicated + quarantined + rescued; examples/dashboard.sql), the
# expectations, the customers and the join view gold.revenue_by_region
# (orders x customers, maintained by deltas), and the newest days of
# gold.daily_sales.
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

echo "medallion demo: installing what it needs and building (the first run: minutes)"
local_env_prepare
local_env_root rm -rf "$WORK"
local_env_start "$WORK" "$PGPORT" "$S3PORT" medallion.launcher_naptime=200ms
trap 'echo; echo "stopping..."; local_env_stop; echo "stopped: PostgreSQL and the S3 server are down."; exit 0' INT TERM
trap local_env_stop EXIT

local_env_example >/dev/null

FEED=$(mktemp -d)

# The screen: the terminal's size when there is one, else 80x24.
screen_size() {
	COLS=80
	ROWS=24
	if [ -t 1 ]; then
		COLS=$(tput cols 2>/dev/null || echo 80)
		ROWS=$(tput lines 2>/dev/null || echo 24)
	fi
	[ "$COLS" -ge 40 ] || COLS=40
	[ "$ROWS" -ge 18 ] || ROWS=18
}

# Add lines (cut to the screen's width) to the screen being built.
SCREEN=()
add() {
	local line
	while IFS= read -r line; do SCREEN+=("${line:0:$COLS}"); done <<< "$1"
}

# One screen after a batch: the figures of examples/dashboard.sql as an
# equation, the expectations, and the newest days of gold.daily_sales in the
# lines left.
show() {
	local batch=$1 latency=$2 eq1 eq2 verdict total days example cell
	local bronze silver dedup quarantined rescued pending versions current ndays state
	screen_size
	SCREEN=()
	IFS='|' read -r bronze silver dedup quarantined rescued pending versions current ndays state \
		< <(local_env_psql -At -F '|' -f "$ROOT/examples/dashboard.sql")
	total=$((silver + dedup + quarantined + rescued + pending))
	if [ "$total" -eq "$bronze" ]; then verdict="it adds up"; else verdict="OFF BY $((bronze - total))"; fi
	eq1="bronze $bronze = silver $silver + deduplicated $dedup"
	eq2="+ quarantined $quarantined + rescued $rescued"
	[ "$pending" -gt 0 ] && eq2="$eq2 + not yet in silver $pending"

	add "medallion demo, batch $batch: $EVENTS order events uploaded to s3://landing/orders/"
	add "upload -> visible in every gold table: $latency   (pipeline orders: $state)"
	add ""
	add "Every bronze row accounted for, $verdict:"
	if [ $((${#eq1} + ${#eq2} + 1)) -le "$COLS" ]; then
		add "$eq1 $eq2"
	else
		add "$eq1"
		add "       $eq2"
	fi
	example=$(local_env_psql -At -c "SELECT left(_rescued_data, 80) FROM bronze.order_events
		 WHERE data IS NULL ORDER BY _row_id DESC LIMIT 1")
	add "(deduplicated: event_id seen before; quarantined: failed a drop expectation;"
	add " rescued: not JSON, kept in bronze._rescued_data, e.g. ${example:-(none yet)})"
	add "gold.order_history: $versions order versions, $current current orders"
	regions
	add ""
	cell=$(printf '%-18s %-7s %8s' expectation 'on fail' failed)
	add "$cell    $cell"
	add "$(local_env_psql -At -F '|' -c "
		SELECT expectation_name, on_violation, failed_records
		  FROM medallion.expectation_metrics WHERE flow_name = 'silver.order_events'
		 ORDER BY on_violation <> 'drop', on_violation <> 'warn', expectation_name" |
		awk -F'|' '{ cell[NR] = sprintf("%-18s %-7s %8s", $1, ($2 == "warn" ? "warn*" : $2), $3) }
			END { half = int((NR + 1) / 2)
			      for (i = 1; i <= half; i++)
			          print cell[i] (i + half <= NR ? "    " cell[i + half] : "") }')"
	add "(* warn: the row is kept in silver, and counted)"
	add ""
	# the lines left (the last line of the screen stays empty): a title, a
	# header, the rows, a blank line and the psql hint
	days=$((ROWS - 1 - ${#SCREEN[@]} - 4))
	[ "$days" -ge 1 ] || days=1
	add "gold.daily_sales, the newest days ($((days < ndays ? days : ndays)) of $ndays):"
	add " order_date |      revenue | quantity | orders"
	add "$(local_env_psql -At -F '|' -c "
		SELECT order_date, round(revenue, 2), quantity, orders
		  FROM gold.daily_sales ORDER BY order_date DESC LIMIT $days" |
		awk -F'|' '{ printf " %s | %12s | %8s | %6s\n", $1, $2, $3, $4 }')"
	add ""
	add "Look around: psql -h 127.0.0.1 -p $PGPORT -U postgres   (Ctrl-C stops everything)"

	clear 2>/dev/null || true
	printf '%s\n' "${SCREEN[@]}"
}

# Two lines on the customers and the join view: how many customers and
# changes (moves, renames) gold.customers took in, how the view is kept (its
# definition's maintenance), and its revenue per region, largest first.
regions() {
	local customers changes maintenance revenue
	IFS='|' read -r customers changes maintenance < <(local_env_psql -At -F '|' -c "
		SELECT (SELECT count(*) FROM gold.customers),
		       (SELECT count(*) - count(DISTINCT customer_id) FROM silver.customers),
		       (SELECT CASE definition->>'maintenance' WHEN 'incremental' THEN 'by deltas'
		               ELSE 'recomputed in full' END
		          FROM medallion.flows WHERE flow_name = 'gold.revenue_by_region')")
	revenue=$(local_env_psql -At -c "
		SELECT string_agg(region || ' ' || round(revenue / 1e6, 2) || 'M', '  '
		                  ORDER BY revenue DESC, region)
		  FROM gold.revenue_by_region")
	add "gold.customers: $customers ($changes moves or renames). gold.revenue_by_region, $maintenance:"
	add " ${revenue:-(no rows yet)}"
}

# PUT one object into bucket landing, signed with SigV4 by curl, which
# returns as soon as S3 has stored the object: the time taken after it is the
# end of the upload. (The AWS CLI needs half a second more to exit, during
# which the pipeline may well have taken the file to gold already.)
put_object() {
	curl -sS -f -o /dev/null --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -T "$1" "$LOCAL_ENV_ENDPOINT/landing/$2"
}

batch=0
order=1
sequence=0
while [ "$BATCHES" -eq 0 ] || [ "$batch" -lt "$BATCHES" ]; do
	batch=$((batch + 1))
	name=batch-$(printf %06d "$batch")-
	discount=0
	[ "$batch" -ge 4 ] && discount=0.3
	start=$(date -u -d "2026-09-01 +$((batch * 4)) hours" +%Y-%m-%dT%H:%M:%S+00:00)
	rm -f "$FEED"/*.json "$FEED"/customers/*.json
	python3 "$ROOT/bench/generate_orders.py" --events "$EVENTS" --files 1 --out "$FEED" \
		--prefix "$name" --seed "$batch" --first-order "$order" \
		--first-sequence "$sequence" --start "$start" --late-rate 0.05 \
		--duplicate-rate 0.03 --invalid-rate 0.02 --rescued-rate 0.02 --odd-rate 0.03 \
		--discount-rate "$discount" --customers-out "$FEED/customers" \
		--customer-prefix "$name" >/dev/null
	order=$((order + EVENTS / 2))
	sequence=$((sequence + EVENTS))
	files=0
	for file in "$FEED"/customers/*.json; do
		put_object "$file" "customers/$(basename "$file")"
		files=$((files + 1))
	done
	for file in "$FEED"/*.json; do
		put_object "$file" "orders/$(basename "$file")"
		files=$((files + 1))
	done
	uploaded=$(date +%s.%N)
	# the end of the update that ingested the last of the batch's files (of
	# orders and of customers): their rows are then in silver and in every
	# gold table (the aggregates and views are its last flows)
	latency="(not within 10 s)"
	for _ in $(seq 1 100); do
		ended=$(local_env_psql -At -c "SELECT extract(epoch FROM e.ts)
		    FROM medallion.event_log e
		   WHERE e.pipeline_name = 'orders' AND e.event_type = 'update_end'
		     AND e.ts >= (SELECT max(f.ingested_at) FROM medallion.ingested_files f
		                   WHERE f.path LIKE '%/$name%' HAVING count(*) = $files)
		   ORDER BY e.id LIMIT 1")
		if [ -n "$ended" ]; then
			latency=$(awk -v a="$ended" -v b="$uploaded" 'BEGIN { printf "%.2f s", a - b }')
			break
		fi
		sleep 0.1
	done
	show "$batch" "$latency"
	sleep "$INTERVAL"
done
