#!/usr/bin/env node
// Journey: sign in → create an API key → it is listed, its secret is shown exactly once (gone
// after navigating away, never in localStorage/sessionStorage) and it works against the API →
// roll it → revoke it; the per-key page draws its usage chart.
//
//   GANTRY_URL=http://127.0.0.1:PORT node console/e2e/keys.mjs

import { suite, registerUser, signIn, nav, shot, noErrorBox, storageDump, gql, uid } from './lib.mjs';

await suite('keys', async ({ newPage, step }) => {
  const user = await registerUser('keys');
  const page = await newPage();
  const name = `e2e key ${uid()}`;
  let secret = '';

  await step('sign in', async () => {
    await signIn(page, user);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await shot(page, 'keys-01-dashboard');
    if (await storageDump(page)) throw new Error('something was written to web storage at sign-in');
  });

  await step('create a key with scopes, environment and limits', async () => {
    await nav(page, 'API keys');
    await page.getByRole('button', { name: 'Create API key' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Name').fill(name);
    await dlg.getByLabel('Environment').selectOption('LIVE');
    await dlg.getByRole('checkbox', { name: 'keys:read' }).check();
    await dlg.getByRole('checkbox', { name: 'usage:read' }).check();
    await dlg.getByLabel('Allowed IPs (optional)').fill('127.0.0.0/8, ::1');
    await dlg.getByLabel('Per second').fill('5');
    await dlg.getByRole('button', { name: 'Create key' }).click();
    const box = dlg.getByTestId('secret');
    await box.waitFor({ timeout: 15_000 });
    secret = (await box.innerText()).trim();
    if (!/^gk_live_/.test(secret)) throw new Error(`the secret shown is not a live key: ${secret.slice(0, 12)}…`);
    await shot(page, 'keys-02-secret-once');
  });

  await step('the secret works and is in no storage', async () => {
    const d = await gql('{ viewer { kind apiKey { name scopes } } }', {}, { token: secret });
    if (d.viewer.apiKey?.name !== name) throw new Error('the secret did not authenticate as the new key');
    const dump = await storageDump(page);
    if (dump.includes(secret) || dump.includes(secret.slice(-12))) throw new Error('the secret is in web storage');
  });

  await step('the key is listed with its status; the secret is gone after closing', async () => {
    await page.getByRole('button', { name: 'I have stored it' }).click();
    const row = page.locator('tr', { hasText: name });
    await row.waitFor();
    await row.getByText('active').waitFor();
    if ((await page.content()).includes(secret)) throw new Error('the secret is still in the page after closing the dialog');
  });

  await step('navigating away and back never shows the secret again', async () => {
    await nav(page, 'Usage');
    await nav(page, 'API keys');
    await page.locator('tr', { hasText: name }).waitFor();
    if ((await page.content()).includes(secret)) throw new Error('the secret came back after navigating');
    const dump = await storageDump(page);
    if (dump.includes(secret)) throw new Error('the secret is in web storage');
    await shot(page, 'keys-03-list');
  });

  await step('roll with overlap shows the new secret once', async () => {
    await page.locator('tr', { hasText: name }).getByRole('button', { name: 'Roll' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Overlap').selectOption('3600');
    await dlg.getByRole('button', { name: 'Roll key' }).click();
    const rolled = (await dlg.getByTestId('secret').innerText()).trim();
    if (rolled === secret || !rolled.startsWith('gk_live_')) throw new Error('roll did not show a new secret');
    // The previous secret keeps working during the overlap.
    await gql('{ viewer { id } }', {}, { token: secret });
    await dlg.getByRole('button', { name: 'Done' }).click();
  });

  await step('per-key page with its usage chart', async () => {
    await page.locator('tr', { hasText: name }).getByRole('link', { name }).click();
    await page.getByRole('heading', { name }).waitFor();
    await page.locator('.chart[data-drawn]').first().waitFor({ timeout: 15_000 });
    await noErrorBox(page);
    await shot(page, 'keys-04-detail');
  });

  await step('revoke', async () => {
    await page.getByRole('button', { name: 'Revoke' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Reason (kept in the audit log)').fill('e2e');
    await dlg.getByRole('button', { name: 'Revoke key' }).click();
    await page.getByText('revoked', { exact: true }).first().waitFor();
    await shot(page, 'keys-05-revoked');
  });
});
