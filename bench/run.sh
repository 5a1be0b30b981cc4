#!/usr/bin/env bash
# All benchmarks, one after the other (`make bench`).  Each prints a table
# with ratios against the plain-SQL baseline measured in the same run.
# Benchmarks that need S3 or special settings start their own cluster; the
# others (silver, AUTO CDC, aggregates) connect with the libpq variables,
# which point at a local cluster this script starts unless PGPORT is set.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PGPORT:-}" ]; then
	. "$ROOT/scripts/local_env.sh"
	local_env_prepare
	rm -rf /tmp/medallion-bench-sql
	local_env_start /tmp/medallion-bench-sql 55436 59004 || exit 1
	export PGHOST=127.0.0.1 PGPORT=55436 PGUSER=postgres
	# the benchmarks that start their own cluster install nothing again
	export MEDALLION_SKIP_PREPARE=1
fi
for bench in "$ROOT"/bench/*_bench.sh; do
	echo "=== $(basename "$bench")"
	bash "$bench" || echo "$(basename "$bench") failed"
done
