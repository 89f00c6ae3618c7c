#!/usr/bin/env bash
# OAuth benchmark: a GraphQL request authenticated by an OAuth access token vs the bare
# async-graphql-axum baseline (examples/bare_graphql.rs), both pinned to core 0 with wrk on core 1,
# alternating, in the same run; introspections per second (wrk), and code exchanges and refresh
# grants per second at the token endpoint (examples/oauth_load.rs) on SQLite + in-process and on
# PostgreSQL + Redis (when reachable). Release build. --write puts the section in BENCHMARKS.md.
# Usage: benches/oauth.sh [--write]   (env: DURATION=10s CONNECTIONS=32 ROUNDS=2; NO_BUILD=1 uses
# the release binaries already built)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
ROUNDS="${ROUNDS:-2}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin gantry --example bare_graphql --example oauth_load
TARGET="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
work=$(mktemp -d)
pids=()
pgdb="gantry_oauth_$$"
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pgdb" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
PIN_SERVER="taskset -c 0"; PIN_LOAD="taskset -c 1"
[ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null || { PIN_SERVER=""; PIN_LOAD=""; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
rps() { awk '/Requests\/sec/ {printf "%.0f", $2}' "$1"; }

$PIN_SERVER "$TARGET/examples/bare_graphql" 127.0.0.1:18181 & pids+=($!)

# run NAME PORT [ENV...]: starts gantry, sets up an app and its tokens, measures, adds a row.
run() {
  local name=$1 port=$2; shift 2
  env GANTRY_BIND=127.0.0.1:$port GANTRY_DATA_DIR="$work/$port" GANTRY_REDIS_PREFIX="oauth-$$" "$@" $PIN_SERVER "$TARGET/gantry" serve >"$work/$port.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  local base="http://127.0.0.1:$port"
  gql() { curl -s "$base/graphql" -H 'content-type: application/json' "$@"; }
  local reg session org app client secret access
  reg=$(gql -d '{"query":"mutation { register(input: {email: \"bench@example.com\", password: \"correct horse battery\"}) { session { token } user { personalOrganizationId } } }"}')
  session=$(echo "$reg" | json 'd["data"]["register"]["session"]["token"]')
  org=$(echo "$reg" | json 'd["data"]["register"]["user"]["personalOrganizationId"]')
  # Limits stay on the path, far above what the machine can send.
  gql -H "authorization: Bearer $session" -d '{"query":"mutation { updatePlan(id: \"pln_0000000000000000enterprise\", input: {perSecond: null, perMinute: null, perHour: null, perDay: null, queryCostBucket: 100000000, queryCostRestoreRate: 100000000}) { slug } }"}' >/dev/null
  gql -H "authorization: Bearer $session" -d "{\"query\":\"mutation { setOrganizationPlan(organizationId: \\\"$org\\\", planId: \\\"pln_0000000000000000enterprise\\\") { slug } }\"}" >/dev/null
  app=$(gql -H "authorization: Bearer $session" -d '{"query":"mutation { createApp(input: {name: \"Bench\", description: \"bench\", category: ANALYTICS, requestedScopes: [\"keys:read\"], redirectUris: [\"https://bench.example.com/callback\"]}) { clientSecret app { id } } }"}')
  client=$(echo "$app" | json 'd["data"]["createApp"]["app"]["id"]')
  secret=$(echo "$app" | json 'd["data"]["createApp"]["clientSecret"]')
  for m in submitApp approveApp publishApp; do
    gql -H "authorization: Bearer $session" -d "{\"query\":\"mutation { $m(id: \\\"$client\\\") { status } }\"}" >/dev/null
  done
  access=$(curl -s "$base/oauth/token" -u "$client:$secret" -d grant_type=client_credentials | json 'd["access_token"]')
  gql -H "authorization: Bearer $access" -d '{"query":"{ viewer { id } }"}' | grep -q "\"$client\"" || { echo "the access token does not answer" >&2; exit 1; }
  cat > "$work/gql.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"query":"{ viewer { id } }"}'
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $access"
LUA
  local basic
  basic=$(printf '%s:%s' "$client" "$secret" | base64 -w0)
  cat > "$work/introspect.lua" <<LUA
wrk.method = "POST"
wrk.body = "token=$access"
wrk.headers["content-type"] = "application/x-www-form-urlencoded"
wrk.headers["authorization"] = "Basic $basic"
LUA
  local ratios="" oauth_rps="" bare_rps=""
  if [ "$name" = "SQLite + in-process" ]; then
    wrk -t1 -c8 -d2s -s "$work/gql.lua" "$base/graphql" >/dev/null
    for round in $(seq 1 "$ROUNDS"); do
      $PIN_LOAD wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$work/gql.lua" "$base/graphql" >"$work/g.wrk"
      $PIN_LOAD wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$work/gql.lua" "http://127.0.0.1:18181/graphql" >"$work/b.wrk"
      if grep -q "Non-2xx" "$work/g.wrk"; then echo "non-2xx responses:" >&2; cat "$work/g.wrk" >&2; exit 1; fi
      local g b
      g=$(rps "$work/g.wrk"); b=$(rps "$work/b.wrk")
      oauth_rps="$oauth_rps $g"; bare_rps="$bare_rps $b"
      ratios="$ratios $(python3 -c "print(f'{$g/$b:.2f}')")"
      echo "| $round | $g | $b | $(python3 -c "print(f'{$g/$b:.2f}×')") |" >>"$work/ratio_rows"
    done
  fi
  $PIN_LOAD wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$work/introspect.lua" "$base/oauth/introspect" >"$work/i.wrk"
  if grep -q "Non-2xx" "$work/i.wrk"; then echo "introspection non-2xx:" >&2; cat "$work/i.wrk" >&2; exit 1; fi
  local introspect exchange refresh
  introspect=$(rps "$work/i.wrk")
  exchange=$($PIN_LOAD "$TARGET/examples/oauth_load" "$base" "$client" "$secret" "$session" exchange 16 2000 | json '"%.0f (%d errors)" % (d["per_sec"], d["errors"])')
  refresh=$($PIN_LOAD "$TARGET/examples/oauth_load" "$base" "$client" "$secret" "$session" refresh 16 "${DURATION%s}" | json '"%.0f (%d errors)" % (d["per_sec"], d["errors"])')
  echo "| $name | $introspect | $exchange | $refresh |" >>"$work/rows"
}

run "SQLite + in-process" 18190
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $pgdb" >/dev/null
  run "PostgreSQL + Redis" 18191 DATABASE_URL="postgres://postgres@127.0.0.1:5432/$pgdb" REDIS_URL=redis://127.0.0.1:6379
fi
median=$(python3 -c "import statistics,sys; print(f'{statistics.median([float(x) for x in sys.argv[1:]]):.2f}')" $(awk -F'|' '{gsub(/[× ]/,"",$5); print $5}' "$work/ratio_rows"))
section=$(cat <<MD
## OAuth: requests with an access token, grants, introspection

What it measures: \`{ viewer { id } }\` authenticated by an OAuth access token (cached keyed-hash
lookup, installation and expiry checks, the app's rate-limit decision, query cost, metering as
the app) against the bare async-graphql-axum baseline of the load benchmark; and the token
endpoint's grants — code exchanges (each a single-use conditional update and two new tokens in
one transaction) and refresh grants (rotation: the old token used up, a new pair issued) — and
introspections, with client authentication on every request. Measured $(date -u +%Y-%m-%d) by
\`benches/oauth.sh\` on this machine ($(nproc) cores), release build, wrk with 1 thread and
$CONNECTIONS connections for $DURATION per round; servers pinned to core 0, the load to core 1.
Grants are driven by \`examples/oauth_load.rs\` with 16 requests in flight.

| round | with an OAuth token, req/s | bare baseline, req/s | ratio |
|---|---|---|---|
$(cat "$work/ratio_rows")

**Median ratio: ${median}×** (target ≥ 0.8×).

| backend | introspections/s | code exchanges/s | refresh grants/s |
|---|---|---|---|
$(cat "$work/rows")
MD
)
echo "$section"
if [ "${1:-}" = "--write" ]; then
  python3 - "$section" <<'PY'
import re, sys, pathlib
p = pathlib.Path("BENCHMARKS.md")
section = sys.argv[1].strip() + "\n"
text = p.read_text()
pattern = re.compile(r"## OAuth: requests with an access token.*?\n.*?(?=\n## |\Z)", re.S)
text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
p.write_text(text)
PY
fi
