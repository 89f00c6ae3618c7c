#!/usr/bin/env node
// Sums the gzipped size of every JavaScript file the built console loads: the scripts and
// module preloads of index.html and, transitively, every chunk they import (static or dynamic).
//
//   npm run build && npm run size            # reads dist/
//   node scripts/size.mjs path/to/outDir     # another build directory
//
// Prints `console-js-gzip-bytes: N`; exits 1 when N is over the 350 KB budget.

import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const BUDGET = 350 * 1024;
const HERE = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(process.argv[2] || process.env.CONSOLE_DIST || path.join(HERE, '..', 'dist'));
const indexPath = path.join(dist, 'index.html');
if (!existsSync(indexPath)) {
  console.error(`FAIL: ${indexPath} does not exist; run \`npm run build\` first`);
  process.exit(1);
}
const BASE = '/console/';

/** A URL from index.html or a chunk to a file in dist (null for anything not ours). */
function toFile(url, from) {
  if (/^(https?:)?\/\//.test(url) || url.startsWith('data:')) return null;
  if (url.startsWith(BASE)) return path.join(dist, url.slice(BASE.length));
  if (url.startsWith('/')) return path.join(dist, url.slice(1));
  return path.resolve(path.dirname(from), url);
}

const html = readFileSync(indexPath, 'utf8');
const queue = [];
for (const m of html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"[^>]*>/g)) queue.push(toFile(m[1], indexPath));
for (const m of html.matchAll(/<link\b[^>]*rel="modulepreload"[^>]*href="([^"]+)"[^>]*>/g)) queue.push(toFile(m[1], indexPath));
if (/<script\b(?![^>]*\bsrc=)[^>]*>\s*\S/.test(html)) {
  console.error('FAIL: index.html has an inline script (the CSP forbids it)');
  process.exit(1);
}

const seen = new Map();
while (queue.length) {
  const file = queue.shift();
  if (!file || seen.has(file) || !file.endsWith('.js')) continue;
  if (!existsSync(file)) {
    console.error(`FAIL: ${path.relative(dist, file)} is referenced but missing`);
    process.exit(1);
  }
  const src = readFileSync(file);
  seen.set(file, gzipSync(src, { level: 9 }).length);
  const text = src.toString('utf8');
  const refs = [
    ...text.matchAll(/\bimport\s*(?:[\w*{}\s,$]+from\s*)?["']([^"']+\.js)["']/g),
    ...text.matchAll(/\bimport\(\s*["']([^"']+\.js)["']\s*\)/g),
    // Vite's preload helper lists dependency chunks as string literals ("assets/x.js").
    ...text.matchAll(/["']((?:\.\.?\/|assets\/)[\w./-]+\.js)["']/g),
  ];
  for (const m of refs) {
    const u = m[1];
    queue.push(u.startsWith('assets/') ? path.join(dist, u) : toFile(u, file));
  }
}

let total = 0;
for (const [file, gz] of [...seen].sort((a, b) => b[1] - a[1])) {
  total += gz;
  console.log(`  ${path.relative(dist, file).padEnd(40)} ${String(gz).padStart(8)} B gzip`);
}
console.log(`console-js-gzip-bytes: ${total}`);
if (total > BUDGET) {
  console.error(`FAIL: ${total} B is over the budget of ${BUDGET} B (350 KB)`);
  process.exit(1);
}
