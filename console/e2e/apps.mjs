#!/usr/bin/env node
// Journeys: a developer creates an app in the console (client secret shown once) and submits it
// for review → a platform administrator approves it in the console's review queue → the
// developer publishes it → another user finds it in the marketplace, installs it through the
// server's OAuth consent page (login + consent in a popup) → it is listed as installed, with
// its scopes → uninstall.
//
//   GANTRY_URL=http://127.0.0.1:PORT node console/e2e/apps.mjs
//   (see lib.mjs for GANTRY_ADMIN_EMAIL / GANTRY_ADMIN_PASSWORD)

import { suite, registerUser, adminUser, signIn, nav, shot, noErrorBox, uid, BASE_URL } from './lib.mjs';

await suite('apps', async ({ newPage, step }) => {
  const admin = await adminUser();
  const dev = await registerUser('appdev');
  const installer = await registerUser('installer');
  const appName = `E2E Reporter ${uid()}`;
  const redirectUri = `${BASE_URL}/console/installed`;

  const devPage = await newPage();
  await step('developer creates an app; the client secret is shown once', async () => {
    await signIn(devPage, dev);
    await nav(devPage, 'My apps');
    await devPage.getByRole('button', { name: 'Create app' }).click();
    const dlg = devPage.getByRole('dialog');
    await dlg.getByRole('textbox', { name: 'Name', exact: true }).fill(appName);
    await dlg.getByLabel('Category').selectOption('ANALYTICS');
    await dlg.getByLabel('Short description').fill('Daily usage reports for your Gantry organization.');
    await dlg.getByRole('textbox', { name: /^Features/ }).fill('Daily digest\nWeekly trends');
    await dlg.getByRole('checkbox', { name: 'keys:read' }).check();
    await dlg.getByLabel('OAuth redirect URIs').fill(redirectUri);
    await dlg.getByRole('button', { name: 'Create app' }).click();
    const secret = dlg.getByTestId('secret');
    await secret.waitFor({ timeout: 15_000 });
    if (!(await secret.innerText()).startsWith('gko_cs_')) throw new Error('no gko_cs_ client secret shown');
    await shot(devPage, 'apps-01-created');
    await dlg.getByRole('button', { name: 'Open app' }).click();
    await devPage.getByRole('heading', { name: appName }).waitFor();
    await devPage.getByText('draft', { exact: true }).waitFor();
  });

  await step('developer submits it for review', async () => {
    await devPage.getByRole('button', { name: 'Submit for review' }).click();
    await devPage.getByText('pending', { exact: true }).waitFor();
    await noErrorBox(devPage);
    await shot(devPage, 'apps-02-submitted');
  });

  const adminPage = await newPage();
  await step('an administrator approves it in the review queue', async () => {
    await signIn(adminPage, admin);
    await nav(adminPage, 'Admin');
    const item = adminPage.locator('.review-queue li', { hasText: appName });
    await item.waitFor();
    await shot(adminPage, 'apps-03-review-queue');
    await item.getByRole('button', { name: `Approve ${appName}` }).click();
    await item.waitFor({ state: 'detached', timeout: 10_000 });
    await noErrorBox(adminPage);
  });

  await step('developer publishes it', async () => {
    await nav(devPage, 'My apps');
    await devPage.getByRole('link', { name: appName }).click();
    await devPage.getByText('approved', { exact: true }).waitFor();
    await devPage.getByRole('button', { name: 'Publish to the marketplace' }).click();
    await devPage.getByText('active', { exact: true }).first().waitFor();
    await devPage.getByRole('heading', { name: 'Analytics (last 30 days)' }).waitFor();
    await shot(devPage, 'apps-04-published');
  });

  const page = await newPage();
  await step('another user finds it in the marketplace', async () => {
    await signIn(page, installer);
    await nav(page, 'Marketplace');
    await page.getByLabel('Search').fill(appName.split(' ').pop());
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('link', { name: appName }).click();
    await page.getByRole('heading', { name: appName }).waitFor();
    await noErrorBox(page);
    await shot(page, 'apps-05-app-page');
  });

  await step('install through the OAuth consent page', async () => {
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.getByRole('button', { name: 'Install' }).click()]);
    await popup.waitForLoadState();
    if (!popup.url().startsWith(`${BASE_URL}/oauth/authorize`)) throw new Error(`the popup opened ${popup.url()}`);
    // The authorization server's own sign-in, then its consent page.
    await popup.locator('#email').fill(installer.email);
    await popup.locator('#password').fill(installer.password);
    await popup.getByRole('button', { name: 'Sign in' }).click();
    await popup.getByRole('button', { name: 'Allow' }).waitFor({ timeout: 15_000 });
    await shot(popup, 'apps-06-consent');
    await popup.getByRole('button', { name: 'Allow' }).click();
    // The console notices the installation (live event or the popup's end) and shows it.
    await page.locator('.installed-note').getByText('Installed').waitFor({ timeout: 20_000 });
    await shot(page, 'apps-07-installed-badge');
  });

  await step('it is listed as installed with its scopes; uninstall', async () => {
    await nav(page, 'Installed apps');
    const row = page.locator('tr', { hasText: appName });
    await row.waitFor();
    await row.getByText('keys:read').waitFor();
    await shot(page, 'apps-08-installed');
    await row.getByRole('button', { name: 'Uninstall' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Uninstall' }).click();
    await row.waitFor({ state: 'detached' });
  });
});
