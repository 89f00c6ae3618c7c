#!/usr/bin/env node
// Browser test of the REST API reference (/api/v1/docs, Swagger UI) in real headless Chromium.
//
//   GANTRY_URL=http://127.0.0.1:PORT GANTRY_TOKEN=gk_test_... node playground/e2e/docs.mjs
//
// Optional: CHROMIUM_PATH (default /usr/bin/chromium).
//
// Steps: open the page with the network limited to the server (any other request fails the
// test), check it lists the routes, authorize with the key, expand GET /api/v1/keys, "Try it
// out", "Execute", and read the live answer's status and body on screen.
// Prints `docs-e2e: 1 passed, 0 failed` on success; exits 1 with a message on failure.

import { chromium } from 'playwright-core';

const { GANTRY_URL, GANTRY_TOKEN } = process.env;
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
let browser = null;

async function fail(msg) {
  console.error(`FAIL: ${msg}`);
  console.error('docs-e2e: 0 passed, 1 failed');
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

setTimeout(() => fail('timed out after 90 s'), 90_000).unref();
if (!GANTRY_URL || !GANTRY_TOKEN) {
  console.error('GANTRY_URL and GANTRY_TOKEN are required');
  process.exit(2);
}

try {
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  const page = await browser.newPage();
  const outside = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(GANTRY_URL) || url.startsWith('data:')) return route.continue();
    outside.push(url);
    return route.abort();
  });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  await page.goto(`${GANTRY_URL}/api/v1/docs`);
  await page.locator('.opblock').first().waitFor({ timeout: 30_000 });
  const count = await page.locator('.opblock').count();
  if (count < 50) await fail(`only ${count} operations listed`);
  console.log(`operations listed: ${count}`);

  // Authorize with the key (the bearer scheme).
  await page.getByRole('button', { name: /Authorize/ }).first().click();
  await page.locator('.modal-ux input[type="text"], .modal-ux input:not([type])').first().fill(GANTRY_TOKEN);
  await page.locator('.modal-ux button.modal-btn.authorize').click();
  await page.locator('.modal-ux button.btn-done').click();

  const op = page.locator('#operations-keys-get_keys');
  await op.locator('.opblock-summary').first().click();
  await op.getByRole('button', { name: 'Try it out' }).click();
  await op.getByRole('button', { name: 'Execute' }).click();
  const status = op.locator('.live-responses-table .response .response-col_status').first();
  await status.waitFor({ timeout: 30_000 });
  const code = (await status.innerText()).trim();
  if (!code.startsWith('200')) await fail(`GET /api/v1/keys answered ${code}`);
  const body = await op.locator('.live-responses-table .response-col_description pre').first().innerText();
  if (!body.includes('"status": "success"') && !body.includes('"status":"success"')) {
    await fail(`the answer on screen is not a success envelope: ${body.slice(0, 300)}`);
  }
  if (!body.includes(process.env.GANTRY_EXPECT_KEY_ID || 'key_')) await fail('the key is not in the answer');
  if (outside.length) await fail(`the page asked for outside resources: ${outside.join(', ')}`);
  if (errors.length) await fail(`page errors: ${errors.join('; ')}`);
  console.log('docs-e2e: 1 passed, 0 failed');
  await browser.close();
} catch (e) {
  await fail(e && e.stack ? e.stack : String(e));
}
