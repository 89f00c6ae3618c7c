#!/usr/bin/env bash
# REST overhead and batch verification, in one run on one server (SQLite + in-process, release
# build; gantry pinned to core 0, wrk to core 1):
#  1. `GET /api/v1/keys` (a page of 20 of 101 keys) against the same GraphQL operation posted to
#     /graphql — the document the REST row runs, taken from the OpenAPI document — alternating
#     rounds; the ratio is REST's cost over GraphQL's.
#  2. `POST /api/v1/keys/verify/batch` with 100 distinct keys against `POST /api/v1/keys/verify`
#     with one: keys verified per second each way.
# Prints a Markdown section; --write puts it in BENCHMARKS.md.
# Usage: benches/rest.sh [--write]   (env: DURATION=5s CONNECTIONS=32 ROUNDS=3 NO_BUILD=1)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5s}"
CONNECTIONS="${CONNECTIONS:-32}"
ROUNDS="${ROUNDS:-3}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin gantry
TARGET="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
PIN_SERVER="taskset -c 0"; PIN_LOAD="taskset -c 1"
[ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null || { PIN_SERVER=""; PIN_LOAD=""; }

port=18190
base="http://127.0.0.1:$port"
GANTRY_BIND=127.0.0.1:$port GANTRY_DATA_DIR="$work/data" GANTRY_LOG=info $PIN_SERVER "$TARGET/gantry" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "$base/healthz" && break; sleep 0.1; done
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
gql() { curl -s "$base/graphql" -H 'content-type: application/json' "$@"; }
reg=$(gql -d '{"query":"mutation { register(input: {email: \"bench@example.com\", password: \"correct horse battery\"}) { session { token } user { personalOrganizationId } } }"}')
session=$(echo "$reg" | json 'd["data"]["register"]["session"]["token"]')
org=$(echo "$reg" | json 'd["data"]["register"]["user"]["personalOrganizationId"]')
enterprise=pln_0000000000000000enterprise
gql -H "authorization: Bearer $session" -d "{\"query\":\"mutation { updatePlan(id: \\\"$enterprise\\\", input: {perDay: null, maxApiKeys: null, queryCostBucket: 100000000, queryCostRestoreRate: 100000000}) { slug } }\"}" >/dev/null
gql -H "authorization: Bearer $session" -d "{\"query\":\"mutation { setOrganizationPlan(organizationId: \\\"$org\\\", planId: \\\"$enterprise\\\") { slug } }\"}" >/dev/null
key() { gql -H "authorization: Bearer $session" -d "{\"query\":\"mutation { createApiKey(input: {name: \\\"$1\\\", scopes: [\\\"$2\\\"], rateLimit: {perSecond: 100000000}}) { secret } }\"}" | json 'd["data"]["createApiKey"]["secret"]'; }
caller=$(key caller '*')
: >"$work/keys"
for i in $(seq 1 100); do key "k$i" usage:read >>"$work/keys"; done

# The GraphQL operation the REST row runs, from the document.
doc=$(curl -s "$base/api/v1/openapi.json" | json 'd["paths"]["/api/v1/keys"]["get"]["x-graphql-operation"]')
python3 - "$doc" "$work" "$caller" <<'PY'
import json, sys
doc, work, caller = sys.argv[1], sys.argv[2], sys.argv[3]
keys = [k.strip() for k in open(f"{work}/keys") if k.strip()]
def lua(name, method, body):
    with open(f"{work}/{name}.lua", "w") as f:
        f.write(f'wrk.method = "{method}"\n')
        if body is not None:
            f.write("wrk.body = [==[" + json.dumps(body) + "]==]\n")
            f.write('wrk.headers["content-type"] = "application/json"\n')
        f.write(f'wrk.headers["authorization"] = "Bearer {caller}"\n')
lua("rest", "GET", None)
lua("graphql", "POST", {"query": doc, "variables": {"includeRevoked": False}})
lua("batch", "POST", {"keys": keys})
lua("single", "POST", {"key": keys[0]})
PY
check() { # name url -> fails unless 200 and a success envelope / data
  local out
  out=$(curl -s -o /dev/null -w '%{http_code}' "$@")
  [ "$out" = 200 ] || { echo "check failed ($out): $*" >&2; exit 1; }
}
check "$base/api/v1/keys" -H "authorization: Bearer $caller"
n=$(curl -s "$base/api/v1/keys/verify/batch" -H "authorization: Bearer $caller" -H 'content-type: application/json' --data-binary @<(python3 -c "import json; print(json.dumps({'keys': [k.strip() for k in open('$work/keys') if k.strip()]}))") | json 'd["data"]["valid"]')
[ "$n" = 100 ] || { echo "the batch did not verify 100 keys: $n" >&2; exit 1; }

measure() { # lua url -> "rps p99"
  $PIN_LOAD wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$work/$1.lua" --latency "$2" >"$work/$1.wrk"
  if grep -q "Non-2xx" "$work/$1.wrk"; then echo "non-2xx responses ($1):" >&2; cat "$work/$1.wrk" >&2; exit 1; fi
  echo "$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/$1.wrk") $(awk '/ 99%/ {print $2}' "$work/$1.wrk")"
}
# Warm both paths.
wrk -t1 -c8 -d2s -s "$work/rest.lua" "$base/api/v1/keys" >/dev/null
wrk -t1 -c8 -d2s -s "$work/graphql.lua" "$base/graphql" >/dev/null
rows_list=""; ratios=""
for r in $(seq 1 "$ROUNDS"); do
  read -r rr rp <<<"$(measure rest "$base/api/v1/keys")"
  read -r gr gp <<<"$(measure graphql "$base/graphql")"
  ratio=$(python3 -c "print(f'{$rr/$gr:.2f}')")
  ratios="$ratios $ratio"
  rows_list="$rows_list| $r | $rr | $rp | $gr | $gp | ${ratio}× |
"
done
median=$(python3 -c "import statistics; print(f'{statistics.median([float(x) for x in \"$ratios\".split()]):.2f}')")
overhead=$(python3 -c "print(f'{(1/$median - 1)*100:.0f}')")

rows_verify=""
for r in $(seq 1 "$ROUNDS"); do
  read -r br bp <<<"$(measure batch "$base/api/v1/keys/verify/batch")"
  read -r sr sp <<<"$(measure single "$base/api/v1/keys/verify")"
  rows_verify="$rows_verify| $r | $br | $((br * 100)) | $bp | $sr | $sp | $(python3 -c "print(f'{$br*100/$sr:.1f}')")× |
"
done

# Instructions per call, counted by callgrind (repeatable, whatever else the machine does): the
# same server data restarted under valgrind, CALLS of each after a warm-up, counted apart.
CALLS="${CALLS:-200}"
kill "$pid"; wait "$pid" 2>/dev/null || true
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
GANTRY_BIND=127.0.0.1:$port GANTRY_DATA_DIR="$work/data" GANTRY_LOG=warn valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$work/cg.out" "$TARGET/gantry" serve >"$work/valgrind.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do curl -s -o /dev/null "$base/healthz" && break; sleep 0.2; done
python3 -c "import json,sys; print(json.dumps({'query': sys.argv[1], 'variables': {'includeRevoked': False}}))" "$doc" >"$work/graphql.json"
{ echo "header = \"authorization: Bearer $caller\""; for _ in $(seq 1 "$CALLS"); do echo "url = \"$base/api/v1/keys\""; echo "output = /dev/null"; done; } >"$work/rest.curl"
{ echo "header = \"authorization: Bearer $caller\""; echo 'header = "content-type: application/json"'; echo "data-binary = \"@$work/graphql.json\""
  for _ in $(seq 1 "$CALLS"); do echo "url = \"$base/graphql\""; echo "output = /dev/null"; done; } >"$work/graphql.curl"
head -n 11 "$work/rest.curl" | curl -s -K - ; head -n 13 "$work/graphql.curl" | curl -s -K -   # warm both
callgrind_control -i on "$pid" >/dev/null
curl -s -K "$work/rest.curl"
callgrind_control -d rest "$pid" >/dev/null
callgrind_control -z "$pid" >/dev/null
curl -s -K "$work/graphql.curl"
callgrind_control -d graphql "$pid" >/dev/null
total() { awk '/^summary:/ {print $2}' "$1"; }
ir_rest=$(( $(total "$work/cg.out.1") / CALLS )); ir_graphql=$(( $(total "$work/cg.out.2") / CALLS ))
ir_ratio=$(python3 -c "print(f'{$ir_rest/$ir_graphql:.3f}')")
ir_overhead=$(python3 -c "d=($ir_rest/$ir_graphql - 1)*100; print(f'REST {d:.1f} % more' if d >= 0 else f'REST {-d:.1f} % fewer')")

section=$(cat <<MD
## REST over GraphQL, and batch verification

Measured $(date -u +%Y-%m-%d) by \`benches/rest.sh\` on this machine ($(nproc) cores), release build,
SQLite + in-process; gantry pinned to core 0, wrk (1 thread, $CONNECTIONS connections, $DURATION per
round) on core 1; the two sides of each table alternate in the same run against the same server.

\`GET /api/v1/keys\` (a page of 20 of 101 keys, authenticated with a key) against the same GraphQL
operation — the document the REST row executes, from its \`x-graphql-operation\` — posted to
\`/graphql\`. REST adds binding the request to typed variables, the envelope, snake_case keys by
type and the version headers.

| round | REST req/s | p99 | GraphQL req/s | p99 | REST / GraphQL |
|---|---|---|---|---|---|
${rows_list}
**Median ratio ${median}×: REST costs ${overhead} % more than GraphQL per call** (target ≤ 15 %).

The same two calls counted in CPU instructions by callgrind — repeatable, unlike requests per
second on a shared machine — $CALLS of each on the same server restarted under valgrind, after a
warm-up:

| | instructions per call |
|---|---|
| REST \`GET /api/v1/keys\` | $(python3 -c "print(f'{$ir_rest:,}')") |
| GraphQL, same operation | $(python3 -c "print(f'{$ir_graphql:,}')") |
| **REST / GraphQL** | **${ir_ratio}× (${ir_overhead})** |

\`POST /api/v1/keys/verify/batch\` with 100 distinct keys against \`POST /api/v1/keys/verify\` with one
(each key verified, rate-limited as its own use and metered, in both):

| round | batches/s | keys verified/s | p99 | single verifications/s | p99 | keys/s, batch over single |
|---|---|---|---|---|---|---|
${rows_verify}
MD
)
echo "$section"
if [ "${1:-}" = "--write" ]; then
  python3 - "$section" <<'PY'
import re, sys, pathlib
p = pathlib.Path("BENCHMARKS.md")
section = sys.argv[1].strip() + "\n"
text = p.read_text()
pattern = re.compile(r"## REST over GraphQL, and batch verification\n.*?(?=\n## |\Z)", re.S)
text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
p.write_text(text)
PY
fi
