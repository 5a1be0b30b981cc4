#!/usr/bin/env bash
# Shared by the demo (scripts/demo.sh) and the benchmarks (bench/run.sh):
# build and install medallion, then start a throwaway PostgreSQL 15 cluster
# with medallion preloaded and a local S3-compatible server (s3rver, which
# verifies SigV4), both bound to 127.0.0.1, and stop them again.
#
# Source it, then:
#   local_env_prepare            install dependencies, build, install
#                                (skipped with MEDALLION_SKIP_PREPARE=1)
#   local_env_start WORKDIR PGPORT S3PORT [name=value ...]
#                                start both; extra GUCs for postgresql.conf
#   local_env_start_s3 WORKDIR S3PORT
#                                start the S3 server only
#   local_env_psql ARGS...       psql as the cluster's superuser
#   local_env_aws ARGS...        the AWS CLI v2 against the local S3 server
#   local_env_example [ARGS...]  create the example pipeline
#                                (examples/orders_pipeline.sql) on the local
#                                S3 server, with its keys; ARGS go to psql
#   local_env_drain PIPELINE     run updates until one writes nothing
#   local_env_stop               stop both (also called on exit)
#
# The server runs as the unprivileged OS user postgres (PostgreSQL refuses
# root), created if missing.

LOCAL_ENV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# MEDALLION_PG_BIN: the bin directory of another (relocated) copy of
# PostgreSQL 15, e.g. one that medallion was installed into with
# `make install DESTDIR=...`, so that a benchmark does not need the shared
# system installation (set MEDALLION_SKIP_PREPARE=1 with it)
LOCAL_ENV_BIN=${MEDALLION_PG_BIN:-/usr/lib/postgresql/15/bin}
LOCAL_ENV_USER=${MEDALLION_OS_USER:-postgres}
LOCAL_ENV_WORK=
LOCAL_ENV_S3_PID=

if [ "$(id -u)" -eq 0 ]; then LOCAL_ENV_SUDO=(); else LOCAL_ENV_SUDO=(sudo); fi

local_env_as_user() {
	if [ "$(id -un)" = "$LOCAL_ENV_USER" ]; then
		"$@"
	elif [ "$(id -u)" -eq 0 ]; then
		runuser -u "$LOCAL_ENV_USER" -- "$@"
	else
		sudo -u "$LOCAL_ENV_USER" "$@"
	fi
}

# Run as root: directly when we are root or the cluster's own user (who
# owns everything under the work directory), else through sudo.
local_env_root() {
	if [ "$(id -u)" -eq 0 ] || [ "$(id -un)" = "$LOCAL_ENV_USER" ]; then
		"$@"
	else
		sudo "$@"
	fi
}

local_env_prepare() {
	# already done by whoever runs us (the test harness, for example)
	if [ "${MEDALLION_SKIP_PREPARE:-0}" = 1 ]; then
		return 0
	fi
	bash "$LOCAL_ENV_ROOT/scripts/install-deps.sh" >&2
	"${LOCAL_ENV_SUDO[@]}" bash "$LOCAL_ENV_ROOT/scripts/install-deps.sh" --ensure-user "$LOCAL_ENV_USER" >&2
	make -C "$LOCAL_ENV_ROOT" -s >&2
	"${LOCAL_ENV_SUDO[@]}" make -C "$LOCAL_ENV_ROOT" -s install >&2
}

local_env_start() {
	local work=$1 pgport=$2 s3port=$3
	shift 3
	LOCAL_ENV_WORK=$work
	LOCAL_ENV_PGPORT=$pgport
	LOCAL_ENV_S3PORT=$s3port
	LOCAL_ENV_ENDPOINT=http://127.0.0.1:$s3port
	local_env_root mkdir -p "$work"
	local_env_root chown "$LOCAL_ENV_USER" "$work"
	local_env_root chmod 755 "$work"
	trap local_env_stop EXIT

	local_env_as_user "$LOCAL_ENV_BIN/initdb" -D "$work/pgdata" -E UTF8 --locale=C.UTF-8 -U postgres -A trust >/dev/null
	{
		echo "port = $pgport"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$work'"
		echo "shared_preload_libraries = 'medallion'"
		echo "max_worker_processes = 16"
		echo "timezone = 'UTC'"
		for setting in "$@"; do echo "${setting%%=*} = '${setting#*=}'"; done
	} | local_env_as_user tee -a "$work/pgdata/postgresql.conf" >/dev/null
	local_env_as_user "$LOCAL_ENV_BIN/pg_ctl" -D "$work/pgdata" -l "$work/postgresql.log" -w start >/dev/null
	local_env_start_s3 "$work" "$s3port"
}

# The S3 server alone, serving bucket landing from WORKDIR/s3data.
local_env_start_s3() {
	local work=$1 s3port=$2 node
	LOCAL_ENV_S3PORT=$s3port
	LOCAL_ENV_ENDPOINT=http://127.0.0.1:$s3port
	node=$(bash "$LOCAL_ENV_ROOT/scripts/install-deps.sh" --print-node)
	local_env_root mkdir -p "$work/s3data"
	NODE_OPTIONS=--openssl-legacy-provider "$node" "$LOCAL_ENV_ROOT/test/s3/server.js" \
		--port "$s3port" --directory "$work/s3data" --bucket landing \
		> "$work/s3.log" 2>&1 &
	LOCAL_ENV_S3_PID=$!
	for _ in $(seq 1 100); do
		grep -q "S3 listening" "$work/s3.log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q "S3 listening" "$work/s3.log" || { cat "$work/s3.log" >&2; return 1; }
}

local_env_psql() {
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$LOCAL_ENV_PGPORT" -U postgres -d postgres "$@"
}

local_env_aws() {
	AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 \
	AWS_EC2_METADATA_DISABLED=true AWS_PAGER= AWS_REQUEST_CHECKSUM_CALCULATION=when_required \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
		/usr/bin/aws --endpoint-url "$LOCAL_ENV_ENDPOINT" "$@"
}

local_env_example() {
	local_env_psql -v endpoint="$LOCAL_ENV_ENDPOINT" -v access_key_id=S3RVER \
		-v secret_access_key=S3RVER "$@" -f "$LOCAL_ENV_ROOT/examples/orders_pipeline.sql"
}

# Run updates of a triggered pipeline until one writes nothing.
local_env_drain() {
	local written
	while :; do
		written=$(local_env_psql -At -c "SELECT coalesce(sum(rows_written), 0) FROM medallion.run_pipeline('$1')")
		[ "$written" = 0 ] && break
	done
}

local_env_stop() {
	# never stop half way, whatever set -e says
	if [ -n "$LOCAL_ENV_S3_PID" ]; then
		kill "$LOCAL_ENV_S3_PID" 2>/dev/null || true
		wait "$LOCAL_ENV_S3_PID" 2>/dev/null || true
		LOCAL_ENV_S3_PID=
	fi
	if [ -n "$LOCAL_ENV_WORK" ] && [ -f "$LOCAL_ENV_WORK/pgdata/postmaster.pid" ]; then
		local_env_as_user "$LOCAL_ENV_BIN/pg_ctl" -D "$LOCAL_ENV_WORK/pgdata" -m fast -w stop >/dev/null 2>&1 || true
	fi
}
