#!/usr/bin/env node
// Journey: add a test card → change the plan (Starter → Pro) → the proration preview shows its
// lines and total → confirm → the paid proration invoice opens, with its lines and the HTML
// view; the upcoming invoice and the invoice list are on the billing page.
//
//   GANTRY_URL=http://127.0.0.1:PORT node console/e2e/billing.mjs

import { suite, registerUser, signIn, nav, shot, noErrorBox } from './lib.mjs';

await suite('billing', async ({ newPage, step }) => {
  const user = await registerUser('billing');
  const page = await newPage();

  await step('sign in and open billing', async () => {
    await signIn(page, user);
    await nav(page, 'Billing');
    await page.getByTestId('current-plan').waitFor();
    await page.getByRole('heading', { name: 'Upcoming invoice' }).waitFor();
    await noErrorBox(page);
    await shot(page, 'billing-01-overview');
  });

  await step('a declined test card is refused with its reason', async () => {
    await page.getByRole('button', { name: 'Add card' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Card number').fill('4000 0000 0000 0002');
    await dlg.getByLabel('Month').fill('12');
    await dlg.getByLabel('Year').fill(String(new Date().getFullYear() + 3));
    await dlg.getByLabel('CVC').fill('123');
    await dlg.getByRole('button', { name: 'Add card' }).click();
    // Either the provider refuses it now, or it is attached and declines at charge time.
    await Promise.race([
      dlg.locator('.error-box').waitFor({ timeout: 10_000 }),
      dlg.waitFor({ state: 'detached', timeout: 10_000 }),
    ]);
    if (await dlg.isVisible()) {
      await dlg.getByRole('button', { name: 'Close' }).click();
    } else {
      // Attached: remove it again so the upgrade uses the good card.
      await page.locator('li', { hasText: '0002' }).getByRole('button', { name: 'Remove' }).click();
      await page.locator('li', { hasText: '0002' }).waitFor({ state: 'detached' });
    }
  });

  await step('add the 4242 test card', async () => {
    await page.getByRole('button', { name: 'Add card' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Card number').fill('4242 4242 4242 4242');
    await dlg.getByLabel('Month').fill('12');
    await dlg.getByLabel('Year').fill(String(new Date().getFullYear() + 3));
    await dlg.getByLabel('CVC').fill('123');
    await dlg.getByLabel('Make it the default card').check();
    await dlg.getByRole('button', { name: 'Add card' }).click();
    await dlg.waitFor({ state: 'detached' });
    await page.getByText('•••• 4242').waitFor();
  });

  let total = '';
  await step('change plan: the proration preview', async () => {
    await page.getByRole('button', { name: 'Change plan' }).click();
    const dlg = page.getByRole('dialog');
    const plan = dlg.getByLabel(/^Plan/);
    const options = await plan.locator('option').evaluateAll((os) => os.map((o) => o.textContent));
    const pro = options.find((o) => /^Pro\b/.test(o));
    if (!pro) throw new Error(`no Pro plan offered: ${JSON.stringify(options)} (${await plan.count()} selects)`);
    await plan.selectOption({ label: pro });
    await dlg.getByLabel('Billing cycle').selectOption('MONTHLY');
    const summary = dlg.getByTestId('preview-summary');
    await summary.getByText('An upgrade').waitFor({ timeout: 15_000 });
    await dlg.getByRole('table', { name: 'Proration lines' }).waitFor();
    const lines = await dlg.getByRole('table', { name: 'Proration lines' }).locator('tbody tr').count();
    if (lines < 1) throw new Error('the preview has no proration lines');
    total = (await dlg.getByRole('table', { name: 'Proration lines' }).locator('tfoot th').last().innerText()).trim();
    await shot(page, 'billing-02-preview');
  });

  await step('confirm: the upgrade is invoiced and paid', async () => {
    const dlg = page.getByRole('dialog');
    await dlg.getByRole('button', { name: /^Upgrade and pay/ }).click();
    await dlg.getByRole('heading', { name: 'Plan changed' }).waitFor({ timeout: 20_000 });
    await dlg.getByText(/Proration invoice/).waitFor();
    await dlg.getByText(total).first().waitFor();
    await shot(page, 'billing-03-changed');
    await dlg.getByRole('link', { name: 'View invoice' }).click();
  });

  await step('the invoice: lines, payment, HTML view', async () => {
    await page.getByRole('heading', { name: /^Invoice INV-/ }).waitFor();
    await page.getByText('paid', { exact: true }).first().waitFor();
    await page.getByRole('table', { name: 'Invoice lines' }).waitFor();
    await noErrorBox(page);
    await shot(page, 'billing-04-invoice');
    await page.getByRole('button', { name: 'View HTML invoice' }).click();
    const frame = page.frameLocator('iframe[title="Invoice (HTML)"]');
    await frame.locator('body').getByText(/INV-/).first().waitFor({ timeout: 10_000 });
    await shot(page, 'billing-05-invoice-html');
    await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
  });

  await step('billing shows the new plan and the invoice', async () => {
    await nav(page, 'Billing');
    await page.getByTestId('current-plan').getByText('Pro').waitFor();
    await page.getByRole('table', { name: 'Invoices' }).getByText('proration').waitFor();
    await shot(page, 'billing-06-after');
  });
});
