#!/usr/bin/env bash
# The developer console's figures, in one run (release build, SQLite + in-process):
#  1. its JavaScript, gzipped: every file the built index.html loads (console/scripts/size.mjs;
#     budget 350 KB — the build refuses more);
#  2. the dashboard's first render with data: `console/e2e/dashboard.mjs` in headless Chromium
#     against a local server — from opening /console/ (signing in with a key included) and from
#     signing in, to both charts drawn with data — and an in-app navigation back to it.
# Prints a Markdown section; --write puts it in BENCHMARKS.md.
# Usage: benches/console.sh [--write]   (env: NO_BUILD=1 ROUNDS=3 CHROMIUM_PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin gantry
TARGET="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

(cd console && { [ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null; } && npx vite build --outDir "$work/dist" --emptyOutDir >/dev/null)
size_out=$(node console/scripts/size.mjs "$work/dist")
bytes=$(echo "$size_out" | awk '/console-js-gzip-bytes:/ {print $2}')

port=18290
base="http://127.0.0.1:$port"
rows=""
for r in $(seq 1 "$ROUNDS"); do
  rm -rf "$work/data"
  GANTRY_BIND=127.0.0.1:$port GANTRY_DATA_DIR="$work/data" GANTRY_LOG=warn "$TARGET/gantry" serve >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "$base/healthz" && break; sleep 0.1; done
  out=$(GANTRY_URL="$base" CONSOLE_SCREENSHOTS="$work/shots" node console/e2e/dashboard.mjs)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  cold=$(echo "$out" | awk '/^dashboard-first-render-ms:/ {print $2}')
  signed=$(echo "$out" | awk '/^dashboard-signed-in-render-ms:/ {print $2}')
  nav=$(echo "$out" | awk '/^dashboard-nav-render-ms:/ {print $2}')
  rows="$rows| $r | $cold | $signed | $nav |
"
done

section=$(cat <<MD
## Developer console

Measured $(date -u +%Y-%m-%d) by \`benches/console.sh\` on this machine ($(nproc) cores): release build,
SQLite + in-process, headless Chromium (\`console/e2e/dashboard.mjs\`) on the same machine.

**JavaScript: $(python3 -c "print(f'{$bytes/1024:.0f}')") KB gzipped** ($bytes bytes: every script the built page loads; budget 350 KB, enforced
by the build).

Dashboard first render with data (both charts drawn from the calls the test made, the stats, quota and
alerts loaded), a fresh server each round:

| round | open /console/ → drawn (sign-in with a key included), ms | signed in → drawn, ms | in-app navigation back → drawn, ms |
|---|---|---|---|
${rows}
MD
)
echo "$section"
if [ "${1:-}" = "--write" ]; then
  python3 - "$section" <<'PY'
import re, sys, pathlib
p = pathlib.Path("BENCHMARKS.md")
section = sys.argv[1].strip() + "\n"
text = p.read_text()
pattern = re.compile(r"## Developer console\n.*?(?=\n## |\Z)", re.S)
text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
p.write_text(text)
PY
fi
