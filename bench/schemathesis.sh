#!/usr/bin/env bash
# Fuzzes a live numcheck against its own /openapi.json with schemathesis: every documented
# operation, positive and negative inputs, a bounded number of examples each, and the checks
# below. Builds nothing: pass the numcheck binary. A clean run exits 0.
#
#   bench/schemathesis.sh target/debug/numcheck [path/to/st]
#
# ST_MAX_EXAMPLES (default 100) bounds the examples per operation and phase; ST_SEED fixes the
# seed (default 1, so CI runs are reproducible); ST_ARGS adds schemathesis options.
set -euo pipefail

bin=${1:?usage: bench/schemathesis.sh NUMCHECK_BINARY [ST_BINARY]}
st=${2:-st}
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
case $st in */*) st=$(cd "$(dirname "$st")" && pwd)/$(basename "$st") ;; esac

data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token=st-webhook-token-0123456789
# One webhook source per format, named after it (see schemathesis.toml).
for f in kannel jasmin twilio vonage infobip; do
  printf '[[sources]]\nname = "%s"\nformat = "%s"\ntoken = "%s"\n\n' "$f" "$f" "$token"
done >"$data/numcheck.toml"

"$bin" serve --config "$data/numcheck.toml" --data-dir "$data" --listen "127.0.0.1:$port" \
  --workers 1 >"$data/serve.out" 2>"$data/serve.err" &
pid=$!
cleanup() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
# Unlimited credits and the ingest right, so every operation can succeed.
key=$("$bin" keys create --config "$data/numcheck.toml" --data-dir "$data" --user st --ingest | tail -n 1)

# Checks: every one schemathesis has (not_a_server_error, response_schema_conformance,
# status codes, content types, headers, negative data rejection, unsupported methods, auth,
# …) but those bench/schemathesis.toml turns off, each with its reason.
status=0
# From the scratch folder: schemathesis and hypothesis leave caches in the working directory.
cd "$data"
"$st" --config-file "$here/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" \
  --header "X-API-Key: $key" \
  --header "X-Numcheck-Token: $token" \
  --max-examples "${ST_MAX_EXAMPLES:-100}" \
  --seed "${ST_SEED:-1}" \
  --workers 2 \
  --request-timeout 30 \
  --generation-database none \
  --generation-with-security-parameters false \
  --no-color \
  ${ST_ARGS:-} || status=$?

if ! curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
  echo "schemathesis: the server stopped answering; its log:" >&2
  tail -n 50 "$data/serve.err" >&2
  status=1
fi
if grep -q 'request failed' "$data/serve.err"; then
  echo "schemathesis: the server logged internal errors:" >&2
  grep 'request failed' "$data/serve.err" | head -n 20 >&2
  status=1
fi
exit "$status"
