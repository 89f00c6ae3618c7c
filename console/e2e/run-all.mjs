#!/usr/bin/env node
// Runs every console browser test in turn (npm run e2e).
//
//   GANTRY_URL=http://127.0.0.1:PORT npm run e2e
//
// On a fresh server the administrator account the admin journeys use is registered first, so it
// is the platform administrator (or set GANTRY_ADMIN_EMAIL / GANTRY_ADMIN_PASSWORD).

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminUser } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCRIPTS = ['keys.mjs', 'webhooks.mjs', 'billing.mjs', 'apps.mjs', 'dashboard.mjs', 'pages.mjs'];

try {
  await adminUser();
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  console.error('console-e2e: 0 passed, 1 failed');
  process.exit(1);
}

let passed = 0;
const failed = [];
for (const s of SCRIPTS) {
  console.log(`\n=== ${s}`);
  const r = spawnSync(process.execPath, [path.join(HERE, s)], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', env: process.env });
  process.stdout.write(r.stdout || '');
  const m = /console-e2e: (\d+) passed, (\d+) failed/.exec(r.stdout || '');
  if (m) passed += Number(m[1]);
  if (r.status !== 0) failed.push(s);
}
console.log(`\n${SCRIPTS.length - failed.length} of ${SCRIPTS.length} scripts passed${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
console.log(`console-e2e: ${passed} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
