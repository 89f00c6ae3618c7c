#!/usr/bin/env bash
# verifyApiKey throughput: the operator's backend verifying a key with its service key, through
# GraphQL (`mutation { verifyApiKey(input: {key}) { valid } }`), on SQLite + in-process and on
# PostgreSQL + Redis (when reachable). Each call authenticates the service key, decides its limits,
# verifies the target key (cached keyed-hash lookup, IP/expiry/revocation, scopes), decides the
# target key's limits, and meters both. Release build; gantry pinned to core 0, wrk to core 1
# (PostgreSQL and Redis float). Prints a Markdown section; --write puts it in BENCHMARKS.md.
# Usage: benches/verify.sh [--write]   (env: DURATION=10s CONNECTIONS=32)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin gantry
TARGET="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
work=$(mktemp -d)
pids=()
pgdb="gantry_verify_$$"
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pgdb" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
PIN_SERVER="taskset -c 0"; PIN_LOAD="taskset -c 1"
[ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null || { PIN_SERVER=""; PIN_LOAD=""; }

# run NAME PORT [ENV...]: starts gantry, sets up keys, measures, prints a table row.
run() {
  local name=$1 port=$2 goal=$3; shift 3
  env GANTRY_BIND=127.0.0.1:$port GANTRY_DATA_DIR="$work/$port" GANTRY_REDIS_PREFIX="verify-$$" "$@" $PIN_SERVER "$TARGET/gantry" serve >"$work/$port.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  gql() { curl -s "http://127.0.0.1:$port/graphql" -H 'content-type: application/json' "$@"; }
  local reg session org service target check
  reg=$(gql -d '{"query":"mutation { register(input: {email: \"bench@example.com\", password: \"correct horse battery\"}) { session { token } user { personalOrganizationId } } }"}')
  session=$(echo "$reg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["register"]["session"]["token"])')
  org=$(echo "$reg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["register"]["user"]["personalOrganizationId"])')
  gql -H "authorization: Bearer $session" -d '{"query":"mutation { updatePlan(id: \"pln_0000000000000000enterprise\", input: {perDay: null, queryCostBucket: 100000000, queryCostRestoreRate: 100000000}) { slug } }"}' >/dev/null
  gql -H "authorization: Bearer $session" -d "{\"query\":\"mutation { setOrganizationPlan(organizationId: \\\"$org\\\", planId: \\\"pln_0000000000000000enterprise\\\") { slug } }\"}" >/dev/null
  key() { gql -H "authorization: Bearer $session" -d "{\"query\":\"mutation { createApiKey(input: {name: \\\"$1\\\", scopes: [\\\"$2\\\"], rateLimit: {perSecond: 100000000}}) { secret } }\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["createApiKey"]["secret"])'; }
  service=$(key service keys:verify)
  target=$(key target '*')
  cat > "$work/verify.lua" <<LUA
wrk.method = "POST"
wrk.body = [[{"query":"mutation { verifyApiKey(input: {key: \\"$target\\"}) { valid } }"}]]
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $service"
LUA
  check=$(curl -s "http://127.0.0.1:$port/graphql" -H 'content-type: application/json' -H "authorization: Bearer $service" -d "{\"query\":\"mutation { verifyApiKey(input: {key: \\\"$target\\\"}) { valid } }\"}")
  echo "$check" | grep -q '"valid":true' || { echo "verifyApiKey did not verify: $check" >&2; exit 1; }
  wrk -t1 -c8 -d2s -s "$work/verify.lua" "http://127.0.0.1:$port/graphql" >/dev/null
  $PIN_LOAD wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$work/verify.lua" --latency "http://127.0.0.1:$port/graphql" >"$work/$port.wrk"
  if grep -q "Non-2xx" "$work/$port.wrk"; then echo "non-2xx responses:" >&2; cat "$work/$port.wrk" >&2; exit 1; fi
  local rps p99
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/$port.wrk")
  p99=$(awk '/ 99%/ {print $2}' "$work/$port.wrk")
  echo "| $name | $rps | $p99 | $goal |" >>"$work/rows"
}

# Not in a subshell: the server pids must reach the cleanup.
run "SQLite + in-process" 18090 "≥ 20000" GANTRY_LOG=info
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $pgdb" >/dev/null
  run "PostgreSQL + Redis" 18091 "≥ 10000" DATABASE_URL="postgres://postgres@127.0.0.1:5432/$pgdb" REDIS_URL=redis://127.0.0.1:6379
fi
rows=$(cat "$work/rows")
section=$(cat <<MD
## verifyApiKey throughput

Measured $(date -u +%Y-%m-%d) by \`benches/verify.sh\` on this machine ($(nproc) cores), release build, wrk with
1 thread and $CONNECTIONS connections for $DURATION; gantry pinned to core 0, wrk to core 1 (PostgreSQL
and Redis share the machine). Each call: the service key authenticated and rate-limited, the
target key verified (cached keyed-hash lookup, revocation/expiry/IP/scope checks) and its own
limits decided, both calls metered.

| backend | verifications/s | p99 | target |
|---|---|---|---|
$rows
MD
)
echo "$section"
if [ "${1:-}" = "--write" ]; then
  python3 - "$section" <<'PY'
import re, sys, pathlib
p = pathlib.Path("BENCHMARKS.md")
section = sys.argv[1].strip() + "\n"
text = p.read_text()
pattern = re.compile(r"## verifyApiKey throughput\n.*?(?=\n## |\Z)", re.S)
text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
p.write_text(text)
PY
fi
