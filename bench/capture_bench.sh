#!/bin/bash
# What a writer to a captured plain table pays (src/capture_trigger.c): the
# latency of single-row INSERT, UPDATE and DELETE statements and of a
# 10,000-row INSERT ... SELECT, on a table whose changes medallion captures
# and on an identical table without capture, in the same run, one client,
# prepared statements (pgbench -M prepared).  Each row is 4 columns
# (bigint key, text, numeric, timestamptz); both tables start with 100,000
# rows.  The rounds alternate between the two tables; each figure is the
# median of ROUNDS rounds.  The change log is not consumed meanwhile (it
# only grows, as between two updates of a flow reading the table).
#
# Usage: bench/capture_bench.sh            (ROUNDS=5, TX=5000 statements a round)
# Connects with the usual libpq variables (PGHOST, PGPORT, PGUSER); needs a
# server with medallion installed.  Creates and drops database capture_bench
# (KEEP=1 keeps it).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
TX=${TX:-5000}
BULK_TX=${BULK_TX:-20}
DB=capture_bench
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION medallion;
CREATE TABLE plain (id bigint PRIMARY KEY, label text, price numeric, changed timestamptz);
CREATE TABLE captured (LIKE plain INCLUDING ALL);
INSERT INTO plain SELECT g, 'label ' || g, g, now() FROM generate_series(1, 100000) g;
INSERT INTO captured SELECT * FROM plain;
CREATE SEQUENCE plain_insert START 1000001;
CREATE SEQUENCE captured_insert START 1000001;
CREATE SEQUENCE plain_delete;
CREATE SEQUENCE captured_delete;
CREATE TABLE raw (_row_id bigint GENERATED ALWAYS AS IDENTITY, data jsonb);
SELECT medallion.create_pipeline('capture_bench');
SELECT medallion.create_silver('capture_bench', 'reader', 'SELECT data FROM raw');
SELECT medallion._capture_ensure('captured',
	(SELECT flow_id FROM medallion.flow WHERE flow_name = 'public.reader'));
VACUUM ANALYZE;
SQL

# the statement of each measure, for table T
statement() {
	case $1 in
	insert) echo "INSERT INTO @T@ VALUES (nextval('@T@_insert'), 'new', 1, now());" ;;
	update) printf '%s\n' '\set id random(1, 100000)' "UPDATE @T@ SET price = price + 1, changed = now() WHERE id = :id;" ;;
	delete) echo "DELETE FROM @T@ WHERE id = (SELECT nextval('@T@_delete'));" ;;
	bulk) echo "INSERT INTO @T@ SELECT nextval('@T@_insert'), 'bulk', g, now() FROM generate_series(1, 10000) g;" ;;
	esac
}

# latency average (ms) of one pgbench run
latency() {
	local measure=$1 table=$2 tx=$3
	statement "$measure" | sed "s/@T@/$table/g" >"$WORK/$measure-$table.sql"
	pgbench -n -M prepared -c 1 -t "$tx" -f "$WORK/$measure-$table.sql" "$DB" 2>/dev/null |
		awk '/latency average/ { print $4 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-28s %12s %12s %8s\n' "statement" "plain ms" "captured ms" "ratio"
for measure in insert update delete bulk; do
	tx=$TX
	[ "$measure" = bulk ] && tx=$BULK_TX
	: >"$WORK/plain" && : >"$WORK/captured"
	for _ in $(seq "$ROUNDS"); do
		latency "$measure" plain "$tx" >>"$WORK/plain"
		latency "$measure" captured "$tx" >>"$WORK/captured"
	done
	p=$(median <"$WORK/plain")
	c=$(median <"$WORK/captured")
	case $measure in
	insert) label="INSERT, 1 row" ;;
	update) label="UPDATE, 1 row by key" ;;
	delete) label="DELETE, 1 row by key" ;;
	bulk) label="INSERT ... SELECT, 10k rows" ;;
	esac
	printf '%-28s %12.3f %12.3f %8.2f\n' "$label" "$p" "$c" "$(echo "$c / $p" | bc -l)"
done
psql -X -q -At -d "$DB" -c "SELECT 'log rows written: ' || count(*) FROM medallion_state.public__captured__changes"

[ "${KEEP:-0}" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE $DB"
