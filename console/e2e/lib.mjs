// Shared helpers of the console's browser tests (playwright-core + Debian's Chromium).
//
// Environment:
//   GANTRY_URL           the server (page at ${GANTRY_URL}/console/, API at ${GANTRY_URL}/graphql)
//   CHROMIUM_PATH        default /usr/bin/chromium
//   CONSOLE_SCREENSHOTS  directory for screenshots (default console/e2e/screenshots)
//   GANTRY_ADMIN_EMAIL / GANTRY_ADMIN_PASSWORD
//                        a platform administrator; without them the tests use
//                        console-e2e-admin@example.com, registering it (on a fresh server the first
//                        account becomes the administrator).
//
// Every request the browser makes must go to GANTRY_URL: anything else fails the test.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const OVERALL_TIMEOUT_MS = 120_000;

export function requireEnv(name) {
  const v = process.env[name];
  if (!v || !v.trim()) {
    console.error(`FAIL: environment variable ${name} is required (e.g. ${name}=http://127.0.0.1:8080)`);
    console.error('console-e2e: 0 passed, 1 failed');
    process.exit(1);
  }
  return v.trim();
}

export const BASE_URL = requireEnv('GANTRY_URL').replace(/\/+$/, '');
export const CONSOLE_URL = `${BASE_URL}/console/`;
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = path.resolve(process.env.CONSOLE_SCREENSHOTS || path.join(HERE, 'screenshots'));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const uid = () => randomBytes(4).toString('hex');

/**
 * One test script: `run(t)` gets the context `t` (browser page, helpers). Prints
 * `console-e2e: N passed, 0 failed` when every step passed, or the failure and exit 1.
 */
export async function suite(name, run) {
  const started = Date.now();
  const state = { browser: null, passed: 0, diagnostics: [], outside: [], pageErrors: [] };
  const log = (msg) => console.log(`[${name} ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${msg}`);
  const fail = async (msg) => {
    console.error(`\nFAIL (${name}): ${msg}`);
    if (state.diagnostics.length) {
      console.error('Browser diagnostics (last 20):');
      for (const d of state.diagnostics.slice(-20)) console.error(`  ${d}`);
    }
    try {
      if (state.page) await shot(state.page, `${name}-failure`);
    } catch {
      // ignore
    }
    await state.browser?.close().catch(() => {});
    console.error(`console-e2e: ${state.passed} passed, 1 failed`);
    process.exit(1);
  };
  const watchdog = setTimeout(() => fail(`overall timeout: not done within ${OVERALL_TIMEOUT_MS / 1000} s`), OVERALL_TIMEOUT_MS);
  watchdog.unref();
  try {
    mkdirSync(SHOTS, { recursive: true });
    state.browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
    const newPage = async ({ width = 1280, height = 860 } = {}) => {
      const context = await state.browser.newContext({ viewport: { width, height } });
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith(`${BASE_URL}/`) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
        state.outside.push(url);
        return route.abort();
      });
      const page = await context.newPage();
      context.on('page', (p) => watch(p));
      watch(page);
      state.page = page;
      return page;
    };
    const watch = (p) => {
      p.on('pageerror', (e) => state.pageErrors.push(String(e)));
      p.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') state.diagnostics.push(`console.${m.type()}: ${m.text()}`);
        if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) state.pageErrors.push(`CSP: ${m.text()}`);
      });
      p.on('requestfailed', (r) => state.diagnostics.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    };
    const step = async (label, fn) => {
      log(`… ${label}`);
      try {
        await fn();
      } catch (e) {
        await fail(`${label}: ${e && e.message ? e.message : e}`);
      }
      if (state.outside.length) await fail(`${label}: the page asked for outside resources: ${state.outside.join(', ')}`);
      if (state.pageErrors.length) await fail(`${label}: page errors: ${state.pageErrors.join('; ')}`);
      state.passed += 1;
      log(`✓ ${label}`);
    };
    await run({ newPage, step, log, fail });
    await state.browser.close();
    clearTimeout(watchdog);
    console.log(`console-e2e: ${state.passed} passed, 0 failed`);
  } catch (e) {
    await fail(e && e.stack ? e.stack : String(e));
  }
}

export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0)).catch(() => {});
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// ---- the API, straight from the script (seeding) ----------------------------------------------

export async function gql(query, variables = {}, { token, orgId } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (orgId) headers['x-organization-id'] = orgId;
  const res = await fetch(`${BASE_URL}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await res.json().catch(() => null);
  if (!body || body.errors?.length) {
    const e = body?.errors?.[0];
    throw new Error(`GraphQL ${res.status}: ${e ? `${e.message} (${e.extensions?.code})` : 'no JSON body'} — ${query.slice(0, 80)}`);
  }
  return body.data;
}

const AUTH = 'user { id email isPlatformAdmin personalOrganizationId } session { token }';

/** Registers a new user; returns `{ email, password, token, user }`. */
export async function registerUser(prefix = 'dev') {
  const email = `${prefix}-${uid()}@example.com`;
  const password = `pw-${uid()}-${uid()}`;
  const d = await gql(`mutation($i: RegisterInput!) { register(input: $i) { ${AUTH} } }`, {
    i: { email, password, name: `${prefix} ${uid().slice(0, 4)}` },
  });
  return { email, password, token: d.register.session.token, user: d.register.user };
}

/** A platform administrator's credentials (see the header). */
export async function adminUser() {
  const email = process.env.GANTRY_ADMIN_EMAIL || 'console-e2e-admin@example.com';
  const password = process.env.GANTRY_ADMIN_PASSWORD || 'console-e2e-admin-password';
  let d;
  try {
    d = (await gql(`mutation($i: LoginInput!) { login(input: $i) { ${AUTH} } }`, { i: { email, password } })).login;
  } catch (e) {
    if (process.env.GANTRY_ADMIN_EMAIL) throw new Error(`cannot sign in as GANTRY_ADMIN_EMAIL ${email}: ${e.message}`);
    d = (await gql(`mutation($i: RegisterInput!) { register(input: $i) { ${AUTH} } }`, { i: { email, password, name: 'Console E2E Admin' } }))
      .register;
  }
  if (!d.user.isPlatformAdmin) {
    throw new Error(
      `${email} is not a platform administrator: run against a fresh server (the first account becomes the administrator) ` +
        'or set GANTRY_ADMIN_EMAIL and GANTRY_ADMIN_PASSWORD to an administrator\'s account',
    );
  }
  return { email, password, token: d.session.token, user: d.user };
}

// ---- the console, through the browser ----------------------------------------------------------

/** Opens the console and signs in with email and password; waits for the dashboard. */
export async function signIn(page, { email, password }, to = '') {
  await page.goto(`${CONSOLE_URL}${to}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('.topbar').waitFor({ timeout: 20_000 });
}

/** Follows a link of the side navigation (the history router: no page load). */
export async function nav(page, label) {
  const toggle = page.locator('.nav-toggle');
  if (await toggle.isVisible()) await toggle.click();
  await page.locator('#nav').getByRole('link', { name: label, exact: true }).click();
  await page.locator('#page-title').waitFor();
}

/** Fails when the page shows an error box. */
export async function noErrorBox(page) {
  const boxes = page.locator('.error-box');
  if (await boxes.count()) throw new Error(`the page shows an error: ${(await boxes.first().innerText()).replace(/\s+/g, ' ')}`);
}

/** Every localStorage and sessionStorage value of the page, joined. */
export async function storageDump(page) {
  return page.evaluate(() => {
    const all = [];
    for (const s of [window.localStorage, window.sessionStorage]) {
      for (let i = 0; i < s.length; i += 1) all.push(`${s.key(i)}=${s.getItem(s.key(i))}`);
    }
    return all.join('\n');
  });
}
