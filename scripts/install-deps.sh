#!/usr/bin/env bash
# Installs everything medallion needs to build, test and run the demo on
# Debian 12, as root or as a user with sudo. Idempotent: what is already
# there is skipped, so a second run takes a second or two.
#
#   scripts/install-deps.sh                  install (the default)
#   scripts/install-deps.sh --print-node     print the path of a Node.js >= 20
#                                            (installing nothing)
#   scripts/install-deps.sh --ensure-user U  create OS user U if missing (root/sudo)
#
# What it installs:
#   - Debian packages (apt-get update first, only if something is missing):
#     PostgreSQL 15 server + PGXS + PostgreSQL::Test perl modules, compiler,
#     pkg-config, libcurl/expat/zlib/openssl headers, AWS CLI v2 (/usr/bin/aws),
#     IPC::Run (for the TAP tests), Graphviz (renders pipeline_graph's DOT
#     in a test), curl (the demo's uploads), Node.js and npm.
#   - Node.js >= 20 (s3rver needs it): Debian 12's own nodejs is 18; then the
#     npm package node@20 (a real node binary from the npm registry) goes to
#     /opt/medallion/node20/node_modules/node/bin/node.
#   - test/s3/node_modules from test/s3/package-lock.json (npm ci), as the
#     owner of the checkout, redone only when the lock file changes.
#   - the `postgres` OS user, if the server binaries came without it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE20_DIR=/opt/medallion/node20
NODE20_BIN=$NODE20_DIR/node_modules/node/bin/node

PACKAGES=(
	postgresql-15 postgresql-server-dev-15
	build-essential pkg-config
	libcurl4-openssl-dev libexpat1-dev zlib1g-dev libssl-dev
	awscli libipc-run-perl
	graphviz
	ca-certificates curl
)

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
else
	SUDO=(sudo)
fi
as_root() {
	if [ ${#SUDO[@]} -gt 0 ] && ! command -v sudo >/dev/null 2>&1; then
		die "not root and no sudo: cannot run: $*"
	fi
	"${SUDO[@]}" "$@"
}

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# node_major BIN -> major version, or 0
node_major() {
	local v
	v=$("$1" -p 'process.versions.node' 2>/dev/null) || { echo 0; return; }
	echo "${v%%.*}"
}

# Path of a Node.js >= 20, or nothing.
find_node20() {
	local n
	if n=$(command -v node 2>/dev/null) && [ "$(node_major "$n")" -ge 20 ]; then
		echo "$n"
	elif [ -x "$NODE20_BIN" ] && [ "$(node_major "$NODE20_BIN")" -ge 20 ]; then
		echo "$NODE20_BIN"
	fi
}

ensure_user() {
	local user=$1
	id -u "$user" >/dev/null 2>&1 && return 0
	log "creating OS user $user"
	if [ "$user" = postgres ]; then
		as_root useradd --system --user-group --home-dir /var/lib/postgresql \
			--shell /bin/bash postgres
		as_root mkdir -p /var/lib/postgresql
		as_root chown postgres:postgres /var/lib/postgresql
	else
		as_root useradd --user-group --create-home --shell /bin/bash "$user"
	fi
}

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		installed "$p" || missing+=("$p")
	done
	# nodejs/npm may come from elsewhere (e.g. a vendor nodejs bundling npm):
	# only ask Debian for what has no command yet.
	command -v node >/dev/null 2>&1 || missing+=(nodejs)
	command -v npm >/dev/null 2>&1 || missing+=(npm)
	if [ ${#missing[@]} -eq 0 ]; then
		log "Debian packages: all present"
		return
	fi
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
}

install_node20() {
	local n
	n=$(find_node20)
	if [ -n "$n" ]; then
		log "Node.js >= 20: $n ($("$n" --version))"
		return
	fi
	log "Node.js on PATH is $(node --version 2>/dev/null || echo none); installing npm package node@20 into $NODE20_DIR"
	as_root mkdir -p "$NODE20_DIR"
	# The package's preinstall fetches the matching node-linux-<arch> package
	# (the binary) from the npm registry.
	as_root npm install --prefix "$NODE20_DIR" --no-save --no-audit --no-fund \
		--loglevel=error node@20 >/dev/null
	[ -x "$NODE20_BIN" ] && [ "$(node_major "$NODE20_BIN")" -ge 20 ] ||
		die "npm package node@20 did not provide $NODE20_BIN"
	log "Node.js >= 20: $NODE20_BIN ($("$NODE20_BIN" --version))"
}

install_s3rver() {
	local dir=$ROOT/test/s3 stamp sum
	stamp=$dir/node_modules/.medallion-lock.sha256
	sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] &&
		[ -f "$dir/node_modules/@20minutes/s3rver/package.json" ]; then
		log "test/s3/node_modules: up to date"
		return
	fi
	log "test/s3: npm ci"
	# Run as the owner of the checkout so its files stay theirs. npm itself
	# may run on Node 18 here (it only warns about s3rver's engines field);
	# server.js always runs on Node >= 20.
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	echo "$sum" >"$stamp"
}

case "${1:-}" in
--print-node)
	find_node20
	exit 0
	;;
--ensure-user)
	[ -n "${2:-}" ] || die "--ensure-user needs a user name"
	ensure_user "$2"
	exit 0
	;;
"" | --install) ;;
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown argument: $1" ;;
esac

command -v dpkg-query >/dev/null 2>&1 || die "this script is for Debian 12 (no dpkg-query)"
install_packages
[ -x /usr/bin/aws ] || die "/usr/bin/aws is missing although awscli is installed"
ensure_user postgres
install_node20
install_s3rver
log "done"
