#!/usr/bin/env bash
# Runs every kalam test: sets up the machine and installs kalam (setup.sh),
# fuzzes the decoders of src/codec (test/fuzz/run.sh, FUZZ_SECONDS each),
# then runs `make installcheck` (pg_regress, isolation, then the TAP tests in
# t/) as the postgres user in a copy of the repo that this user owns.  On
# failure prints the diffs and logs, keeps the copy and exits non-zero.
# Run as root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config

bash "$repo/scripts/setup.sh"
PG_CONFIG="$PG_CONFIG" bash "$repo/test/fuzz/run.sh"

# The postgres user may not be able to read the repo (e.g. a clone under /root).
work=$(mktemp -d /tmp/kalam-test.XXXXXX)
tar -C "$repo" --exclude=.git -cf - . | tar -C "$work" -xf -
# Outputs of an earlier run in the repo would be mistaken for this run's.
rm -rf "$work"/{tmp_check,tmp_check_regress,tmp_check_isolation,output_iso,log,results,regression.diffs,regression.out}
chown -R postgres:postgres "$work"
cd "$work"

if runuser -u postgres -- make installcheck PG_CONFIG="$PG_CONFIG"; then
	cd /
	rm -rf "$work"
	echo "test.sh: all tests passed"
	exit 0
else
	status=$?
fi

shopt -s nullglob
for f in regression.diffs log/postmaster.log output_iso/regression.diffs \
	output_iso/log/postmaster.log tmp_check/log/*; do
	[ -f "$f" ] || continue
	echo
	echo "======== $work/$f (last 1000 lines) ========"
	tail -n 1000 "$f"
done
echo
echo "test.sh: tests failed (make exited with $status); outputs kept in $work" >&2
exit "$status"
