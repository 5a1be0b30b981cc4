#!/usr/bin/env bash
# The one test command (`make test`, .ci/run): installs what is missing,
# builds and installs medallion, runs the pg_regress suite, the isolation
# specs and the TAP tests, and ends with exactly one line `N passed, N failed`.
#
#   test/run-all.sh                    everything
#   test/run-all.sh --regress-only     pg_regress only (test/sql/*.sql)
#   test/run-all.sh --isolation-only   isolation specs only (test/specs/*.spec)
#   test/run-all.sh --tap-only         TAP only (test/t/*.pl)
#   test/run-all.sh t/010_bronze.pl    TAP files whose path contains the
#                                      argument (several may be given)
#   test/run-all.sh bronze_ingest      one pg_regress test (test/sql/NAME.sql)
#   test/run-all.sh cdc_apply_writers  one isolation spec (test/specs/NAME.spec)
#
# Environment:
#   MEDALLION_SKIP_INSTALL=1   skip scripts/install-deps.sh (fast inner loop)
#   MEDALLION_SKIP_BUILD=1     skip make / make install (uses what is installed)
#   MEDALLION_TEST_USER=name   unprivileged user when run as root (default postgres)
#   MEDALLION_KEEP_WORKDIR=1   keep the scratch copy (its path is printed)
#   PROVE_FLAGS=...            extra flags for prove
#   MEDALLION_PG_COPY=dir      install into, and test with, a private copy of
#                              PostgreSQL 15 in dir (made on first use) rather
#                              than the system one, so that several checkouts
#                              test at once without sharing medallion.so
#
# Counting: each pg_regress test and each isolation spec is one test; each
# top-level TAP `ok` /
# `not ok` line is one test (skips and TODOs count as passed); a TAP file
# that fails without a `not ok` (died, bad plan) counts one failure; a failed
# build counts one failure. Exit status: 0 only if nothing failed and
# something ran.
#
# How it runs: PostgreSQL refuses to run as root, so the tree is copied
# (without .git) to a scratch dir /tmp/medallion-test.XXXXXX owned by the
# unprivileged user (root: $MEDALLION_TEST_USER, created if missing; anyone
# else: themselves), built there as that user (`make`; any compiler warning
# fails the build), installed as root (`make install`, via sudo for a normal
# user), then tested as that user:
#   - pg_regress: PGXS `make installcheck` does not start a server of its own,
#     so we pass EXTRA_REGRESS_OPTS=--temp-instance=./tmp_check: pg_regress
#     then runs initdb + a temp postmaster with REGRESS_OPTS' --temp-config
#     (test/medallion.conf, which preloads medallion). ENCODING=UTF8 and
#     NO_LOCALE=1 make the instance identical on every machine.
#   - isolation specs: the same, with ISOLATION instead of REGRESS (PGXS runs
#     pg_isolation_regress: a temp instance in ./tmp_check_iso with
#     test/medallion.conf, specs from test/specs/, expected outputs from the
#     top-level expected/, results and diffs in ./output_iso/).
#   - TAP: prove -I <pgxs>/src/test/perl -I test/perl, from the top of the
#     scratch tree, with the environment PGXS's prove_installcheck sets up
#     (TESTDIR, PATH with the server binaries, PG_REGRESS) plus
#     MEDALLION_NODE, MEDALLION_ROOT and LANG=C.UTF-8. Logs of a TAP file go
#     to test/tmp_check/log/ (regress_log_<file>, <file>_<node>.log, <file>_s3_<n>.log).
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BINDIR=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BINDIR/pg_config
PGXS_DIR=/usr/lib/postgresql/15/lib/pgxs
PG_REGRESS=$PGXS_DIR/src/test/regress/pg_regress
# The PostgreSQL that tests run: the system's, or a private copy of it
# (PostgreSQL finds its lib and share directories relative to its binaries,
# so a copy of the two trees runs as is; medallion goes in with DESTDIR).
RUN_BINDIR=$PG_BINDIR
INSTALL_DESTDIR=
if [ -n "${MEDALLION_PG_COPY:-}" ]; then
	INSTALL_DESTDIR=$MEDALLION_PG_COPY
	RUN_BINDIR=$MEDALLION_PG_COPY$PG_BINDIR
	if [ ! -x "$RUN_BINDIR/postgres" ]; then
		mkdir -p "$MEDALLION_PG_COPY/usr/lib/postgresql" "$MEDALLION_PG_COPY/usr/share/postgresql"
		cp -a /usr/lib/postgresql/15 "$MEDALLION_PG_COPY/usr/lib/postgresql/"
		cp -a /usr/share/postgresql/15 "$MEDALLION_PG_COPY/usr/share/postgresql/"
	fi
	chmod 755 "$MEDALLION_PG_COPY"
fi
SYS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf '%s\n' "$*"; }
section() { printf '\n=== %s\n' "$*"; }
now() { date +%s; }

PASSED=0
FAILED=0
SUMMARY=()
WORK=

finish() {
	local rc=0
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "${MEDALLION_KEEP_WORKDIR:-0}" = 1 ]; then
			say "scratch tree kept: $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	section "summary"
	for line in "${SUMMARY[@]}"; do say "  $line"; done
	if [ "$FAILED" -gt 0 ] || [ $((PASSED + FAILED)) -eq 0 ]; then
		rc=1
		[ $((PASSED + FAILED)) -eq 0 ] && say "  no test ran"
	fi
	say "$PASSED passed, $FAILED failed"
	exit $rc
}
trap 'FAILED=$((FAILED + 1)); SUMMARY+=("interrupted"); finish' INT TERM

# ---------------------------------------------------------------- arguments
RUN_REGRESS=1
RUN_ISOLATION=1
RUN_TAP=1
REGRESS_PICK=()
ISOLATION_PICK=()
TAP_PATTERNS=()
for arg in "$@"; do
	case "$arg" in
	--regress-only) RUN_TAP=0; RUN_ISOLATION=0 ;;
	--isolation-only) RUN_TAP=0; RUN_REGRESS=0 ;;
	--tap-only) RUN_REGRESS=0; RUN_ISOLATION=0 ;;
	-h | --help)
		sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	-*)
		say "unknown option: $arg (see --help)"
		exit 2
		;;
	*)
		name=${arg#test/}
		name=${name#sql/}
		name=${name%.sql}
		spec=${arg#test/}
		spec=${spec#specs/}
		spec=${spec%.spec}
		if [ -f "$SRC/test/sql/$name.sql" ]; then
			REGRESS_PICK+=("$name")
		elif [ -f "$SRC/test/specs/$spec.spec" ]; then
			ISOLATION_PICK+=("$spec")
		else
			TAP_PATTERNS+=("${arg#test/}")
		fi
		;;
	esac
done
if [ ${#REGRESS_PICK[@]} -gt 0 ] || [ ${#ISOLATION_PICK[@]} -gt 0 ] ||
	[ ${#TAP_PATTERNS[@]} -gt 0 ]; then
	[ ${#REGRESS_PICK[@]} -gt 0 ] || RUN_REGRESS=0
	[ ${#ISOLATION_PICK[@]} -gt 0 ] || RUN_ISOLATION=0
	[ ${#TAP_PATTERNS[@]} -gt 0 ] || RUN_TAP=0
fi

# Selected tests, as paths relative to the top of the tree.
# suite_tests DIR EXT PICKED...: the picked names, or else every DIR/*.EXT
suite_tests() {
	local dir=$1 ext=$2 f
	shift 2
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@"
		return
	fi
	for f in "$SRC/$dir"/*."$ext"; do
		[ -e "$f" ] && basename "$f" ".$ext"
	done
}
REGRESS_TESTS=()
ISOLATION_TESTS=()
[ "$RUN_REGRESS" = 1 ] &&
	mapfile -t REGRESS_TESTS < <(suite_tests test/sql sql "${REGRESS_PICK[@]}")
[ "$RUN_ISOLATION" = 1 ] &&
	mapfile -t ISOLATION_TESTS < <(suite_tests test/specs spec "${ISOLATION_PICK[@]}")
TAP_FILES=()
if [ "$RUN_TAP" = 1 ]; then
	for f in "$SRC"/test/t/*.pl; do
		[ -e "$f" ] || continue
		rel=t/$(basename "$f")
		if [ ${#TAP_PATTERNS[@]} -eq 0 ]; then
			TAP_FILES+=("$rel")
		else
			for p in "${TAP_PATTERNS[@]}"; do
				# shellcheck disable=SC2053
				if [[ "$rel" == *"$p"* ]] || [[ "$rel" == $p ]]; then
					TAP_FILES+=("$rel")
					break
				fi
			done
		fi
	done
	if [ ${#TAP_PATTERNS[@]} -gt 0 ] && [ ${#TAP_FILES[@]} -eq 0 ]; then
		say "no test matches: ${TAP_PATTERNS[*]}"
		FAILED=$((FAILED + 1))
		SUMMARY+=("selection: nothing matches ${TAP_PATTERNS[*]}")
		finish
	fi
fi

# ------------------------------------------------------------------- setup
START=$(now)
if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
	TEST_USER=${MEDALLION_TEST_USER:-postgres}
else
	SUDO=(sudo)
	TEST_USER=$(id -un)
fi

if [ "${MEDALLION_SKIP_INSTALL:-0}" != 1 ]; then
	section "dependencies (scripts/install-deps.sh)"
	if ! bash "$SRC/scripts/install-deps.sh" 2>&1; then
		FAILED=$((FAILED + 1))
		SUMMARY+=("dependencies: FAILED")
		finish
	fi
fi
if [ "$(id -u)" -eq 0 ]; then
	bash "$SRC/scripts/install-deps.sh" --ensure-user "$TEST_USER" || {
		FAILED=$((FAILED + 1)); SUMMARY+=("test user $TEST_USER: FAILED"); finish; }
fi
MEDALLION_NODE=$(bash "$SRC/scripts/install-deps.sh" --print-node)
if [ -z "$MEDALLION_NODE" ] && [ ${#TAP_FILES[@]} -gt 0 ]; then
	say "warning: no Node.js >= 20 (run scripts/install-deps.sh); S3 tests will fail"
fi
if [ ! -d "$SRC/test/s3/node_modules/@20minutes/s3rver" ] && [ ${#TAP_FILES[@]} -gt 0 ]; then
	say "warning: test/s3/node_modules missing (run scripts/install-deps.sh); S3 tests will fail"
fi

# Scratch copy owned by the test user.
WORK=$(mktemp -d /tmp/medallion-test.XXXXXX) || { say "mktemp failed"; exit 1; }
chmod 755 "$WORK"
tar -C "$SRC" -cf - \
	--exclude=./.git --exclude='./tmp_check*' --exclude=./results \
	--exclude=./log --exclude=./regression.diffs --exclude=./regression.out --exclude=./output_iso \
	--exclude=./test/tmp_check --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude=./.work --exclude=./bench/data . | tar -C "$WORK" -xf -
if [ "$(id -u)" -eq 0 ]; then
	chown -R "$TEST_USER": "$WORK"
fi
say "scratch tree: $WORK (user $TEST_USER)"

# Run a command as the test user in $WORK with a clean, fixed environment.
TEST_HOME=$(getent passwd "$TEST_USER" | cut -d: -f6)
CHILD_ENV=(
	HOME="${TEST_HOME:-$WORK}" USER="$TEST_USER" LOGNAME="$TEST_USER"
	LANG=C.UTF-8 TZ=UTC
	PATH="$RUN_BINDIR:$SYS_PATH"
	PG_CONFIG="$PG_CONFIG"
	MEDALLION_NODE="$MEDALLION_NODE" MEDALLION_ROOT="$WORK"
)
[ -n "${CI:-}" ] && CHILD_ENV+=(CI="$CI")
# the property tests' knobs (another seed, more rounds), for runs by hand
for name in ${!MEDALLION_PROPERTY_@}; do CHILD_ENV+=("$name=${!name}"); done
as_test_user() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd "$WORK" && runuser -u "$TEST_USER" -- env -i "${CHILD_ENV[@]}" "$@")
	else
		(cd "$WORK" && env -i "${CHILD_ENV[@]}" "$@")
	fi
}

# ------------------------------------------------------------------- build
NEED_BUILD=0
[ ${#REGRESS_TESTS[@]} -gt 0 ] && NEED_BUILD=1
[ ${#ISOLATION_TESTS[@]} -gt 0 ] && NEED_BUILD=1
for f in "${TAP_FILES[@]}"; do [ "$f" != t/000_harness.pl ] && NEED_BUILD=1; done
if [ "${MEDALLION_SKIP_BUILD:-0}" = 1 ]; then
	NEED_BUILD=0
fi
if [ "$NEED_BUILD" = 1 ]; then
	section "build (make, make install)"
	t0=$(now)
	BUILD_LOG=$WORK/build.log
	as_test_user make -j"$(nproc)" PG_CONFIG="$PG_CONFIG" >"$BUILD_LOG" 2>&1
	rc=$?
	warnings=$(grep -c 'warning:' "$BUILD_LOG")
	if [ $rc -ne 0 ] || [ "$warnings" -ne 0 ]; then
		# the diagnostics, without the long compiler command lines
		grep -Ev '^(gcc|cc|/usr/bin/clang[-0-9]*|clang[-0-9]*|cat|echo|/bin/mkdir|/usr/bin/install) ' \
			"$BUILD_LOG"
		say "build FAILED (make exit $rc, $warnings warning lines; warnings count as failures)"
		FAILED=$((FAILED + 1))
		SUMMARY+=("build: FAILED (exit $rc, $warnings warnings)")
		finish
	fi
	if ! (cd "$WORK" && "${SUDO[@]}" make install PG_CONFIG="$PG_CONFIG" ${INSTALL_DESTDIR:+DESTDIR="$INSTALL_DESTDIR"} >>"$BUILD_LOG" 2>&1); then
		cat "$BUILD_LOG"
		say "make install FAILED"
		FAILED=$((FAILED + 1))
		SUMMARY+=("install: FAILED")
		finish
	fi
	say "build: ok, 0 warnings, installed into $INSTALL_DESTDIR$("$PG_CONFIG" --pkglibdir) ($(($(now) - t0)) s)"
fi

# ------------------------------------------------- pg_regress and isolation
# One PGXS `make installcheck` suite against a temp instance, counted one
# test per test:
#   run_suite LABEL KIND OUTDIR TEMP_INSTANCE TEST...
# KIND is REGRESS or ISOLATION (the make variable naming the tests; the
# other one is emptied); OUTDIR, relative to the scratch tree, is where the
# suite writes results/, regression.diffs and the server log (log/).
run_suite() {
	local label=$1 kind=$2 outdir=$3 instance=$4
	shift 4
	local tests=("$@") t rc ok bad other=REGRESS
	local log=$WORK/${kind,,}.log out=$WORK/${outdir#./}
	local pmlog=$out/log/postmaster.log crash='PANIC|terminated by signal|exited with exit code|TRAP:'
	[ "$kind" = REGRESS ] && other=ISOLATION
	section "$label: ${#tests[@]} tests (temp instance, test/medallion.conf)"
	t0=$(now)
	# pg_regress aborts the whole run when a test has no expected file; give
	# such a test an empty one in the scratch tree so it just fails, and its
	# whole output shows up in regression.diffs.
	for t in "${tests[@]}"; do
		if ! compgen -G "$WORK/expected/${t}.out" >/dev/null &&
			! compgen -G "$WORK/expected/${t}_[0-9].out" >/dev/null &&
			! compgen -G "$WORK/test/expected/${t}.out" >/dev/null; then
			say "note: expected/$t.out is missing: $t will fail, its output is in the diff" \
				"(MEDALLION_KEEP_WORKDIR=1 keeps ${outdir#./}/results/$t.out)"
			as_test_user touch "$WORK/expected/$t.out"
		fi
	done
	as_test_user make installcheck PG_CONFIG="$PG_CONFIG" bindir="$RUN_BINDIR" TAP_TESTS= "$other=" \
		EXTRA_REGRESS_OPTS="--temp-instance=$instance" ENCODING=UTF8 NO_LOCALE=1 \
		"$kind=${tests[*]}" >"$log" 2>&1
	rc=$?
	# progress: one line per test, then pg_regress's own verdict
	grep -E '^(test |     [^ ])|^ (All [0-9]+ tests|[0-9]+ of [0-9]+ tests)' "$log" || true
	ok=$(grep -cE '^(test | +)[^ ].* \.\.\. ok ' "$log")
	bad=$((${#tests[@]} - ok))
	[ "$bad" -lt 0 ] && bad=0
	[ $rc -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + bad))
	if [ "$bad" -gt 0 ]; then
		if [ -s "$out/regression.diffs" ]; then
			say "--- ${outdir#./}/regression.diffs"
			cat "$out/regression.diffs"
			if [ -f "$pmlog" ] && grep -qE "$crash" "$pmlog"; then
				say "--- crashes in the temp instance's log (${pmlog#"$WORK"/})"
				grep -E -B2 -A8 "$crash" "$pmlog" | head -n 120
			fi
		else
			say "--- $label output"
			cat "$log"
			if [ -f "$pmlog" ]; then
				say "--- tail of the temp instance's log (${pmlog#"$WORK"/})"
				tail -n 60 "$pmlog"
			fi
		fi
	fi
	SUMMARY+=("$label: $ok passed, $bad failed ($(($(now) - t0)) s)")
}
# pg_regress writes into the top of the tree; PGXS gives pg_isolation_regress
# --outputdir=output_iso (see the Makefile)
[ ${#REGRESS_TESTS[@]} -gt 0 ] &&
	run_suite pg_regress REGRESS . ./tmp_check "${REGRESS_TESTS[@]}"
[ ${#ISOLATION_TESTS[@]} -gt 0 ] &&
	run_suite isolation ISOLATION ./output_iso ./tmp_check_iso "${ISOLATION_TESTS[@]}"

# --------------------------------------------------------------------- TAP
if [ ${#TAP_FILES[@]} -gt 0 ]; then
	section "TAP: ${#TAP_FILES[@]} files"
	as_test_user mkdir -p "$WORK/test/tmp_check"
	for rel in "${TAP_FILES[@]}"; do
		t0=$(now)
		name=$(basename "$rel" .pl)
		out=$WORK/test/tmp_check/prove_$name.out
		# shellcheck disable=SC2086
		as_test_user env TESTDIR="$WORK/test" PG_REGRESS="$PG_REGRESS" \
			with_ssl=openssl with_gssapi=no with_icu=yes with_readline=yes \
			prove -v -I "$PGXS_DIR/src/test/perl" -I test/perl ${PROVE_FLAGS:-} \
			"test/$rel" >"$out" 2>&1
		rc=$?
		# Top-level, numbered TAP lines only (prove -v adds a bare "ok").
		ok=$(grep -cE '^ok [0-9]+' "$out")
		todo_notok=$(grep -cE '^not ok [0-9]+.*# *TODO' "$out")
		notok=$(($(grep -cE '^not ok [0-9]+' "$out") - todo_notok))
		ok=$((ok + todo_notok))
		skipped=$(grep -ciE '^ok [0-9]+.*# *skip' "$out")
		extra=
		if [ $rc -ne 0 ] && [ "$notok" -eq 0 ]; then
			notok=1
			extra=" + exited $rc"
		fi
		PASSED=$((PASSED + ok))
		FAILED=$((FAILED + notok))
		line="$rel: $ok passed, $notok failed$extra"
		[ "$skipped" -gt 0 ] && line="$line ($skipped skipped)"
		line="$line ($(($(now) - t0)) s)"
		say "$line"
		SUMMARY+=("$line")
		if [ $rc -ne 0 ] || [ "$notok" -gt 0 ]; then
			say "--- prove output: $rel"
			cat "$out"
			logdir=$WORK/test/tmp_check/log
			if [ -f "$logdir/regress_log_$name" ]; then
				say "--- tail of $logdir/regress_log_$name"
				tail -n 80 "$logdir/regress_log_$name"
			fi
			for f in "$logdir/${name}"_*.log; do
				[ -f "$f" ] || continue
				say "--- tail of $(basename "$f")"
				tail -n 40 "$f"
			done
		fi
	done
fi

SUMMARY+=("total time: $(($(now) - START)) s")
finish
