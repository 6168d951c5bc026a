#!/usr/bin/env bash
# Runs franz-go's own kgo integration suite against `strait broker --brokers 3`.
#
# Every kgo test runs, TestTxnEtl included. The
# suite is compiled from a writable copy of pkg/kgo of the franz-go module
# in go.mod, because one test reads config.go from its working folder.
#
# Env: KGO_SUITE_RUN (a -run pattern, default all), KGO_SUITE_TIMEOUT
# (default 30m), KGO_TEST_RECORDS (default 50000), KGO_SUITE_VERBOSE (set: -v),
# STRAIT_BROKER_FLAGS (more strait broker flags, e.g. the authorizer's).
set -euo pipefail

cd "$(dirname "$0")/.."
root="$(pwd)"

work="$(mktemp -d)"
broker_pid=""
cleanup() {
	if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
		kill -TERM "$broker_pid" 2>/dev/null || true
		wait "$broker_pid" 2>/dev/null || true
	fi
	chmod -R u+w "$work" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "franz-go suite: building strait"
go build -o "$work/strait" ./cmd/strait

mkdir -p "$work/data"
mkfifo "$work/out"
# shellcheck disable=SC2086 # STRAIT_BROKER_FLAGS is a list of flags
"$work/strait" broker --dir "$work/data" --listen 127.0.0.1:0 --brokers 3 ${STRAIT_BROKER_FLAGS:-} >"$work/out" 2>"$work/broker.log" &
broker_pid=$!

# The first stdout line is "ready <addr>,<addr>,..."; give it a minute.
exec 3<"$work/out"
seeds=""
if read -r -t 60 line <&3; then
	case "$line" in
	ready\ *) seeds="${line#ready }" ;;
	esac
fi
if [ -z "$seeds" ]; then
	echo "franz-go suite: broker did not print a ready line" >&2
	cat "$work/broker.log" >&2 || true
	exit 1
fi
# Keep draining stdout so the broker never blocks on a full pipe.
cat <&3 >/dev/null &
echo "franz-go suite: brokers at $seeds"

kgo_mod="$(go list -m -f '{{.Dir}}' github.com/twmb/franz-go)"
cp -r "$kgo_mod" "$work/franz-go"
chmod -R u+w "$work/franz-go"

cd "$work/franz-go/pkg/kgo"
status=0
KGO_SEEDS="$seeds" KGO_TEST_RF=1 KGO_TEST_RECORDS="${KGO_TEST_RECORDS:-50000}" \
	go test -count=1 ${KGO_SUITE_VERBOSE:+-v} -timeout "${KGO_SUITE_TIMEOUT:-30m}" \
	${KGO_SUITE_RUN:+-run "$KGO_SUITE_RUN"} . || status=$?
cd "$root"

if [ "$status" -ne 0 ]; then
	echo "franz-go suite: FAILED (exit $status); last broker log lines:" >&2
	tail -n 50 "$work/broker.log" >&2 || true
fi
exit "$status"
