#!/usr/bin/env bash
# End-to-end load benchmark: authenticated `{ viewer { id } }` with an API key against Gantry
# (SQLite + in-process, the default shape) vs the bare async-graphql-axum baseline
# (examples/bare_graphql.rs), both release builds, same machine, same run, same load generator
# (wrk). Prints a Markdown table and, with --write, replaces the section in BENCHMARKS.md.
# Usage: benches/load.sh [--write]   (env: DURATION=10s CONNECTIONS=32 THREADS=1 ROUNDS=3 IDLE_SECS=30;
# NO_BUILD=1 measures the release binaries already in the target directory)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
ROUNDS="${ROUNDS:-3}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin gantry --example bare_graphql --example ws_load
TARGET="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
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

gantry_pid=${pids[0]}; bare_pid=${pids[1]}
# CPU time a process has used so far, in µs (utime + stime from /proc/PID/stat).
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000000 / hz}' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# One wrk run against server $1 (pid $2): prints "req/s p99 requests cpu_µs_per_request".
run() {
  local before after out
  before=$(cpu_us "$2")
  out=$($PIN_LOAD wrk -t"$THREADS" -c"${3:-$CONNECTIONS}" -d"$DURATION" -s "$work/post.lua" --latency "$1")
  after=$(cpu_us "$2")
  echo "$out" >>"$work/wrk.log"
  echo "$out" | awk -v b="$before" -v a="$after" '
    /requests in/ {n = $1} / 99%/ {p = $2} /Requests\/sec/ {r = $2}
    END {printf "%s %s %s %.1f\n", r, p, n, (a - b) / n}'
}
served=0
rounds() {  # $1: label; prints table rows and adds to the median lists
  local g b
  for round in $(seq 1 "$ROUNDS"); do
    read -r g gp gn gc < <(run http://127.0.0.1:18080/graphql "$gantry_pid")
    read -r b bp bn bc < <(run http://127.0.0.1:18081/graphql "$bare_pid")
    served=$((served + gn))
    ratio=$(python3 -c "print(f'{$g/$b:.2f}')"); cratio=$(python3 -c "print(f'{$gc/$bc:.2f}')")
    rows+="| $1 | $round | $(printf '%.0f' "$g") | $gp | $gc µs | $(printf '%.0f' "$b") | $bp | $bc µs | ${ratio}× | ${cratio}× |"$'\n'
    ratios+="$1 $ratio $cratio"$'\n'
  done
}
median() { awk -v m="$1" -v c="$2" '$1 == m {print $c}' <<<"$ratios" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

rss_start=$(rss_mib "$gantry_pid"); bare_rss_start=$(rss_mib "$bare_pid")
wrk -t1 -c8 -d2s -s "$work/post.lua" http://127.0.0.1:18080/graphql | awk '/requests in/ {print $1}' >"$work/warm"
served=$((served + $(cat "$work/warm")))
wrk -t1 -c8 -d2s -s "$work/post.lua" http://127.0.0.1:18081/graphql >/dev/null
rows=""; ratios=""
rounds pinned
if [ -n "$PIN_SERVER" ]; then
  # The same servers, free to run on every core, and wrk too: the shape of a real deployment
  # where the load generator competes for the cores.
  all="0-$(($(nproc) - 1))"
  taskset -a -p -c "$all" "$gantry_pid" >/dev/null; taskset -a -p -c "$all" "$bare_pid" >/dev/null
  PIN_LOAD_SAVED=$PIN_LOAD; PIN_LOAD=""
  rounds unpinned
  PIN_LOAD=$PIN_LOAD_SAVED
  taskset -a -p -c 0 "$gantry_pid" >/dev/null; taskset -a -p -c 0 "$bare_pid" >/dev/null
fi
if grep -q "Non-2xx" "$work/wrk.log"; then
  echo "some benchmark responses were not 2xx (rate limited?):"; grep "Non-2xx" "$work/wrk.log"; exit 1
fi

# One WebSocket (graphql-transport-ws) carrying the same query, against the same query over
# HTTP keep-alive connections: one operation at a time vs one connection, and 32 operations in
# flight on the one socket vs 32 connections.
ws_rows=""
for inflight in 1 "$CONNECTIONS"; do
  ws=$($PIN_LOAD "$TARGET/examples/ws_load" ws://127.0.0.1:18080/graphql/ws "$key" "$inflight" "${DURATION%s}")
  ws_rate=$(echo "$ws" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["errors"] == 0, d; print(round(d["per_s"]))')
  served=$((served + $(echo "$ws" | python3 -c 'import json,sys; print(json.load(sys.stdin)["completed"])')))
  read -r h _ hn _ < <(run http://127.0.0.1:18080/graphql "$gantry_pid" "$inflight")
  served=$((served + hn))
  ws_rows+="| $inflight | $ws_rate | $(printf '%.0f' "$h") | $(python3 -c "print(f'{$ws_rate/$h:.2f}')")× |"$'\n'
done

rss_loaded=$(rss_mib "$gantry_pid"); bare_rss_loaded=$(rss_mib "$bare_pid")
sleep "${IDLE_SECS:-30}"
rss_idle=$(rss_mib "$gantry_pid"); bare_rss_idle=$(rss_mib "$bare_pid")
# With SMAPS_OUT=FILE: Gantry's memory map at the end, to see where the resident set is.
[ -n "${SMAPS_OUT:-}" ] && cp "/proc/$gantry_pid/smaps" "$SMAPS_OUT"

section=$(cat <<MD
## Authenticated \`{ viewer { id } }\` vs bare async-graphql-axum

What it measures: the cost of Gantry's request path — an API key authenticated (keyed hash,
per-node cache, IP/expiry/revocation checks), a rate-limit decision with its headers, the query
cost bucket, usage counters and metering (one record per call, written in batches), request id,
tracing span at the default info level, the parsed-document cache — in the default shape (SQLite
\+ in-process), against a bare async-graphql-axum server that answers the same query with a
constant and no middleware (\`examples/bare_graphql.rs\`). Both are release builds on the same
machine in the same run, alternating, loaded by wrk with $THREADS thread and $CONNECTIONS
connections for $DURATION per round. **Pinned**: both servers on core 0, wrk on core 1 — the
steadiest figure, CPU cost per request on one core. **Unpinned**: servers and wrk free on all
$(nproc) cores, competing. CPU per request is the server process's user + system time over the
round divided by the requests it answered.

Measured $(date -u +%Y-%m-%d) on this machine ($(nproc) cores).

| shape | round | Gantry req/s | p99 | CPU/request | baseline req/s | p99 | CPU/request | throughput ratio | CPU ratio |
|---|---|---|---|---|---|---|---|---|---|
$rows
**Median throughput ratio: $(median pinned 2)× pinned, $(median unpinned 2)× unpinned** (target ≥ 0.8×).
**Median CPU per request: $(median pinned 3)× pinned, $(median unpinned 3)× unpinned** the baseline's (target ≤ 1.25×).

Over one WebSocket (\`graphql-transport-ws\`, \`examples/ws_load.rs\`; each query passes the same
admission as over HTTP), pinned:

| operations in flight | WebSocket queries/s (one socket) | HTTP req/s (as many keep-alive connections) | ratio |
|---|---|---|---|
$ws_rows
Memory (resident set) of the Gantry process:

| after start | after the run above ($(printf "%'d" "$served") authenticated requests) | after ${IDLE_SECS:-30} s idle | target |
|---|---|---|---|
| $rss_start MiB | **$rss_loaded MiB** | **$rss_idle MiB** | ≤ 64 MB |

The baseline: $bare_rss_start MiB after start, $bare_rss_loaded MiB after the run, $bare_rss_idle MiB idle.
MD
)
echo "$section"
if [ "${1:-}" = "--write" ]; then
  python3 - "$section" <<'PY'
import re, sys, pathlib
p = pathlib.Path("BENCHMARKS.md")
section = sys.argv[1].strip() + "\n"
text = p.read_text() if p.exists() else "# Benchmarks\n\nFigures are ratios against a baseline measured in the same run.\n\n"
pattern = re.compile(r"## Authenticated `\{ viewer \{ id \} \}` vs bare async-graphql-axum\n.*?(?=\n### What moved|\n## |\Z)", re.S)
text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
p.write_text(text)
PY
fi
