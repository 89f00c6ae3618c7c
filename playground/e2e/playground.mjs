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
// Steps: open /playground/ (with its first script held back for a moment, so the static
// "Loading the playground…" element must be on screen before GraphiQL and gone after), check no
// request leaves localhost and no Content-Security-Policy violation is reported, enter the token,
// run `query { viewer { id } }` over HTTP, then run `subscription { events { type data } }`
// over WebSocket while this script (not the browser) creates API keys named
// "from-e2e" through POST /graphql until the key.created event shows up.
// Then: put a header in the headers pane and open the "Export code" panel: the curl, JavaScript
// and Python snippets must show the operation, its variables, the endpoint, the token and that
// header, and the JavaScript snippet (and the curl one, when curl is installed) run here
// against the server must return data. Last, open saved-collection entries (ListKeys from the
// Collections panel, GetKey from the header picker with the id of a key this script created):
// their query and variables land in the editors and running them returns data.
// Exits 0 on success, 1 with a message on failure. Bounded to 60 s overall.

import { chromium } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { SAMPLES } from '../src/samples.js';

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

/** The text of the variables (index 0) or headers (index 1) editor. */
async function readToolEditor(page, index) {
  return page.evaluate((i) => {
    const el = document.querySelectorAll('.graphiql-editor-tool .graphiql-editor')[i]?.querySelector('.CodeMirror');
    return el && el.CodeMirror ? el.CodeMirror.getValue() : null;
  }, index);
}

/** Shows the variables or headers pane and replaces its contents. */
async function setToolEditor(page, name, text) {
  await page.click(`.graphiql-editor-tools button[data-name="${name}"]`);
  const index = name === 'variables' ? 0 : 1;
  const ok = await page.evaluate(
    ([i, value]) => {
      const el = document.querySelectorAll('.graphiql-editor-tool .graphiql-editor')[i]?.querySelector('.CodeMirror');
      if (!el || !el.CodeMirror) return false;
      el.CodeMirror.setValue(value);
      return true;
    },
    [index, text],
  );
  if (!ok) throw new Error(`the ${name} editor was not found`);
  await page.waitForTimeout(300); // the tab state follows the editor on a 100 ms debounce
}

async function readQuery(page) {
  return page.evaluate(() => {
    const el = document.querySelector('.graphiql-query-editor .CodeMirror');
    return el && el.CodeMirror ? el.CodeMirror.getValue() : null;
  });
}

/** Stops a running operation (a subscription): the execute button is then a stop button. */
async function stopIfRunning(page) {
  const label = await page.getAttribute('.graphiql-execute-button', 'aria-label');
  if (label && label.startsWith('Stop')) {
    await clickRun(page);
    await pollUntil(
      async () => ((await page.getAttribute('.graphiql-execute-button', 'aria-label')) ?? '').startsWith('Execute'),
      { timeoutMs: 5_000, what: 'the subscription to stop' },
    );
  }
}

/** Waits for a JSON result in the response pane that has `data` and no `errors`; returns it. */
async function waitForData(page, what, accept = () => true) {
  let last = '';
  try {
    return await pollUntil(
      async () => {
        last = await readResult(page);
        try {
          const json = JSON.parse(last);
          return json && json.data && !json.errors && accept(json.data) ? json : null;
        } catch {
          return null;
        }
      },
      { timeoutMs: 15_000, what },
    );
  } catch (e) {
    throw new Error(`${e.message}; result panel shows: ${JSON.stringify(last.slice(0, 500))}`);
  }
}

/** Runs a snippet (`sh` or `node`) here, against the server; returns its parsed JSON output. */
function runSnippet(kind, code) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gantry-snippet-'));
  try {
    const file = path.join(dir, kind === 'node' ? 'snippet.mjs' : 'snippet.sh');
    writeFileSync(file, code, 'utf8');
    const r = spawnSync(kind === 'node' ? process.execPath : '/bin/sh', [file], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (r.status !== 0) throw new Error(`the ${kind} snippet exited ${r.status}: ${r.stderr || r.error}`);
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new Error(`the ${kind} snippet printed no JSON: ${r.stdout.slice(0, 300)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
  try {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE_URL });
  } catch {
    // Without the permission the copy button falls back to execCommand; the clipboard is then not read back.
  }
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

  // a. open the playground and wait for GraphiQL. The page's first script is held back for a
  // moment so the static loading element can be seen before GraphiQL renders.
  const url = `${BASE_URL}/playground/`;
  const html = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).text();
  if (!/id="gantry-loading"[^>]*>[\s\S]*Loading the playground…/.test(html)) {
    throw new Error('the served page has no "Loading the playground…" element');
  }
  if (/<script(?![^>]*\ssrc=)[^>]*>/i.test(html)) throw new Error('the served page has an inline <script>');
  let heldBack = null;
  await page.route(
    (u) => u.pathname.startsWith('/playground/'),
    async (route) => {
      if (!heldBack && route.request().resourceType() === 'script') {
        heldBack = route.request().url();
        await sleep(1_000);
      }
      await route.fallback();
    },
  );
  log(`opening ${url}`);
  const resp = await page.goto(url, { waitUntil: 'commit', timeout: 20_000 });
  if (!resp || !resp.ok()) throw new Error(`GET ${url} answered ${resp ? resp.status() : 'nothing'}`);
  await page.waitForSelector('#gantry-loading', { state: 'visible', timeout: 5_000 });
  const loadingText = await page.textContent('#gantry-loading');
  if (!loadingText.includes('Loading the playground…')) throw new Error(`loading element says ${loadingText}`);
  if (await page.$('.graphiql-container')) throw new Error('GraphiQL rendered before the loading element was seen');
  log(`loading element shown (held back ${heldBack ?? 'no script'})`);
  await page.waitForLoadState('load', { timeout: 20_000 });
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  await page.waitForSelector('.graphiql-container', { state: 'visible' });
  await page.waitForSelector('.graphiql-query-editor', { state: 'visible' });
  await page.waitForSelector('.graphiql-execute-button', { state: 'visible' });
  await page.waitForSelector('#gantry-token', { state: 'visible' });
  const title = await page.textContent('header');
  if (!title || !title.includes('Gantry playground')) throw new Error('header title "Gantry playground" not found');
  await page.waitForSelector('#gantry-loading', { state: 'detached', timeout: 5_000 });
  log('GraphiQL rendered; loading element removed');
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
  await stopIfRunning(page);

  // e. code export: the operation, its variables, the token and a header from the headers pane
  const exportQuery = 'query ExportMe($first: Int) {\n  apiKeys(first: $first) { totalCount }\n}\n';
  await setQuery(page, exportQuery);
  await setToolEditor(page, 'variables', '{ "first": 2 }');
  await setToolEditor(page, 'headers', '{ "X-Gantry-E2e": "export-check" }');
  await page.click('button[aria-label="Show Export code"]');
  await page.waitForSelector('#gantry-export [data-language="python"] pre', { state: 'visible' });
  const snippets = {};
  for (const lang of ['curl', 'javascript', 'python']) {
    snippets[lang] = await page.textContent(`#gantry-export [data-language="${lang}"] pre`);
    const code = snippets[lang];
    for (const needle of [`${BASE_URL}/graphql`, 'X-Gantry-E2e', 'export-check', `Bearer ${TOKEN}`, 'application/json', 'ExportMe', '"first"']) {
      if (!code.includes(needle)) throw new Error(`the ${lang} snippet lacks ${needle}:\n${code}`);
    }
  }
  if (!snippets.curl.startsWith(`curl '${BASE_URL}/graphql'`)) throw new Error(`unexpected curl snippet:\n${snippets.curl}`);
  if (!snippets.python.includes('requests.post(')) throw new Error(`unexpected Python snippet:\n${snippets.python}`);
  // The copy button puts the snippet on the clipboard.
  await page.click('#gantry-export [data-language="javascript"] .gantry-copy');
  await page.waitForSelector('#gantry-export [data-language="javascript"] .gantry-copy:text("Copied")', { timeout: 5_000 });
  const clip = await page.evaluate(() => navigator.clipboard.readText().catch(() => null));
  if (clip !== null && clip !== snippets.javascript) throw new Error('the clipboard does not hold the JavaScript snippet');
  log(`export panel shows curl, JavaScript and Python for ExportMe with the pane header${clip !== null ? ' (copied)' : ''}`);
  // The snippets run as printed: JavaScript in node, curl in sh when curl is installed.
  const ran = ['javascript'];
  const fromJs = runSnippet('node', snippets.javascript);
  if (typeof fromJs?.data?.apiKeys?.totalCount !== 'number') throw new Error(`the JavaScript snippet got ${JSON.stringify(fromJs)}`);
  if (spawnSync('curl', ['--version']).status === 0) {
    const fromCurl = runSnippet('sh', snippets.curl.replace(/^curl /, 'curl --silent --show-error '));
    if (fromCurl?.data?.apiKeys?.totalCount !== fromJs.data.apiKeys.totalCount) {
      throw new Error(`the curl snippet got ${JSON.stringify(fromCurl)}`);
    }
    ran.push('curl');
  }
  log(`exported ${ran.join(' and ')} snippets ran against the server: apiKeys.totalCount = ${fromJs.data.apiKeys.totalCount}`);
  await setToolEditor(page, 'headers', '');

  // f. saved collections: open ListKeys from the Collections panel, run it
  const listKeys = SAMPLES.find((s) => s.name === 'ListKeys');
  await page.click('button[aria-label="Show Collections"]');
  await page.click('#gantry-collections button[data-name="ListKeys"]');
  await pollUntil(async () => (await readQuery(page)) === listKeys.query, { timeoutMs: 5_000, what: 'the ListKeys query in the editor' });
  const listVars = await readToolEditor(page, 0);
  if (listVars !== listKeys.variables) throw new Error(`the variables editor holds ${JSON.stringify(listVars)}, not ListKeys' variables`);
  await page.waitForTimeout(400);
  await clickRun(page);
  const listed = await waitForData(page, 'ListKeys data', (d) => d.apiKeys?.edges?.some((e) => e.node.name === 'from-e2e'));
  log(`collection entry ListKeys loaded with its variables and returned ${listed.data.apiKeys.totalCount} keys`);

  // g. GetKey from the header picker, with the id of a key this script creates
  const created = await fetch(`${BASE_URL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ query: TRIGGER_MUTATION }),
    signal: AbortSignal.timeout(5_000),
  }).then((r) => r.json());
  const keyId = created?.data?.createApiKey?.apiKey?.id;
  if (!keyId) throw new Error(`creating a key for GetKey answered ${JSON.stringify(created)}`);
  const getKey = SAMPLES.find((s) => s.name === 'GetKey');
  await page.selectOption('#gantry-sample', 'GetKey');
  await pollUntil(async () => (await readQuery(page)) === getKey.query, { timeoutMs: 5_000, what: 'the GetKey query in the editor' });
  if ((await readToolEditor(page, 0)) !== getKey.variables) throw new Error("the variables editor does not hold GetKey's variables");
  await setToolEditor(page, 'variables', JSON.stringify({ ...JSON.parse(getKey.variables), id: keyId }, null, 2));
  await clickRun(page);
  await waitForData(page, `GetKey data for ${keyId}`, (d) => d.apiKey?.id === keyId && Array.isArray(d.apiKey.usage));
  log(`collection entry GetKey (header picker) returned key ${keyId}`);

  if (foreign.length) throw new Error(`requests to non-localhost hosts: ${foreign.join(', ')}`);
  const csp = diagnostics.filter((d) => /Content Security Policy/i.test(d));
  if (csp.length) throw new Error(`Content-Security-Policy violations: ${csp.join(' | ')}`);

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
