#!/usr/bin/env bash
# Prepares a Debian 12 machine for kalam and installs the extension: installs
# the build and test packages if any is missing, then builds kalam with PGXS
# and installs it into PostgreSQL 15.  Run as root.  Idempotent, and quick
# when everything is already in place.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
packages=(postgresql-15 postgresql-server-dev-15 librocksdb-dev libraft-dev
	libuv1-dev libssl-dev libipc-run-perl libdbd-pg-perl make gcc)

if [ "$(id -u)" -ne 0 ]; then
	echo "setup.sh: run me as root" >&2
	exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
	# shellcheck disable=SC2016 # ${db:Status-Status} is dpkg-query's syntax
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]; then
		missing+=("$pkg")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

make -s -C "$repo" -j"$(nproc)" PG_CONFIG="$PG_CONFIG"
make -s -C "$repo" install PG_CONFIG="$PG_CONFIG"
