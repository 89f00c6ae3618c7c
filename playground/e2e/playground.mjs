#!/usr/bin/env node
// Browser test of the Gantry playground, run in real (headless) Chromium.
//
//   GANTRY_URL=http://127.0.0.1:PORT \
//   GANTRY_TOKEN=<API key with scope *> \
//   GANTRY_EXPECT_VIEWER_ID=<id the viewer query returns> \
//   node playground/e2e/playground.mjs
//
// Optional: CHROMIUM_PATH (default /usr/bin/chromium).
//
// Steps: open /playground/, check no request leaves localhost, enter the token,
// run `query { viewer { id } }` over HTTP, then run `subscription { events { type data } }`
// over WebSocket while this script (not the browser) creates API keys named
// "from-e2e" through POST /graphql until the key.created event shows up.
// Exits 0 on success, 1 with a message on failure. Bounded to 60 s overall.

import { chromium } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCREENSHOT = path.join(HERE, 'last-run.png');
const OVERALL_TIMEOUT_MS = 60_000;
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const TRIGGER_MUTATION =
  'mutation { createApiKey(input: {name: "from-e2e", scopes: ["keys:read"], environment: TEST}) { apiKey { id } } }';

const started = Date.now();
let browser = null;
const diagnostics = [];

function log(msg) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  console.log(`[playground-e2e ${t}s] ${msg}`);
}

async function fail(msg) {
  console.error(`\nFAIL: ${msg}`);
  if (diagnostics.length) {
    console.error('\nBrowser diagnostics (last 30):');
    for (const d of diagnostics.slice(-30)) console.error(`  ${d}`);
  }
  try {
    await browser?.close();
  } catch {
    // ignore
  }
  console.error('playground-e2e: 0 passed, 1 failed');
  process.exit(1);
}

const watchdog = setTimeout(() => {
  fail(`overall timeout: the test did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`);
}, OVERALL_TIMEOUT_MS - 1_000);

function requireEnv(name) {
  const v = process.env[name];
  if (!v || !v.trim()) {
    console.error(`FAIL: environment variable ${name} is required`);
    process.exit(2);
  }
  return v.trim();
}

const BASE_URL = requireEnv('GANTRY_URL').replace(/\/+$/, '');
const TOKEN = requireEnv('GANTRY_TOKEN');
const EXPECT_VIEWER_ID = requireEnv('GANTRY_EXPECT_VIEWER_ID');
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
async function pollUntil(fn, { timeoutMs, intervalMs = 200, what }) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

function isLocalUrl(raw) {
  let u;
  try {
    u = new URL(raw);
  } catch {
    return true; // not a URL we can judge (should not happen)
  }
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:') return true;
  return LOCAL_HOSTS.has(u.hostname);
}

/** Replaces the query editor's contents (CodeMirror 5 in GraphiQL 3/4, keyboard fallback otherwise). */
async function setQuery(page, text) {
  const viaApi = await page.evaluate((value) => {
    const el = document.querySelector('.graphiql-query-editor .CodeMirror');
    if (!el || !el.CodeMirror) return false;
    el.CodeMirror.setValue(value);
    return true;
  }, text);
  if (!viaApi) {
    // Fallback for a non-CodeMirror editor (e.g. Monaco in GraphiQL 5).
    await page.click('.graphiql-query-editor');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(text);
  }
  // GraphiQL re-parses the query (operation type, name) on a 100 ms debounce;
  // the execute button relies on that, so let it settle.
  await page.waitForTimeout(400);
}

async function readResult(page) {
  return page.evaluate(() => {
    const el = document.querySelector('.graphiql-response .CodeMirror');
    if (el && el.CodeMirror) return el.CodeMirror.getValue();
    const panel = document.querySelector('.graphiql-response .result-window, .graphiql-response');
    return panel ? panel.innerText : '';
  });
}

async function clickRun(page) {
  await page.click('.graphiql-execute-button');
}

async function triggerEvent() {
  const res = await fetch(`${BASE_URL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ query: TRIGGER_MUTATION }),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  return { status: res.status, text };
}

async function main() {
  log(`launching ${CHROMIUM_PATH}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 20_000,
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);

  const foreign = [];
  page.on('request', (req) => {
    if (!isLocalUrl(req.url())) foreign.push(req.url());
  });
  page.on('websocket', (ws) => {
    if (!isLocalUrl(ws.url())) foreign.push(ws.url());
    diagnostics.push(`websocket opened ${ws.url()}`);
    ws.on('close', () => diagnostics.push(`websocket closed ${ws.url()}`));
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') diagnostics.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => diagnostics.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => diagnostics.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400) diagnostics.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });

  // a. open the playground and wait for GraphiQL
  const url = `${BASE_URL}/playground/`;
  log(`opening ${url}`);
  const resp = await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
  if (!resp || !resp.ok()) throw new Error(`GET ${url} answered ${resp ? resp.status() : 'nothing'}`);
  await page.waitForSelector('.graphiql-container', { state: 'visible' });
  await page.waitForSelector('.graphiql-query-editor', { state: 'visible' });
  await page.waitForSelector('.graphiql-execute-button', { state: 'visible' });
  await page.waitForSelector('#gantry-token', { state: 'visible' });
  const title = await page.textContent('header');
  if (!title || !title.includes('Gantry playground')) throw new Error('header title "Gantry playground" not found');
  log('GraphiQL rendered');
  if (foreign.length) throw new Error(`requests to non-localhost hosts: ${foreign.join(', ')}`);

  // b. enter the token; a new fetcher re-runs introspection with it
  const authed = page.waitForResponse(
    (r) => r.url().endsWith('/graphql') && r.request().headers()['authorization'] === `Bearer ${TOKEN}`,
    { timeout: 15_000 },
  );
  await page.fill('#gantry-token', TOKEN);
  await page.press('#gantry-token', 'Enter');
  await page.waitForSelector('#gantry-token[data-applied="true"]');
  const introspection = await authed;
  log(`token applied; schema request with the token answered ${introspection.status()}`);
  const stored = await page.evaluate(() => window.localStorage.getItem('gantry.playground.token'));
  if (stored !== TOKEN) throw new Error('the token was not persisted in localStorage');

  // c. viewer query over HTTP
  await setQuery(page, 'query { viewer { id } }');
  await clickRun(page);
  try {
    await pollUntil(async () => (await readResult(page)).includes(EXPECT_VIEWER_ID), {
      timeoutMs: 15_000,
      what: `the viewer id ${EXPECT_VIEWER_ID}`,
    });
  } catch (e) {
    throw new Error(`${e.message}; result panel shows: ${JSON.stringify(await readResult(page))}`);
  }
  log(`viewer query returned ${EXPECT_VIEWER_ID}`);

  // d. subscription over WebSocket
  await setQuery(page, 'subscription { events { type data } }');
  await clickRun(page);
  log('subscription started; creating "from-e2e" keys until the event arrives');
  const subDeadline = Date.now() + 20_000;
  let lastTrigger = null;
  let triggers = 0;
  let result = '';
  for (;;) {
    try {
      lastTrigger = await triggerEvent();
    } catch (e) {
      lastTrigger = { status: 0, text: String(e) };
    }
    triggers += 1;
    await sleep(500);
    result = await readResult(page);
    if (result.includes('key.created') && result.includes('from-e2e')) break;
    if (Date.now() > subDeadline) {
      throw new Error(
        `no key.created/from-e2e event in the result panel after 20 s (${triggers} trigger mutations; ` +
          `last trigger answered ${lastTrigger.status}: ${lastTrigger.text.slice(0, 300)}); ` +
          `result panel shows: ${JSON.stringify(result.slice(0, 500))}`,
      );
    }
  }
  log(`subscription event received after ${triggers} trigger mutation(s)`);

  if (foreign.length) throw new Error(`requests to non-localhost hosts: ${foreign.join(', ')}`);

  // e. screenshot
  await page.screenshot({ path: SCREENSHOT });
  log(`screenshot saved to ${SCREENSHOT}`);
  await browser.close();
  browser = null;
}

main()
  .then(() => {
    clearTimeout(watchdog);
    console.log('playground-e2e: 1 passed, 0 failed');
    process.exit(0);
  })
  .catch((e) => fail(e?.message ?? String(e)));
