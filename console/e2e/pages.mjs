#!/usr/bin/env node
// Every page renders against the real server without an error (screenshots of each), the admin
// sections work for a platform administrator (users, organizations, plans, feature flags,
// analytics), team invitations work, and a rate-limited call shows RATE_LIMITED with its
// retry-after.
//
//   GANTRY_URL=http://127.0.0.1:PORT node console/e2e/pages.mjs
//   (see lib.mjs for GANTRY_ADMIN_EMAIL / GANTRY_ADMIN_PASSWORD)

import { suite, registerUser, adminUser, signIn, nav, shot, noErrorBox, gql, uid, sleep, BASE_URL, CONSOLE_URL } from './lib.mjs';

const PAGES = ['Dashboard', 'API keys', 'Usage', 'Webhooks', 'Event catalog', 'My apps', 'Marketplace', 'Installed apps', 'Billing', 'Team', 'Settings'];

await suite('pages', async ({ newPage, step }) => {
  const admin = await adminUser();
  const user = await registerUser('pages');

  const page = await newPage();
  await step('every page renders without an error', async () => {
    await signIn(page, user);
    for (const label of PAGES) {
      await nav(page, label);
      await page.locator('.loading').first().waitFor({ state: 'detached', timeout: 15_000 }).catch(() => {});
      await noErrorBox(page);
      if (await page.locator('.warn-box', { hasText: 'could not be loaded' }).count()) {
        throw new Error(`${label}: ${(await page.locator('.warn-box').first().innerText()).replace(/\s+/g, ' ')}`);
      }
      await shot(page, `pages-${label.toLowerCase().replace(/\s+/g, '-')}`);
    }
    if (await page.locator('#nav').getByRole('link', { name: 'Admin' }).count()) throw new Error('a non-administrator sees Admin');
  });

  await step('team: invite a member, see it pending, revoke it', async () => {
    await nav(page, 'Team');
    await page.getByRole('button', { name: 'Invite member' }).click();
    const dlg = page.getByRole('dialog');
    const email = `invitee-${uid()}@example.com`;
    await dlg.getByLabel('Email').fill(email);
    await dlg.getByLabel('Role').selectOption('VIEWER');
    await dlg.getByRole('button', { name: 'Send invitation' }).click();
    const item = page.locator('li', { hasText: email });
    await item.waitFor();
    await shot(page, 'pages-team-invited');
    await item.getByRole('button', { name: 'Revoke' }).click();
    await item.waitFor({ state: 'detached' });
  });

  await step('settings: rename, change the password (the other session ends), revoke a session', async () => {
    // Another session of the same user, opened elsewhere.
    const other = await gql('mutation($i: LoginInput!) { login(input: $i) { session { id token } } }', {
      i: { email: user.email, password: user.password },
    });
    await nav(page, 'Settings');
    const sessions = page.getByRole('table', { name: 'Sessions' });
    await sessions.locator(`tr[data-session="${other.login.session.id}"]`).waitFor();
    const name = `Renamed ${uid().slice(0, 4)}`;
    const profile = page.getByRole('form', { name: 'Profile' });
    await profile.getByLabel('Your name').fill(name);
    await profile.getByRole('button', { name: 'Save name' }).click();
    await page.getByText(`Your name is now ${name}.`).waitFor();
    const me = await gql('{ viewer { user { name } } }', {}, { token: user.token });
    if (me.viewer.user.name !== name) throw new Error(`the name in the server is ${me.viewer.user.name}`);
    const form = page.getByRole('form', { name: 'Change password' });
    await form.getByLabel('Current password').fill('not the password');
    await form.locator('input[name="newPassword"]').fill('a brand new password');
    await form.locator('input[name="confirm"]').fill('a brand new password');
    await form.getByRole('button', { name: 'Change password' }).click();
    await form.locator('.error-box').getByText(/currentPassword|current/i).first().waitFor();
    await form.getByLabel('Current password').fill(user.password);
    await form.getByRole('button', { name: 'Change password' }).click();
    await page.getByText(/Password changed; \d+ other sessions? ended\./).waitFor();
    await shot(page, 'pages-settings-account');
    const ended = await fetch(`${process.env.GANTRY_URL.replace(/\/+$/, '')}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${other.login.session.token}` },
      body: JSON.stringify({ query: '{ viewer { id } }' }),
    }).then((r) => r.json());
    if (ended.errors?.[0]?.extensions?.code !== 'UNAUTHENTICATED') throw new Error(`the other session still works: ${JSON.stringify(ended)}`);
    user.password = 'a brand new password';
    // The script's own session ended with the others: it signs in again.
    user.token = (
      await gql('mutation($i: LoginInput!) { login(input: $i) { session { token } } }', { i: { email: user.email, password: user.password } })
    ).login.session.token;
    // A third session, revoked from the list.
    const third = await gql('mutation($i: LoginInput!) { login(input: $i) { session { id } } }', {
      i: { email: user.email, password: user.password },
    });
    await nav(page, 'Dashboard');
    await nav(page, 'Settings');
    const row = sessions.locator(`tr[data-session="${third.login.session.id}"]`);
    await row.getByRole('button', { name: 'Revoke' }).click();
    await row.waitFor({ state: 'detached' });
  });

  await step('a rate-limited call shows RATE_LIMITED and its retry-after', async () => {
    // A key allowed 30 calls an hour: the console signs in with it, the script spends what is
    // left, and the page's next call is refused until the window earns a call back (one every
    // 2 min). A machine slow enough to let that happen between spending and looking gets a
    // second round.
    const limited = (
      await gql(
        'mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }',
        { i: { name: `limited ${uid()}`, scopes: ['*'], rateLimit: { perHour: 30 } } },
        { token: user.token },
      )
    ).createApiKey.secret;
    const lp = await newPage();
    await lp.goto(CONSOLE_URL);
    await lp.getByRole('tab', { name: 'API key' }).click();
    await lp.getByRole('textbox', { name: /^API key/ }).fill(limited);
    await lp.getByRole('button', { name: 'Use this key' }).click();
    await lp.locator('.topbar').waitFor();
    let text = '';
    for (let attempt = 0; attempt < 2 && !text.includes('RATE_LIMITED'); attempt += 1) {
      for (let i = 0; i < 60; i += 1) {
        const r = await fetch(`${BASE_URL}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${limited}` },
          body: JSON.stringify({ query: '{ viewer { id } }' }),
        });
        // The plan's per-second window refuses too: wait it out, spend the hour's.
        const err = r.status === 429 ? (await r.json()).errors?.[0]?.extensions : null;
        if (err?.window === 'hour') break;
        if (err) await sleep(1000 * (err.retryAfter || 1));
      }
      if (attempt) await nav(lp, 'Settings');
      await nav(lp, 'Usage');
      const box = lp.locator('.error-box').first();
      text = await box
        .waitFor({ timeout: 10_000 })
        .then(() => box.innerText())
        .catch(() => '');
    }
    if (!text.includes('RATE_LIMITED') || !/retry-after \d+ s/.test(text)) throw new Error(`the refusal reads: ${text}`);
    await shot(lp, 'pages-rate-limited');
  });

  const ap = await newPage();
  await step('admin: users and organizations (search, suspend, unsuspend)', async () => {
    await signIn(ap, admin);
    await nav(ap, 'Admin');
    await ap.getByRole('tab', { name: 'Users' }).click();
    await ap.getByLabel('Search users').fill(user.email);
    await ap.getByRole('button', { name: 'Search' }).click();
    const row = ap.locator('tr', { hasText: user.email });
    await row.waitFor();
    await row.getByRole('button', { name: 'Suspend' }).click();
    await ap.getByRole('dialog').getByLabel('Reason (kept in the audit log)').fill('e2e check');
    await ap.getByRole('dialog').getByRole('button', { name: 'Suspend' }).click();
    await row.getByText('suspended').waitFor();
    await shot(ap, 'pages-admin-users');
    await row.getByRole('button', { name: 'Unsuspend' }).click();
    await row.getByText('active').waitFor();
    await ap.getByRole('tab', { name: 'Organizations' }).click();
    await ap.getByRole('table', { name: 'Organizations' }).waitFor();
    await noErrorBox(ap);
    await shot(ap, 'pages-admin-orgs');
  });

  await step('admin: plans, feature flags, analytics', async () => {
    await ap.getByRole('tab', { name: 'Plans' }).click();
    await ap.getByRole('table', { name: 'Plans' }).getByText('Starter').waitFor();
    await shot(ap, 'pages-admin-plans');
    await ap.getByRole('tab', { name: 'Feature flags' }).click();
    await ap.getByRole('button', { name: 'New flag' }).click();
    const key = `e2e-flag-${uid()}`;
    const dlg = ap.getByRole('dialog');
    await dlg.getByLabel('Key').fill(key);
    await dlg.getByLabel('Description').fill('created by the console e2e');
    await dlg.getByRole('button', { name: 'Create flag' }).click();
    const row = ap.locator('tr', { hasText: key });
    await row.waitFor();
    await row.getByRole('switch').click();
    await row.getByRole('switch', { checked: true }).waitFor();
    await shot(ap, 'pages-admin-flags');
    await row.getByRole('button', { name: 'Delete' }).click();
    await row.waitFor({ state: 'detached' });
    await ap.getByRole('tab', { name: 'Analytics' }).click();
    await ap.getByText('Organizations by plan').waitFor();
    await noErrorBox(ap);
    await shot(ap, 'pages-admin-analytics');
  });
});
