import { StrictMode, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';

import './style.css';

import { gql, gqlRaw, onUnauthenticated, onWsState, setCredential, setVocabulary } from './api.js';
import { navigate, useRoute } from './hooks.js';
import { SessionContext } from './session.js';
import { ErrorBox, Link, Loading } from './ui.jsx';
import { SignIn, Register } from './pages/auth.jsx';
import { Dashboard } from './pages/dashboard.jsx';
import { Keys, KeyDetail } from './pages/keys.jsx';
import { Usage } from './pages/usage.jsx';
import { Webhooks, WebhookDetail, EventCatalog } from './pages/webhooks.jsx';
import { MyApps, MyAppDetail, Marketplace, MarketplaceApp, InstalledApps } from './pages/apps.jsx';
import { Billing, InvoiceDetail } from './pages/billing.jsx';
import { Team, Settings } from './pages/team.jsx';
import { Admin } from './pages/admin.jsx';

const WHO = `query ConsoleViewer {
  viewer { id kind scopes role
    organization { id name slug isPersonal viewerRole plan { id slug name } }
    user { id email name isPlatformAdmin emailVerified createdAt }
    apiKey { id name environment } }
  organizations { id name slug isPersonal viewerRole suspendedAt plan { slug name } }
  scopes { name description roles }
}`;

const UNKNOWN_ORG = {
  id: null,
  name: 'Organization (needs org:read)',
  slug: '',
  isPersonal: false,
  viewerRole: null,
  plan: { id: null, slug: '', name: 'unknown' },
};

const NAV = [
  ['/', 'Dashboard'],
  ['/keys', 'API keys'],
  ['/usage', 'Usage'],
  ['/webhooks', 'Webhooks'],
  ['/events', 'Event catalog'],
  ['/apps', 'My apps'],
  ['/marketplace', 'Marketplace'],
  ['/installed', 'Installed apps'],
  ['/billing', 'Billing'],
  ['/team', 'Team'],
  ['/settings', 'Settings'],
];

function route(path) {
  const seg = path.split('/').filter(Boolean);
  const [a, b, c] = seg;
  switch (a) {
    case undefined:
      return <Dashboard />;
    case 'keys':
      return b ? <KeyDetail id={b} /> : <Keys />;
    case 'usage':
      return <Usage />;
    case 'webhooks':
      return b ? <WebhookDetail id={b} /> : <Webhooks />;
    case 'events':
      return <EventCatalog />;
    case 'apps':
      return b ? <MyAppDetail id={b} /> : <MyApps />;
    case 'marketplace':
      return b ? <MarketplaceApp slug={b} /> : <Marketplace />;
    case 'installed':
      return <InstalledApps />;
    case 'billing':
      return b === 'invoices' && c ? <InvoiceDetail id={c} /> : <Billing />;
    case 'team':
      return <Team />;
    case 'settings':
      return <Settings />;
    case 'admin':
      return <Admin tab={b || 'review'} />;
    default:
      return (
        <section className="page">
          <h1>Not found</h1>
          <p>
            There is no page at <code>/console{path}</code>. <Link to="/">Go to the dashboard</Link>.
          </p>
        </section>
      );
  }
}

function WsIndicator() {
  const [s, setS] = useState({ state: 'idle' });
  useEffect(() => onWsState(setS), []);
  const label =
    s.state === 'connected' ? 'Live' : s.state === 'connecting' ? 'Connecting…' : s.state === 'closed' && s.code && s.code !== 1000 ? `Live updates off (${s.code})` : 'Idle';
  return (
    <span className={`ws ws-${s.state}`} title="Live updates (WebSocket)" data-ws={s.state}>
      <span className="dot" aria-hidden="true" /> {label}
    </span>
  );
}

function Shell({ session, children, path }) {
  const [open, setOpen] = useState(false);
  const main = useRef(null);
  useEffect(() => {
    setOpen(false);
    main.current?.querySelector('h1')?.focus({ preventScroll: true });
  }, [path]);
  const active = (to) => (to === '/' ? path === '/' : path === to || path.startsWith(`${to}/`));
  const nav = session.isAdmin ? [...NAV, ['/admin', 'Admin']] : NAV;
  return (
    <div className={open ? 'shell nav-open' : 'shell'}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <button
          type="button"
          className="nav-toggle"
          aria-expanded={open}
          aria-controls="nav"
          onClick={() => setOpen((o) => !o)}
        >
          <span aria-hidden="true">☰</span>
          <span className="sr-only">Menu</span>
        </button>
        <Link to="/" className="brand">
          Gantry <span>console</span>
        </Link>
        <label className="org-switch">
          <span className="sr-only">Organization</span>
          <select
            aria-label="Organization"
            value={session.orgId || ''}
            onChange={(e) => session.switchOrg(e.target.value)}
            disabled={session.orgs.length < 2}
          >
            {session.orgs.map((o) => (
              <option key={o.id || 'unknown'} value={o.id || ''}>
                {o.name}
                {o.viewerRole ? ` (${o.viewerRole.toLowerCase()})` : ''}
              </option>
            ))}
          </select>
        </label>
        <div className="topbar-right">
          <WsIndicator />
          <span className="who" title={session.user?.email}>
            {session.kind === 'API_KEY' ? `Key ${session.viewer.apiKey?.name || ''}` : session.user?.name}
          </span>
          <button type="button" className="btn small ghost" onClick={session.signOut}>
            Sign out
          </button>
        </div>
      </header>
      <nav id="nav" className="sidenav" aria-label="Console">
        <ul>
          {nav.map(([to, label]) => (
            <li key={to}>
              <Link to={to} aria-current={active(to) ? 'page' : undefined} onClick={() => setOpen(false)}>
                {label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" ref={main}>
        {children}
      </main>
    </div>
  );
}

function Redirect({ to }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return <Loading />;
}

function App() {
  const { path } = useRoute();
  // { token, refreshToken, expiresAt, kind, viewer, user, orgs, orgId }
  const [auth, setAuth] = useState(null);
  const [booting, setBooting] = useState(false);
  const [bootError, setBootError] = useState(null);
  const [notice, setNotice] = useState(null);

  /** Loads who the credential is and its organizations, then signs in. */
  const start = useCallback(async (token, extra = {}, orgId = null) => {
    setBooting(true);
    setBootError(null);
    try {
      const { data, errors } = await gqlRaw(WHO, {}, { token, orgId });
      if (!data?.viewer) throw errors[0];
      setVocabulary(data.scopes);
      // A credential without `org:read` cannot see its organization: the console still works
      // for what its scopes allow, without an organization switcher.
      const viewer = { ...data.viewer, organization: data.viewer.organization || UNKNOWN_ORG };
      const orgs = data.organizations?.length ? data.organizations : [viewer.organization];
      setCredential(token, viewer.organization.id);
      setAuth({ token, ...extra, viewer, kind: viewer.kind, user: viewer.user, orgs, orgId: viewer.organization.id });
      setNotice(null);
      return true;
    } catch (e) {
      setBootError(e);
      return false;
    } finally {
      setBooting(false);
    }
  }, []);

  const signOut = useCallback(async (why) => {
    const wasUser = auth?.kind === 'USER';
    if (wasUser && !why) {
      try {
        await gql('mutation { logout }');
      } catch {
        // the session may already be gone
      }
    }
    setCredential(null, null);
    setAuth(null);
    setNotice(why || null);
  }, [auth?.kind]);

  useEffect(() => {
    onUnauthenticated(() => {
      setCredential(null, null);
      setAuth(null);
      setNotice('Your session ended. Sign in again.');
    });
  }, []);

  // Sessions last an hour: exchange the refresh token (kept in memory) before the end.
  useEffect(() => {
    if (!auth?.refreshToken || !auth.expiresAt) return undefined;
    const wait = Math.max(5_000, new Date(auth.expiresAt).getTime() - Date.now() - 120_000);
    const t = setTimeout(async () => {
      try {
        const d = await gql(
          'mutation($r: String!) { refreshSession(refreshToken: $r) { session { token refreshToken expiresAt } } }',
          { r: auth.refreshToken },
          { token: null },
        );
        const s = d.refreshSession.session;
        setCredential(s.token, auth.orgId);
        setAuth((a) => ({ ...a, token: s.token, refreshToken: s.refreshToken, expiresAt: s.expiresAt }));
      } catch {
        // the next call will report UNAUTHENTICATED and sign out
      }
    }, wait);
    return () => clearTimeout(t);
  }, [auth?.refreshToken, auth?.expiresAt, auth?.orgId]);

  const switchOrg = useCallback(
    async (orgId) => {
      if (!auth) return;
      setCredential(auth.token, orgId);
      const { data, errors } = await gqlRaw(WHO, {}, { orgId }).catch((e) => ({ data: null, errors: [e] }));
      if (!data?.viewer) {
        setBootError(errors[0]);
        setCredential(auth.token, auth.orgId);
        return;
      }
      setAuth((a) => ({ ...a, orgId, viewer: { ...data.viewer, organization: data.viewer.organization || UNKNOWN_ORG }, orgs: data.organizations?.length ? data.organizations : a.orgs }));
    },
    [auth],
  );

  const refreshOrgs = useCallback(async () => {
    const { data } = await gqlRaw(WHO, {});
    if (data?.viewer) setAuth((a) => ({ ...a, viewer: { ...data.viewer, organization: data.viewer.organization || UNKNOWN_ORG }, orgs: data.organizations?.length ? data.organizations : a.orgs }));
  }, []);

  const session = useMemo(
    () =>
      auth && {
        ...auth,
        role: auth.viewer.role,
        scopes: auth.viewer.scopes,
        isAdmin: !!auth.user?.isPlatformAdmin && auth.kind === 'USER',
        org: auth.viewer.organization,
        signOut: () => signOut(),
        switchOrg,
        refreshOrgs,
      },
    [auth, signOut, switchOrg, refreshOrgs],
  );

  if (!session) {
    const onRegister = path === '/register';
    return (
      <div className="auth-wrap">
        {notice && (
          <div className="warn-box" role="status">
            {notice}
          </div>
        )}
        {onRegister ? (
          <Register start={start} busy={booting} error={bootError} />
        ) : (
          <SignIn start={start} busy={booting} error={bootError} />
        )}
      </div>
    );
  }

  if (path === '/register' || path === '/sign-in') return <Redirect to="/" />;

  return (
    <SessionContext.Provider value={session}>
      <Shell session={session} path={path}>
        {bootError && <ErrorBox error={bootError} title="Switching organization failed" />}
        <div key={session.orgId || 'org'}>{route(path)}</div>
      </Shell>
    </SessionContext.Provider>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
