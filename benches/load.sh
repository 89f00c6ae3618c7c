#!/usr/bin/env bash
# End-to-end load benchmark: authenticated `{ viewer { id } }` with an API key against Gantry
# (SQLite + in-process, the default shape) vs the bare async-graphql-axum baseline
# (examples/bare_graphql.rs), both release builds, same machine, same run, same load generator
# (wrk). Prints a Markdown table and, with --write, replaces the section in BENCHMARKS.md.
# Usage: benches/load.sh [--write]   (env: DURATION=10s CONNECTIONS=32 THREADS=1 ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
ROUNDS="${ROUNDS:-3}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

cargo build --release --quiet --bin gantry --example bare_graphql
TARGET="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d)
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
pids=()
trap cleanup EXIT

# Servers share core 0, the load generator gets core 1: less scheduler noise between runs.
PIN_SERVER="taskset -c 0"; PIN_LOAD="taskset -c 1"
[ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null || { PIN_SERVER=""; PIN_LOAD=""; }
GANTRY_BIND=127.0.0.1:18080 GANTRY_DATA_DIR="$work/data" $PIN_SERVER "$TARGET/gantry" serve >"$work/gantry.log" & pids+=($!)
$PIN_SERVER "$TARGET/examples/bare_graphql" 127.0.0.1:18081 & pids+=($!)
for port in 18080 18081; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/graphql" -d '{}' -H 'content-type: application/json' && break; sleep 0.1; done
done

gql() { curl -s http://127.0.0.1:18080/graphql -H 'content-type: application/json' "$@"; }
reg=$(gql -d '{"query":"mutation { register(input: {email: \"bench@example.com\", password: \"correct horse battery\"}) { session { token } user { personalOrganizationId } } }"}')
session=$(echo "$reg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["register"]["session"]["token"])')
org=$(echo "$reg" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["register"]["user"]["personalOrganizationId"])')
# The limiter and the query-cost bucket stay on the path: Enterprise (no monthly quota, no daily
# cap, a cost bucket the run cannot empty) and a key whose per-second window is far above what the
# machine can send.
gql -H "authorization: Bearer $session" -d '{"query":"mutation { updatePlan(id: \"pln_0000000000000000enterprise\", input: {perDay: null, queryCostBucket: 100000000, queryCostRestoreRate: 100000000}) { slug } }"}' >/dev/null
gql -H "authorization: Bearer $session" -d "{\"query\":\"mutation { setOrganizationPlan(organizationId: \\\"$org\\\", planId: \\\"pln_0000000000000000enterprise\\\") { slug } }\"}" >/dev/null
key=$(gql -H "authorization: Bearer $session" -d '{"query":"mutation { createApiKey(input: {name: \"bench\", scopes: [\"*\"], rateLimit: {perSecond: 100000000}}) { secret } }"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["createApiKey"]["secret"])')
check=$(gql -H "authorization: Bearer $key" -d '{"query":"{ viewer { id } }"}')
echo "$check" | grep -q '"id":"key_' || { echo "gantry did not answer the benchmark query: $check"; exit 1; }

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"query":"{ viewer { id } }"}'
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $key"
LUA

rps() { $PIN_LOAD wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$work/post.lua" --latency "$1" | tee -a "$work/wrk.log" | awk '/Requests\/sec/ {print $2}'; }
p99() { awk '/ 99%/ {print $2}' "$work/wrk.log" | tail -n1; }

wrk -t1 -c8 -d2s -s "$work/post.lua" http://127.0.0.1:18080/graphql >/dev/null
wrk -t1 -c8 -d2s -s "$work/post.lua" http://127.0.0.1:18081/graphql >/dev/null
g_best=0; b_best=0; rows=""
for round in $(seq 1 "$ROUNDS"); do
  g=$(rps http://127.0.0.1:18080/graphql); gp=$(p99)
  b=$(rps http://127.0.0.1:18081/graphql); bp=$(p99)
  ratio=$(python3 -c "print(f'{$g/$b:.2f}')")
  rows+="| $round | $(printf '%.0f' "$g") | $gp | $(printf '%.0f' "$b") | $bp | ${ratio}× |"$'\n'
  g_best=$(python3 -c "print(max($g_best, $g))"); b_best=$(python3 -c "print(max($b_best, $b))")
done
if grep -q "Non-2xx" "$work/wrk.log"; then
  echo "some benchmark responses were not 2xx (rate limited?):"; grep "Non-2xx" "$work/wrk.log"; exit 1
fi
median_ratio=$(printf '%s' "$rows" | awk -F'|' '{gsub(/[ ×]/,"",$7); print $7}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

section=$(cat <<MD
## Authenticated \`{ viewer { id } }\` vs bare async-graphql-axum

Measured $(date -u +%Y-%m-%d) by \`benches/load.sh\` on this machine ($(nproc) cores), release builds,
wrk with $THREADS thread(s) and $CONNECTIONS connections for $DURATION per run, alternating servers;
servers pinned to core 0, wrk to core 1.
Gantry runs its default shape (SQLite + in-process, default info-level logging) and authenticates every request with an API
key (keyed hash, per-node cache, IP/expiry/revocation checks, rate-limit decision and headers,
usage counters, usage metering — one record per call, written in batches by a writer on the same core —,
request id, tracing span, parsed-document cache); the baseline answers the same query with a constant and no middleware.

| round | Gantry req/s | Gantry p99 | baseline req/s | baseline p99 | ratio |
|---|---|---|---|---|---|
$rows
**Median ratio: ${median_ratio}×** (target ≥ 0.8×).
MD
)
echo "$section"
if [ "${1:-}" = "--write" ]; then
  python3 - "$section" <<'PY'
import re, sys, pathlib
p = pathlib.Path("BENCHMARKS.md")
section = sys.argv[1].strip() + "\n"
text = p.read_text() if p.exists() else "# Benchmarks\n\nFigures are ratios against a baseline measured in the same run.\n\n"
pattern = re.compile(r"## Authenticated `\{ viewer \{ id \} \}` vs bare async-graphql-axum\n.*?(?=\n## |\Z)", re.S)
text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
p.write_text(text)
PY
fi
