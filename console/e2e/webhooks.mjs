#!/usr/bin/env node
// Journey: create a webhook endpoint (with a filter and an extra header) pointing at a local
// HTTP receiver this script starts → send a test event → the attempt appears on the page without
// a reload, with the request Gantry sent and the receiver's response → the event catalog lists
// types with their schemas and samples.
//
//   GANTRY_URL=http://127.0.0.1:PORT node console/e2e/webhooks.mjs
//
// The server must be allowed to call a receiver on this machine over http:
//   GANTRY_WEBHOOK_ALLOW_HTTP=true GANTRY_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8

import http from 'node:http';
import { suite, registerUser, signIn, nav, shot, noErrorBox, uid, sleep } from './lib.mjs';

const received = [];
// The receiver holds its first answer until the page has shown the delivery without an attempt
// (however slow the machine), then answers everything at once; 20 s at most (the endpoint's
// timeout is 30 s).
let release;
const released = new Promise((r) => {
  release = r;
});
const receiver = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => {
    body += c;
  });
  req.on('end', async () => {
    received.push({ headers: req.headers, body, url: req.url });
    await Promise.race([released, sleep(20_000)]);
    res.writeHead(200, { 'content-type': 'application/json', 'x-receiver': 'console-e2e' });
    res.end(JSON.stringify({ received: true, n: received.length }));
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook/${uid()}`;

await suite('webhooks', async ({ newPage, step }) => {
  const user = await registerUser('hooks');
  const page = await newPage();

  await step('sign in', async () => {
    await signIn(page, user);
  });

  await step('create an endpoint pointing at the local receiver', async () => {
    await nav(page, 'Webhooks');
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Endpoint URL').fill(hookUrl);
    await dlg.getByLabel('Description').fill('console e2e receiver');
    await dlg.getByLabel('Event types').fill('webhook.test, key.*');
    await dlg.getByLabel('Extra headers').fill('X-E2E: yes');
    await dlg.getByRole('button', { name: 'Create endpoint' }).click();
    const secret = dlg.getByTestId('secret');
    try {
      await secret.waitFor({ timeout: 15_000 });
    } catch {
      const err = await dlg.locator('.error-box').innerText().catch(() => '');
      throw new Error(
        `the endpoint was not created${err ? `: ${err.replace(/\s+/g, ' ')}` : ''} ` +
          '(is the server run with GANTRY_WEBHOOK_ALLOW_HTTP=true GANTRY_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8?)',
      );
    }
    if (!(await secret.innerText()).startsWith('whsec_')) throw new Error('no whsec_ signing secret shown');
    await shot(page, 'webhooks-01-created');
    await dlg.getByRole('button', { name: 'Open endpoint' }).click();
    await page.getByRole('heading', { name: hookUrl }).waitFor();
    await noErrorBox(page);
  });

  await step('send a test event; the attempt appears live, without reload', async () => {
    // Mark the document: a reload would lose the mark.
    await page.evaluate(() => {
      window.__noReload = true;
    });
    await page.waitForFunction(() => document.querySelector('[data-ws="connected"]'), null, { timeout: 15_000 });
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.getByText('No attempt yet').waitFor({ timeout: 15_000 });
    release();
    const attempt = page.locator('.attempt[data-attempt="1"]');
    await attempt.waitFor({ timeout: 30_000 });
    await attempt.getByText('HTTP 200').waitFor({ timeout: 10_000 });
    if (!(await page.evaluate(() => window.__noReload === true))) throw new Error('the page was reloaded');
    await page.getByText(/live attempt/).waitFor();
    await shot(page, 'webhooks-02-attempt-live');
  });

  await step('the receiver got a signed request with the extra header', async () => {
    for (let i = 0; i < 20 && !received.length; i += 1) await sleep(100);
    const r = received[0];
    if (!r) throw new Error('the receiver got nothing');
    if (!r.headers['webhook-signature'] || !r.headers['webhook-id']) throw new Error('no Standard Webhooks headers');
    if (r.headers['x-e2e'] !== 'yes') throw new Error('the extra header X-E2E was not sent');
    if (!r.body.includes('webhook.test')) throw new Error(`unexpected body: ${r.body.slice(0, 200)}`);
  });

  await step('the attempt shows the request sent and the response', async () => {
    const attempt = page.locator('.attempt[data-attempt="1"]');
    await attempt.getByText('Request', { exact: true }).click();
    await attempt.getByText('Response', { exact: true }).click();
    await attempt.getByText('webhook-signature').first().waitFor();
    await attempt.getByText('"received": true').or(attempt.getByText('"received":true')).first().waitFor();
    await shot(page, 'webhooks-03-attempt-detail');
  });

  await step('retry the delivery: a second attempt appears live', async () => {
    await page.getByRole('button', { name: 'Retry now' }).click();
    await page.locator('.attempt[data-attempt="2"]').waitFor({ timeout: 30_000 });
  });

  await step('disable and enable the endpoint', async () => {
    await page.getByRole('button', { name: 'Disable' }).click();
    await page.getByText('disabled', { exact: true }).first().waitFor();
    await page.getByRole('button', { name: 'Enable' }).click();
    await page.getByText('enabled', { exact: true }).first().waitFor();
  });

  await step('event catalog with schemas and samples', async () => {
    await nav(page, 'Event catalog');
    await page.getByRole('button', { name: 'key.created' }).click();
    await page.getByLabel('key.created schema').waitFor();
    await page.getByLabel('key.created sample').waitFor();
    await noErrorBox(page);
    await shot(page, 'webhooks-04-catalog');
  });
});
receiver.close();
