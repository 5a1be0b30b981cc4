#!/usr/bin/env bash
# All benchmarks, one after the other (`make bench`).  Each prints a table
# with ratios against the plain-SQL baseline measured in the same run.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for bench in "$ROOT"/bench/*_bench.sh; do
	echo "=== $(basename "$bench")"
	bash "$bench" || echo "$(basename "$bench") failed"
done
