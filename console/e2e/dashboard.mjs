#!/usr/bin/env node
// The dashboard: first-render timing (navigation → both charts drawn with the server's data),
// the hour/day toggle, live events without reload, the quota gauge; usage breakdown with CSV
// export; a refused call shows its code and the roles that may do it; the phone layout (390 px)
// collapses the navigation and never scrolls sideways.
//
//   GANTRY_URL=http://127.0.0.1:PORT node console/e2e/dashboard.mjs
//
// Prints `dashboard-first-render-ms: N` (cold: page load, sign-in with an API key, first data)
// and `dashboard-nav-render-ms: N` (in-app navigation back to the dashboard).

import { readFileSync } from 'node:fs';
import { suite, registerUser, signIn, nav, shot, noErrorBox, gql, sleep, CONSOLE_URL, uid } from './lib.mjs';

const CREATE_KEY = 'mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }';

await suite('dashboard', async ({ newPage, step, log }) => {
  const user = await registerUser('dash');
  const full = (await gql(CREATE_KEY, { i: { name: 'dashboard e2e', scopes: ['*'] } }, { token: user.token })).createApiKey.secret;
  const narrow = (await gql(CREATE_KEY, { i: { name: 'read keys only', scopes: ['keys:read'] } }, { token: user.token }))
    .createApiKey.secret;

  await step('seed traffic and wait until it is metered', async () => {
    for (let i = 0; i < 12; i += 1) {
      await gql('{ viewer { id } }', {}, { token: full });
    }
    const end = new Date(Date.now() + 3600e3).toISOString();
    const start = new Date(Date.now() - 3 * 3600e3).toISOString();
    for (let i = 0; i < 60; i += 1) {
      const d = await gql('query($s: DateTime!, $e: DateTime!) { usageHistory(start: $s, end: $e) { stats { calls } } }', { s: start, e: end }, { token: user.token });
      if (d.usageHistory.some((p) => p.stats.calls > 0)) return;
      await sleep(500);
    }
    throw new Error('the seeded calls never showed up in usageHistory');
  });

  const page = await newPage();
  await step('first render: navigation → charts drawn with data', async () => {
    const t0 = Date.now();
    await page.goto(CONSOLE_URL);
    await page.getByRole('tab', { name: 'API key' }).click();
    await page.getByRole('textbox', { name: /^API key/ }).fill(full);
    const t1 = Date.now();
    await page.getByRole('button', { name: 'Use this key' }).click();
    await page.waitForFunction(() => document.querySelectorAll('.chart[data-drawn]').length >= 2, null, { timeout: 30_000 });
    const ms = Date.now() - t0;
    console.log(`dashboard-signed-in-render-ms: ${Date.now() - t1}`);
    const calls = await page.locator('.stat', { hasText: 'Calls (24 h)' }).locator('.stat-value').innerText();
    if (!Number(calls.replace(/[^0-9]/g, ''))) throw new Error(`the calls figure is ${calls}`);
    console.log(`dashboard-first-render-ms: ${ms}`);
    await noErrorBox(page);
    await shot(page, 'dashboard-01');
  });

  await step('in-app navigation back to the dashboard', async () => {
    await nav(page, 'Usage');
    await page.locator('.chart[data-drawn]').first().waitFor();
    const t0 = Date.now();
    await nav(page, 'Dashboard');
    await page.waitForFunction(() => document.querySelectorAll('.chart[data-drawn]').length >= 2, null, { timeout: 30_000 });
    console.log(`dashboard-nav-render-ms: ${Date.now() - t0}`);
  });

  await step('hour/day toggle and the quota gauge', async () => {
    await page.getByRole('tab', { name: 'Last 30 days' }).click();
    await page.waitForFunction(() => document.querySelectorAll('.chart[data-drawn]').length >= 2);
    await page.getByRole('meter', { name: 'Monthly quota used' }).waitFor();
    await page.getByText(/Forecast to/).waitFor();
  });

  await step('live events arrive without reload', async () => {
    await page.waitForFunction(() => document.querySelector('[data-ws="connected"]'), null, { timeout: 15_000 });
    // "Connected" is the socket's acknowledgement, not the subscription's (the protocol has
    // none): an event raised before the server has set the subscription up is not replayed, so
    // keys are created until one arrives.
    const live = page.locator('.live li', { hasText: 'key.created' });
    for (let i = 0; ; i += 1) {
      await gql(CREATE_KEY, { i: { name: `live ${uid()}`, scopes: ['keys:read'] } }, { token: user.token });
      try {
        await live.first().waitFor({ timeout: 3_000 });
        break;
      } catch (e) {
        if (i === 4) throw e;
      }
    }
    await shot(page, 'dashboard-02-live');
  });

  await step('usage: breakdowns and CSV export of the table on screen', async () => {
    await nav(page, 'Usage');
    await page.getByRole('table', { name: 'Usage breakdown' }).getByText('viewer').first().waitFor({ timeout: 15_000 });
    await page.getByRole('tab', { name: 'By key' }).click();
    await page.getByRole('table', { name: 'Usage breakdown' }).getByText('dashboard e2e').waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = readFileSync(await download.path(), 'utf8');
    if (!csv.startsWith('Key,Calls,Errors') || !csv.includes('dashboard e2e')) throw new Error(`unexpected CSV: ${csv.slice(0, 200)}`);
    await page.getByRole('tab', { name: 'Errors' }).click();
    await shot(page, 'dashboard-03-usage');
  });

  await step('a refused call names its code and the roles that may do it', async () => {
    const p2 = await newPage();
    await p2.goto(CONSOLE_URL);
    await p2.getByRole('tab', { name: 'API key' }).click();
    await p2.getByRole('textbox', { name: /^API key/ }).fill(narrow);
    await p2.getByRole('button', { name: 'Use this key' }).click();
    await p2.locator('.topbar').waitFor();
    await nav(p2, 'Billing');
    const box = p2.locator('.error-box, .warn-box').first();
    await box.waitFor();
    const text = await box.innerText();
    if (!text.includes('FORBIDDEN') || !/billing:read/.test(text) || !/BILLING/.test(text)) throw new Error(`the refusal reads: ${text}`);
    await shot(p2, 'dashboard-04-forbidden');
  });

  await step('phone width (390 px): navigation collapses, nothing scrolls sideways', async () => {
    const phone = await newPage({ width: 390, height: 844 });
    await signIn(phone, user);
    await phone.waitForFunction(() => document.querySelectorAll('.chart[data-drawn]').length >= 2);
    if (await phone.locator('#nav').isVisible()) throw new Error('the navigation is open on a phone');
    for (const label of ['Dashboard', 'API keys', 'Webhooks', 'Billing', 'Marketplace', 'Usage']) {
      await nav(phone, label);
      await phone.locator('.loading').first().waitFor({ state: 'detached', timeout: 15_000 }).catch(() => {});
      const over = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (over > 1) throw new Error(`${label} scrolls sideways by ${over} px at 390 px`);
      if (await phone.locator('#nav').isVisible()) throw new Error('the navigation stayed open after choosing a page');
      await shot(phone, `dashboard-05-phone-${label.toLowerCase().replace(/\s+/g, '-')}`);
    }
    log('phone layout ok');
  });
});
