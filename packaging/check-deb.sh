#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine and checks it the way the unit runs
# it: `systemd-analyze verify` on the installed unit, then the installed binary started as the
# packaged user with the packaged config and the unit's environment, and one task through it.
# Needs root (dpkg -i), cargo-deb and systemd-analyze. Run from the repository root; CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '  %s\n' "$*"; }

cargo deb -p numcheck --locked --quiet
deb=$(ls -t target/debian/numcheck_*.deb | head -n 1)
say "built $deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p'
dpkg -i "$deb"

test -x /usr/bin/numcheck
test -f /etc/numcheck/numcheck.toml
getent passwd numcheck >/dev/null || { echo "no numcheck user after install" >&2; exit 1; }
[ "$(stat -c %U /var/lib/numcheck)" = numcheck ] || { echo "/var/lib/numcheck is not the numcheck user's" >&2; exit 1; }
unit=$(dpkg -L numcheck | grep '/numcheck.service$')
say "unit $unit"
# `verify` also checks that ExecStart's binary exists and the unit's directives parse.
SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$unit"

# Start it as the unit does: its user, its command line, its working directory and
# environment (the data folder is its StateDirectory). A free port instead of 8080.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
# shellcheck disable=SC2086
(cd /var/lib/numcheck && exec runuser -u numcheck -- env NUMCHECK_LOG=info \
    NUMCHECK_LISTEN="127.0.0.1:$port" $exec_start) >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$log" >&2; echo "the installed service did not start" >&2; exit 1; }
say "running as $(ps -o user= -p "$(pgrep -P $pid || echo $pid)" | head -n 1)"
# A key made the way docs/install.md says, then one task.
key=$(runuser -u numcheck -- numcheck keys create --config /etc/numcheck/numcheck.toml --user deb-check | tail -n 1)
printf '+14155552671\n+44 7911 123456\nnot a number\n' > /tmp/numcheck-deb-numbers.txt
task=$(curl -sf "http://127.0.0.1:$port/v1/tasks" -H "X-API-Key: $key" \
  -F file=@/tmp/numcheck-deb-numbers.txt -F task_type=active_check)
id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["task_id"])' "$task")
status=""
for _ in $(seq 1 100); do
  polled=$(curl -sf "http://127.0.0.1:$port/v1/gettasks" -H "X-API-Key: $key" -F "task_id=$id")
  status=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["status"])' "$polled")
  [ "$status" = exported ] && break
  sleep 0.1
done
[ "$status" = exported ] || { echo "task $id: $status" >&2; exit 1; }
url=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["result_url"])' "$polled")
curl -sf -o /tmp/numcheck-deb-result.zip "$url"
python3 - /tmp/numcheck-deb-result.zip "$id" <<'PY'
import sys, zipfile
rows = zipfile.ZipFile(sys.argv[1]).read(sys.argv[2] + ".csv").decode().splitlines()
assert len(rows) == 3, rows   # header and two numbers
PY
[ "$(stat -c %U /var/lib/numcheck/numcheck.db)" = numcheck ] || { echo "the database is not the numcheck user's" >&2; exit 1; }
say "task $id exported through the installed service"
kill -TERM $pid
wait $pid || true
trap - EXIT
rm -f "$log" /tmp/numcheck-deb-numbers.txt /tmp/numcheck-deb-result.zip
# Remove the package again (the data folder and user stay, as after `apt remove`).
dpkg -r numcheck >/dev/null
say "ok"
