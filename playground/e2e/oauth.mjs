#!/usr/bin/env node
// Browser test of Gantry's OAuth authorization pages, in real (headless) Chromium.
//
//   AUTHORIZE_URL=http://127.0.0.1:PORT/oauth/authorize?... \
//   REDIRECT_PREFIX=http://localhost:9/callback \
//   GANTRY_EMAIL=... GANTRY_PASSWORD=... \
//   node playground/e2e/oauth.mjs
//
// Optional: CHROMIUM_PATH (default /usr/bin/chromium).
//
// Steps: open the authorization URL (the login page), sign in with the form, check the consent
// page lists the scopes, click Allow, and catch the browser's navigation to the redirect URI
// (answered here, the client's server is not needed). Prints `CODE=<code>` and `STATE=<state>`.
// Exits 0 on success, 1 with a message on failure. Bounded to 60 s overall.

import { chromium } from 'playwright-core';

const { AUTHORIZE_URL, REDIRECT_PREFIX, GANTRY_EMAIL, GANTRY_PASSWORD } = process.env;
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
let browser = null;

async function fail(msg) {
  console.error(`FAIL: ${msg}`);
  console.error('oauth-e2e: 0 passed, 1 failed');
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

setTimeout(() => fail('timed out after 60 s'), 60_000).unref();

if (!AUTHORIZE_URL || !REDIRECT_PREFIX || !GANTRY_EMAIL || !GANTRY_PASSWORD) {
  console.error('AUTHORIZE_URL, REDIRECT_PREFIX, GANTRY_EMAIL and GANTRY_PASSWORD are required');
  process.exit(2);
}

try {
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  const page = await browser.newPage();
  // The app's redirect URI: answered in the browser, and remembered.
  let landed = null;
  await page.route(`${REDIRECT_PREFIX}**`, (route) => {
    landed = route.request().url();
    route.fulfill({ status: 200, contentType: 'text/html', body: '<p id="done">back at the app</p>' });
  });

  await page.goto(AUTHORIZE_URL);
  await page.getByRole('heading', { name: /Sign in to continue/ }).waitFor();
  await page.fill('#email', GANTRY_EMAIL);
  await page.fill('#password', GANTRY_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();

  await page.getByRole('heading', { name: /wants access/ }).waitFor();
  const scopes = await page.locator('[data-scope]').evaluateAll((els) => els.map((e) => e.dataset.scope));
  if (scopes.length === 0) await fail('the consent page lists no scopes');
  console.log(`consent page scopes: ${scopes.join(' ')}`);
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.locator('#done').waitFor();

  if (!landed || !landed.startsWith(REDIRECT_PREFIX)) await fail(`landed on ${landed}`);
  const url = new URL(landed);
  const code = url.searchParams.get('code');
  if (!code) await fail(`no code in ${landed}`);
  console.log(`CODE=${code}`);
  console.log(`STATE=${url.searchParams.get('state') ?? ''}`);
  console.log('oauth-e2e: 1 passed, 0 failed');
  await browser.close();
  process.exit(0);
} catch (e) {
  await fail(e.stack || String(e));
}
