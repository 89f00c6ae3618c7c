import { useState } from 'react';
import { gql } from '../api.js';
import { ErrorBox, Field, Link, Tabs, formValues } from '../ui.jsx';

const AUTH = 'user { id } session { token refreshToken expiresAt }';

export function SignIn({ start, busy, error }) {
  const [mode, setMode] = useState('password');
  const [err, setErr] = useState(null);
  const [working, setWorking] = useState(false);

  async function onPassword(e) {
    e.preventDefault();
    const v = formValues(e.currentTarget);
    setErr(null);
    setWorking(true);
    try {
      const d = await gql(`mutation($input: LoginInput!) { login(input: $input) { ${AUTH} } }`, {
        input: { email: v.email, password: v.password },
      }, { token: null, orgId: null });
      const s = d.login.session;
      await start(s.token, { refreshToken: s.refreshToken, expiresAt: s.expiresAt });
    } catch (e2) {
      setErr(e2);
    } finally {
      setWorking(false);
    }
  }

  async function onKey(e) {
    e.preventDefault();
    const v = formValues(e.currentTarget);
    setErr(null);
    await start(String(v.key).trim().replace(/^bearer\s+/i, ''));
  }

  return (
    <div className="auth-card">
      <h1 className="brand big">
        Gantry <span>console</span>
      </h1>
      <Tabs
        label="Sign-in method"
        value={mode}
        onChange={setMode}
        tabs={[
          ['password', 'Email and password'],
          ['key', 'API key'],
        ]}
      />
      {mode === 'password' ? (
        <form onSubmit={onPassword} aria-label="Sign in">
          <Field label="Email">
            <input name="email" type="email" autoComplete="username" required />
          </Field>
          <Field label="Password">
            <input name="password" type="password" autoComplete="current-password" required minLength={1} />
          </Field>
          <button className="btn primary block" type="submit" disabled={working || busy}>
            {working || busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      ) : (
        <form onSubmit={onKey} aria-label="Sign in with an API key">
          <Field label="API key" hint="The key is kept in this tab's memory only and forgotten on reload.">
            <input name="key" type="password" autoComplete="off" required placeholder="gk_live_…" spellCheck={false} />
          </Field>
          <button className="btn primary block" type="submit" disabled={busy}>
            {busy ? 'Checking…' : 'Use this key'}
          </button>
        </form>
      )}
      <ErrorBox error={err || error} title="Sign-in failed" />
      <p className="muted center">
        No account? <Link to="/register">Create one</Link>
      </p>
      <p className="muted small center">Your session lives in this tab only; reloading the page signs you out.</p>
    </div>
  );
}

export function Register({ start, busy, error }) {
  const [err, setErr] = useState(null);
  const [working, setWorking] = useState(false);
  async function onSubmit(e) {
    e.preventDefault();
    const v = formValues(e.currentTarget);
    setErr(null);
    setWorking(true);
    try {
      const input = { email: v.email, password: v.password };
      if (v.name) input.name = v.name;
      if (v.invitationToken) input.invitationToken = v.invitationToken.trim();
      const d = await gql(`mutation($input: RegisterInput!) { register(input: $input) { ${AUTH} } }`, { input }, {
        token: null,
        orgId: null,
      });
      const s = d.register.session;
      await start(s.token, { refreshToken: s.refreshToken, expiresAt: s.expiresAt });
    } catch (e2) {
      setErr(e2);
    } finally {
      setWorking(false);
    }
  }
  return (
    <div className="auth-card">
      <h1 className="brand big">
        Create your <span>Gantry account</span>
      </h1>
      <form onSubmit={onSubmit} aria-label="Create account">
        <Field label="Name">
          <input name="name" autoComplete="name" maxLength={100} />
        </Field>
        <Field label="Email">
          <input name="email" type="email" autoComplete="username" required />
        </Field>
        <Field label="Password" hint="8 to 128 characters.">
          <input name="password" type="password" autoComplete="new-password" required minLength={8} maxLength={128} />
        </Field>
        <Field label="Invitation token (optional)" hint="From an invitation mail (gki_…): you join that organization.">
          <input name="invitationToken" autoComplete="off" spellCheck={false} />
        </Field>
        <button className="btn primary block" type="submit" disabled={working || busy}>
          {working || busy ? 'Creating…' : 'Create account'}
        </button>
      </form>
      <ErrorBox error={err || error} title="Sign-up failed" />
      <p className="muted center">
        Have an account? <Link to="/">Sign in</Link>
      </p>
    </div>
  );
}
