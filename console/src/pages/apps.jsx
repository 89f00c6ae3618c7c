import { useEffect, useRef, useState } from 'react';
import { gql, scopeList } from '../api.js';
import { navigate, useAction, useQuery, useSubscription } from '../hooks.js';
import { useSession } from '../session.js';
import {
  Badge, Card, Empty, ErrorBox, Field, Link, Modal, Page, QueryState, SecretBox, Status, Time, date, formValues,
  intOrNull, list, money, num, pct,
} from '../ui.jsx';

const CATEGORIES = [
  'INTEGRATIONS', 'ANALYTICS', 'AUTOMATION', 'COMMUNICATION', 'STORAGE', 'SECURITY', 'DEVELOPER_TOOLS',
  'WORKFLOW_AUTOMATION',
];
const PRICING = ['FREE', 'FIXED', 'USAGE_BASED', 'FREEMIUM'];
const words = (s) => s.toLowerCase().replace(/_/g, ' ');

function price(p) {
  if (!p || p.model === 'FREE') return 'Free';
  const m = money({ amount: p.amount || 0, currency: p.currency });
  if (p.model === 'USAGE_BASED') return `${m} per 1,000 calls`;
  if (p.model === 'FREEMIUM') return `Free, paid tier ${m}/month`;
  return `${m}/month`;
}

function Stars({ value }) {
  if (value == null) return <span className="muted">no ratings</span>;
  const full = Math.round(value);
  return (
    <span className="stars" aria-label={`${value.toFixed(1)} out of 5`}>
      {'★'.repeat(full)}
      {'☆'.repeat(5 - full)} <span className="muted">{value.toFixed(1)}</span>
    </span>
  );
}

const APP_FIELDS = `id name slug description longDescription category iconUrl version status reviewReason submittedAt
  reviewedAt publishedAt deprecatedAt featured pricing { model amount currency } features requestedScopes docsUrl supportUrl
  installCount rating reviewCount developer { id name } createdAt updatedAt`;

function AppForm({ initial, onSubmit, busy, error, submitLabel, creating }) {
  const a = initial || {};
  return (
    <form
      aria-label={submitLabel}
      onSubmit={(e) => {
        e.preventDefault();
        const form = new FormData(e.currentTarget);
        const v = formValues(e.currentTarget);
        const input = {
          name: v.name,
          description: v.description,
          longDescription: v.longDescription,
          category: v.category,
          version: v.version || undefined,
          features: v.features.split('\n').map((s) => s.trim()).filter(Boolean),
          requestedScopes: form.getAll('requestedScopes').map(String),
          docsUrl: v.docsUrl || null,
          supportUrl: v.supportUrl || null,
          iconUrl: v.iconUrl || null,
          redirectUris: list(v.redirectUris),
          pricing: { model: v.pricingModel, amount: v.pricingModel === 'FREE' ? null : intOrNull(v.pricingAmount), currency: 'USD' },
          accessTokenLifetime: intOrNull(v.accessTokenLifetime) ?? undefined,
        };
        if (creating) {
          input.clientType = v.clientType;
          if (v.slug) input.slug = v.slug;
        }
        onSubmit(input);
      }}
    >
      <div className="row wrap">
        <Field label="Name">
          <input name="name" required maxLength={100} defaultValue={a.name || ''} />
        </Field>
        {creating && (
          <Field label="Slug (optional)" hint="3–60 lowercase letters, digits, hyphens.">
            <input name="slug" pattern="[a-z0-9-]{3,60}" />
          </Field>
        )}
        <Field label="Category">
          <select name="category" defaultValue={a.category || 'INTEGRATIONS'}>
            {CATEGORIES.map((c) => (
              <option key={c} value={c}>
                {words(c)}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Version" className="narrow">
          <input name="version" defaultValue={a.version || '1.0.0'} />
        </Field>
      </div>
      <Field label="Short description">
        <input name="description" required maxLength={500} defaultValue={a.description || ''} />
      </Field>
      <Field label="Long description (Markdown)">
        <textarea name="longDescription" rows={3} defaultValue={a.longDescription || ''} />
      </Field>
      <Field label="Features" hint="One per line.">
        <textarea name="features" rows={2} defaultValue={(a.features || []).join('\n')} />
      </Field>
      <fieldset className="scopes">
        <legend>Scopes it asks installing organizations for</legend>
        <div className="scope-grid">
          {scopeList().map(({ name: s, description }) => (
            <label className="check" key={s} title={description}>
              <input type="checkbox" name="requestedScopes" value={s} defaultChecked={(a.requestedScopes || ['usage:read']).includes(s)} />
              <code>{s}</code>
            </label>
          ))}
        </div>
      </fieldset>
      <Field label="OAuth redirect URIs" hint="Exact URIs, one per line (https, or http on localhost).">
        <textarea name="redirectUris" rows={2} spellCheck={false} defaultValue={(a.oauthConfig?.redirectUris || []).join('\n')} />
      </Field>
      <div className="row wrap">
        {creating && (
          <Field label="Client type">
            <select name="clientType" defaultValue="CONFIDENTIAL">
              <option value="CONFIDENTIAL">Confidential (server, client secret)</option>
              <option value="PUBLIC">Public (browser/mobile, PKCE)</option>
            </select>
          </Field>
        )}
        <Field label="Access token lifetime (s)" className="narrow">
          <input name="accessTokenLifetime" type="number" min={60} max={86400} defaultValue={a.oauthConfig?.accessTokenLifetime ?? ''} />
        </Field>
        <Field label="Pricing">
          <select name="pricingModel" defaultValue={a.pricing?.model || 'FREE'}>
            {PRICING.map((p) => (
              <option key={p} value={p}>
                {words(p)}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Price (cents, USD)" className="narrow">
          <input name="pricingAmount" type="number" min={0} defaultValue={a.pricing?.amount ?? ''} />
        </Field>
      </div>
      <div className="row wrap">
        <Field label="Docs URL">
          <input name="docsUrl" type="url" defaultValue={a.docsUrl || ''} />
        </Field>
        <Field label="Support URL">
          <input name="supportUrl" type="url" defaultValue={a.supportUrl || ''} />
        </Field>
        <Field label="Icon URL">
          <input name="iconUrl" type="url" defaultValue={a.iconUrl || ''} />
        </Field>
      </div>
      <ErrorBox error={error} />
      <div className="modal-foot">
        <button type="submit" className="btn primary" disabled={busy}>
          {busy ? 'Saving…' : submitLabel}
        </button>
      </div>
    </form>
  );
}

export function MyApps() {
  const q = useQuery(`query MyApps { myApps(first: 50) { totalCount nodes { ${APP_FIELDS} } } }`);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState(null);
  const act = useAction();
  const close = () => {
    setCreating(false);
    setCreated(null);
  };
  return (
    <Page
      title="My apps"
      subtitle="Apps your organization publishes to the marketplace."
      actions={
        <button type="button" className="btn primary" onClick={() => setCreating(true)}>
          Create app
        </button>
      }
    >
      <QueryState q={q} label="Loading your apps…">
        {(d) =>
          d.myApps.nodes.length ? (
            <div className="table-wrap">
              <table className="table" aria-label="My apps">
                <thead>
                  <tr>
                    <th>App</th>
                    <th>Status</th>
                    <th>Version</th>
                    <th className="num">Installs</th>
                    <th>Rating</th>
                    <th>Updated</th>
                  </tr>
                </thead>
                <tbody>
                  {d.myApps.nodes.map((a) => (
                    <tr key={a.id}>
                      <td>
                        <Link to={`/apps/${a.id}`}>{a.name}</Link>
                        <div className="muted small">{a.description}</div>
                      </td>
                      <td>
                        <Status value={a.status} />
                      </td>
                      <td>{a.version}</td>
                      <td className="num">{num(a.installCount)}</td>
                      <td>
                        <Stars value={a.rating} />
                      </td>
                      <td>
                        <Time value={a.updatedAt} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>No apps yet. Create one, submit it for review, and publish it to the marketplace.</Empty>
          )
        }
      </QueryState>
      {creating && (
        <Modal title={created ? 'App created' : 'Create an app'} onClose={close} wide>
          {created ? (
            <>
              <p>
                <strong>{created.app.name}</strong> is a draft. Its OAuth <code>client_id</code> is <code>{created.app.id}</code>.
              </p>
              {created.clientSecret ? (
                <SecretBox secret={created.clientSecret} what="client secret" />
              ) : (
                <p className="muted">A public client has no secret: it uses PKCE.</p>
              )}
              <div className="modal-foot">
                <button type="button" className="btn primary" onClick={() => navigate(`/apps/${created.app.id}`)}>
                  Open app
                </button>
              </div>
            </>
          ) : (
            <AppForm
              creating
              submitLabel="Create app"
              busy={act.busy}
              error={act.error}
              onSubmit={async (input) => {
                const r = await act.run(() =>
                  gql('mutation($input: CreateAppInput!) { createApp(input: $input) { clientSecret app { id name } } }', { input }),
                );
                if (r) {
                  setCreated(r.createApp);
                  q.reload(true);
                }
              }}
            />
          )}
        </Modal>
      )}
    </Page>
  );
}

const MY_APP = `query MyApp($id: ID!) { app(id: $id) { ${APP_FIELDS}
  oauthConfig { clientId clientType redirectUris accessTokenLifetime refreshTokenLifetime secrets { lastFour createdAt expiresAt } }
  analytics(period: LAST_30_DAYS) { installs uninstalls activeInstallations apiCalls apiErrors rating reviewCount newReviews } } }`;

export function MyAppDetail({ id }) {
  const q = useQuery(MY_APP, { id });
  const act = useAction();
  const [modal, setModal] = useState(null);
  const [secret, setSecret] = useState(null);
  const a = q.data?.app;
  const mutate = (query, vars) =>
    act.run(async () => {
      const r = await gql(query, vars);
      q.reload(true);
      return r;
    });
  return (
    <Page title={a ? a.name : 'App'} subtitle={<Link to="/apps">← My apps</Link>}>
      <QueryState q={q} label="Loading the app…">
        {() => (
          <>
            <ErrorBox error={act.error} />
            {a.status === 'REJECTED' && a.reviewReason && (
              <div className="warn-box" role="status">
                Rejected {date(a.reviewedAt)}: {a.reviewReason}
              </div>
            )}
            {secret && (
              <SecretBox secret={secret.clientSecret} what="client secret">
                <p className="muted">Previous secrets stop working {date(secret.previousSecretExpiresAt)}.</p>
              </SecretBox>
            )}
            <div className="row wrap actions-bar">
              <Status value={a.status} />
              {(a.status === 'DRAFT' || a.status === 'REJECTED' || a.status === 'APPROVED') && (
                <button type="button" className="btn" onClick={() => setModal('edit')}>
                  Edit
                </button>
              )}
              {(a.status === 'DRAFT' || a.status === 'REJECTED') && (
                <button type="button" className="btn primary" disabled={act.busy} onClick={() => mutate('mutation($id: ID!) { submitApp(id: $id) { id status } }', { id })}>
                  Submit for review
                </button>
              )}
              {a.status === 'APPROVED' && (
                <button type="button" className="btn primary" disabled={act.busy} onClick={() => mutate('mutation($id: ID!) { publishApp(id: $id) { id status } }', { id })}>
                  Publish to the marketplace
                </button>
              )}
              {a.status === 'ACTIVE' && (
                <>
                  <Link className="btn" to={`/marketplace/${a.slug}`}>
                    View listing
                  </Link>
                  <button type="button" className="btn danger" onClick={() => setModal('deprecate')}>
                    Deprecate
                  </button>
                </>
              )}
              {a.oauthConfig?.clientType === 'CONFIDENTIAL' && (
                <button
                  type="button"
                  className="btn"
                  disabled={act.busy}
                  onClick={async () => {
                    const r = await mutate(
                      'mutation($id: ID!) { rotateAppClientSecret(id: $id, expireOldInSeconds: 3600) { clientSecret previousSecretExpiresAt } }',
                      { id },
                    );
                    if (r) setSecret(r.rotateAppClientSecret);
                  }}
                >
                  Rotate client secret
                </button>
              )}
              {(a.status === 'DRAFT' || a.status === 'REJECTED' || a.status === 'APPROVED' || a.status === 'DEPRECATED') && (
                <button type="button" className="btn danger" onClick={() => setModal('delete')}>
                  Delete
                </button>
              )}
            </div>
            <div className="grid2">
              <Card title="Listing">
                <dl className="props">
                  <dt>Slug</dt>
                  <dd>
                    <code>{a.slug}</code>
                  </dd>
                  <dt>Category</dt>
                  <dd>{words(a.category)}</dd>
                  <dt>Version</dt>
                  <dd>{a.version}</dd>
                  <dt>Price</dt>
                  <dd>{price(a.pricing)}</dd>
                  <dt>Scopes</dt>
                  <dd>{a.requestedScopes.join(' ')}</dd>
                  <dt>Submitted</dt>
                  <dd>{date(a.submittedAt)}</dd>
                  <dt>Published</dt>
                  <dd>{date(a.publishedAt)}</dd>
                </dl>
                <p>{a.description}</p>
              </Card>
              <Card title="OAuth settings">
                {a.oauthConfig && (
                  <dl className="props">
                    <dt>client_id</dt>
                    <dd>
                      <code>{a.oauthConfig.clientId}</code>
                    </dd>
                    <dt>Client type</dt>
                    <dd>{words(a.oauthConfig.clientType)}</dd>
                    <dt>Redirect URIs</dt>
                    <dd>{a.oauthConfig.redirectUris.length ? a.oauthConfig.redirectUris.map((u) => <div key={u}><code>{u}</code></div>) : 'none'}</dd>
                    <dt>Token lifetimes</dt>
                    <dd>
                      access {a.oauthConfig.accessTokenLifetime} s · refresh {a.oauthConfig.refreshTokenLifetime} s
                    </dd>
                    <dt>Client secrets</dt>
                    <dd>
                      {a.oauthConfig.secrets.length
                        ? a.oauthConfig.secrets.map((s) => (
                            <div key={s.lastFour + s.createdAt}>
                              <code>…{s.lastFour}</code> <span className="muted">issued {date(s.createdAt)}{s.expiresAt ? `, ends ${date(s.expiresAt)}` : ''}</span>
                            </div>
                          ))
                        : 'none (public client)'}
                    </dd>
                    <dt>Endpoints</dt>
                    <dd>
                      <code>/oauth/authorize</code> · <code>/oauth/token</code>
                    </dd>
                  </dl>
                )}
              </Card>
            </div>
            <Card title="Analytics (last 30 days)">
              <div className="stats">
                {[
                  ['Active installations', num(a.analytics.activeInstallations)],
                  ['Installs / uninstalls', `${num(a.analytics.installs)} / ${num(a.analytics.uninstalls)}`],
                  ['API calls', num(a.analytics.apiCalls)],
                  ['Error rate', a.analytics.apiCalls ? pct(a.analytics.apiErrors / a.analytics.apiCalls) : '—'],
                  ['Rating', a.analytics.rating ? a.analytics.rating.toFixed(1) : '—'],
                  ['Reviews (new)', `${a.analytics.reviewCount} (${a.analytics.newReviews})`],
                ].map(([l, v]) => (
                  <div className="stat" key={l}>
                    <div className="stat-label">{l}</div>
                    <div className="stat-value">{v}</div>
                  </div>
                ))}
              </div>
            </Card>
            {modal === 'edit' && (
              <Modal title={`Edit ${a.name}`} onClose={() => setModal(null)} wide>
                <AppForm
                  initial={a}
                  submitLabel="Save changes"
                  busy={act.busy}
                  error={act.error}
                  onSubmit={async (input) => {
                    const r = await mutate('mutation($id: ID!, $input: UpdateAppInput!) { updateApp(id: $id, input: $input) { id } }', { id, input });
                    if (r) setModal(null);
                  }}
                />
              </Modal>
            )}
            {modal === 'deprecate' && (
              <Modal title={`Deprecate ${a.name}`} onClose={() => setModal(null)}>
                <form
                  onSubmit={async (e) => {
                    e.preventDefault();
                    const r = await mutate('mutation($id: ID!, $r: String) { deprecateApp(id: $id, reason: $r) { id status } }', {
                      id,
                      r: formValues(e.currentTarget).reason || null,
                    });
                    if (r) setModal(null);
                  }}
                >
                  <p>The app leaves the marketplace for good and is uninstalled everywhere.</p>
                  <Field label="Reason">
                    <input name="reason" maxLength={2000} />
                  </Field>
                  <div className="modal-foot">
                    <button type="submit" className="btn danger">
                      Deprecate
                    </button>
                  </div>
                </form>
              </Modal>
            )}
            {modal === 'delete' && (
              <Modal title={`Delete ${a.name}`} onClose={() => setModal(null)}>
                <p>The app and its OAuth client are deleted.</p>
                <div className="modal-foot">
                  <button
                    type="button"
                    className="btn danger"
                    onClick={async () => {
                      const r = await act.run(() => gql('mutation($id: ID!) { deleteApp(id: $id) { deletedId } }', { id }));
                      if (r) navigate('/apps');
                    }}
                  >
                    Delete
                  </button>
                </div>
              </Modal>
            )}
          </>
        )}
      </QueryState>
    </Page>
  );
}

export function Marketplace() {
  const [filters, setFilters] = useState({ search: '', category: '', pricingModel: '', minRating: '', sort: 'POPULAR' });
  const [applied, setApplied] = useState(filters);
  const vars = {
    search: applied.search || null,
    category: applied.category || null,
    pricingModel: applied.pricingModel || null,
    minRating: applied.minRating ? Number(applied.minRating) : null,
    sort: applied.sort,
  };
  const q = useQuery(
    `query Marketplace($search: String, $category: AppCategory, $pricingModel: AppPricingModel, $minRating: Float, $sort: MarketplaceSort) {
      marketplaceApps(search: $search, category: $category, pricingModel: $pricingModel, minRating: $minRating, sort: $sort, first: 30) {
        totalCount nodes { id name slug description category iconUrl pricing { model amount currency } rating reviewCount installCount featured developer { name } } }
      installedApps { app { id } }
    }`,
    vars,
  );
  const set = (k) => (e) => setFilters((f) => ({ ...f, [k]: e.target.value }));
  return (
    <Page title="Marketplace" subtitle="Apps that extend Gantry. Installing one grants it the scopes you approve.">
      <form
        className="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(filters);
        }}
      >
        <Field label="Search" className="inline">
          <input type="search" value={filters.search} onChange={set('search')} placeholder="slack, backup…" />
        </Field>
        <Field label="Category" className="inline">
          <select value={filters.category} onChange={set('category')}>
            <option value="">All</option>
            {CATEGORIES.map((c) => (
              <option key={c} value={c}>
                {words(c)}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Pricing" className="inline">
          <select value={filters.pricingModel} onChange={set('pricingModel')}>
            <option value="">Any</option>
            {PRICING.map((p) => (
              <option key={p} value={p}>
                {words(p)}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Rating" className="inline">
          <select value={filters.minRating} onChange={set('minRating')}>
            <option value="">Any</option>
            <option value="3">3+</option>
            <option value="4">4+</option>
          </select>
        </Field>
        <Field label="Sort" className="inline">
          <select value={filters.sort} onChange={set('sort')}>
            <option value="POPULAR">Popular</option>
            <option value="NEWEST">Newest</option>
            <option value="RATING">Rating</option>
          </select>
        </Field>
        <button type="submit" className="btn">
          Apply
        </button>
      </form>
      <QueryState q={q} label="Loading the marketplace…">
        {(d) => {
          const installed = new Set((d.installedApps || []).map((i) => i.app.id));
          return d.marketplaceApps.nodes.length ? (
            <ul className="app-grid" aria-label="Apps">
              {d.marketplaceApps.nodes.map((a) => (
                <li key={a.id} className="app-card">
                  <div className="app-card-head">
                    <AppIcon app={a} />
                    <div>
                      <Link to={`/marketplace/${a.slug}`} className="app-name">
                        {a.name}
                      </Link>
                      <div className="muted small">by {a.developer.name}</div>
                    </div>
                  </div>
                  <p>{a.description}</p>
                  <div className="row wrap small">
                    <Stars value={a.rating} /> <span className="muted">({a.reviewCount})</span>
                    <span className="muted">{num(a.installCount)} installs</span>
                    <Badge>{words(a.category)}</Badge>
                    {a.featured && <Badge tone="ok">featured</Badge>}
                    {installed.has(a.id) && <Badge tone="ok">installed</Badge>}
                  </div>
                  <div className="small">{price(a.pricing)}</div>
                </li>
              ))}
            </ul>
          ) : (
            <Empty>No app matches.</Empty>
          );
        }}
      </QueryState>
    </Page>
  );
}

function AppIcon({ app }) {
  // Icons are remote URLs; the console loads nothing from other origins, so it draws a monogram.
  return (
    <span className="app-icon" aria-hidden="true">
      {app.name.slice(0, 1).toUpperCase()}
    </span>
  );
}

/** The server's OAuth consent page for this app, in a popup. */
function consentUrl(app) {
  const p = new URLSearchParams({ response_type: 'code', client_id: app.id, scope: app.requestedScopes.join(' ') });
  const state = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
  p.set('state', state);
  if (app.oauthConfig?.redirectUris?.length) p.set('redirect_uri', app.oauthConfig.redirectUris[0]);
  return `/oauth/authorize?${p}`;
}

export function MarketplaceApp({ slug }) {
  const session = useSession();
  const q = useQuery(
    `query MarketplaceApp($slug: String!) {
      app(slug: $slug) { ${APP_FIELDS} oauthConfig { redirectUris }
        myReview { id rating comment }
        reviews(first: 20) { totalCount nodes { id rating comment helpfulCount reviewerName createdAt } } }
      installedApps { id scopes createdAt app { id } }
    }`,
    { slug },
  );
  const act = useAction();
  const [waiting, setWaiting] = useState(false);
  const popup = useRef(null);
  const a = q.data?.app;
  const { reload } = q;
  const install = q.data?.installedApps?.find((i) => i.app.id === a?.id);

  // While the consent window is open: refresh when an installation event arrives or it closes.
  useSubscription(
    'subscription Installs { events(types: ["install.*"]) { id type data } }',
    {},
    () => q.reload(true),
    { skip: !waiting },
  );
  useEffect(() => {
    if (!waiting) return undefined;
    const t = setInterval(() => {
      if (!popup.current || popup.current.closed) {
        setWaiting(false);
        reload(true);
      }
    }, 500);
    return () => clearInterval(t);
  }, [waiting, reload]);
  useEffect(() => {
    if (install && waiting) {
      setWaiting(false);
      try {
        popup.current?.close();
      } catch {
        // another origin
      }
    }
  }, [install, waiting]);

  return (
    <Page title={a ? a.name : 'App'} subtitle={<Link to="/marketplace">← Marketplace</Link>}>
      <QueryState q={q} label="Loading the app…">
        {(d) => (
          <>
            <div className="app-hero">
              <AppIcon app={a} />
              <div className="grow">
                <p className="lead">{a.description}</p>
                <div className="row wrap small">
                  <span>by {a.developer.name}</span>
                  <Stars value={a.rating} /> <span className="muted">{a.reviewCount} reviews</span>
                  <span className="muted">{num(a.installCount)} installs</span>
                  <Badge>{words(a.category)}</Badge>
                  <span>{price(a.pricing)}</span>
                  <span className="muted">v{a.version}</span>
                </div>
              </div>
              <div>
                {install ? (
                  <div className="installed-note">
                    <Badge tone="ok">Installed</Badge> <Link to="/installed">Manage</Link>
                  </div>
                ) : a.status === 'ACTIVE' ? (
                  <button
                    type="button"
                    className="btn primary"
                    disabled={waiting}
                    onClick={() => {
                      popup.current = window.open(consentUrl(a), 'gantry-consent', 'popup,width=560,height=760');
                      if (popup.current) setWaiting(true);
                      else window.location.assign(consentUrl(a));
                    }}
                  >
                    {waiting ? 'Waiting for consent…' : 'Install'}
                  </button>
                ) : (
                  <Status value={a.status} />
                )}
              </div>
            </div>
            {waiting && (
              <div className="warn-box" role="status">
                Approve the access in the consent window. This page updates when the installation is done.
              </div>
            )}
            <div className="grid2">
              <Card title="About">
                <div className="prewrap">{a.longDescription || a.description}</div>
                {a.features.length > 0 && (
                  <ul>
                    {a.features.map((f) => (
                      <li key={f}>{f}</li>
                    ))}
                  </ul>
                )}
                {(a.docsUrl || a.supportUrl) && (
                  <p>
                    {a.docsUrl && (
                      <a href={a.docsUrl} target="_blank" rel="noreferrer noopener">
                        Documentation
                      </a>
                    )}{' '}
                    {a.supportUrl && (
                      <a href={a.supportUrl} target="_blank" rel="noreferrer noopener">
                        Support
                      </a>
                    )}
                  </p>
                )}
              </Card>
              <Card title="Access it asks for">
                <ul className="list">
                  {a.requestedScopes.map((s) => (
                    <li key={s}>
                      <code>{s}</code>
                    </li>
                  ))}
                </ul>
              </Card>
            </div>
            <Card title={`Reviews (${a.reviews.totalCount})`}>
              {a.status === 'ACTIVE' && session.kind === 'USER' && (
                <form
                  className="review-form"
                  aria-label="Your review"
                  onSubmit={async (e) => {
                    e.preventDefault();
                    const v = formValues(e.currentTarget);
                    await act.run(async () => {
                      await gql('mutation($a: ID!, $r: Int!, $c: String) { submitAppReview(appId: $a, rating: $r, comment: $c) { created } }', {
                        a: a.id,
                        r: Number(v.rating),
                        c: v.comment || null,
                      });
                      q.reload(true);
                    });
                  }}
                >
                  <Field label={a.myReview ? 'Your rating (update)' : 'Your rating'} className="inline">
                    <select name="rating" defaultValue={a.myReview?.rating || 5}>
                      {[5, 4, 3, 2, 1].map((n) => (
                        <option key={n} value={n}>
                          {n} ★
                        </option>
                      ))}
                    </select>
                  </Field>
                  <Field label="Comment">
                    <textarea name="comment" rows={2} maxLength={5000} defaultValue={a.myReview?.comment || ''} />
                  </Field>
                  <button type="submit" className="btn" disabled={act.busy}>
                    {a.myReview ? 'Update review' : 'Post review'}
                  </button>
                  <ErrorBox error={act.error} />
                </form>
              )}
              {a.reviews.nodes.length ? (
                <ul className="reviews">
                  {a.reviews.nodes.map((r) => (
                    <li key={r.id}>
                      <Stars value={r.rating} /> <strong>{r.reviewerName || 'Someone'}</strong>{' '}
                      <span className="muted">
                        <Time value={r.createdAt} />
                      </span>
                      {r.comment && <p>{r.comment}</p>}
                      <button
                        type="button"
                        className="btn small ghost"
                        onClick={() =>
                          act.run(async () => {
                            await gql('mutation($id: ID!) { markReviewHelpful(id: $id) { id helpfulCount } }', { id: r.id });
                            q.reload(true);
                          })
                        }
                      >
                        Helpful ({r.helpfulCount})
                      </button>
                    </li>
                  ))}
                </ul>
              ) : (
                <Empty>No reviews yet.</Empty>
              )}
            </Card>
            {d.installedApps === null && <p className="muted">Sign in with a session to see whether it is installed.</p>}
          </>
        )}
      </QueryState>
    </Page>
  );
}

export function InstalledApps() {
  const q = useQuery('query Installed { installedApps { id scopes createdAt updatedAt app { id name slug description developer { name } } } }');
  const act = useAction();
  const [confirm, setConfirm] = useState(null);
  return (
    <Page title="Installed apps" actions={<Link className="btn" to="/marketplace">Browse the marketplace</Link>}>
      <ErrorBox error={act.error} />
      <QueryState q={q} label="Loading installed apps…">
        {(d) =>
          d.installedApps.length ? (
            <div className="table-wrap">
              <table className="table" aria-label="Installed apps">
                <thead>
                  <tr>
                    <th>App</th>
                    <th>Granted scopes</th>
                    <th>Installed</th>
                    <th>
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {d.installedApps.map((i) => (
                    <tr key={i.id}>
                      <td>
                        <Link to={`/marketplace/${i.app.slug}`}>{i.app.name}</Link>
                        <div className="muted small">by {i.app.developer.name}</div>
                      </td>
                      <td className="scopes-cell">{i.scopes.join(' ')}</td>
                      <td>{date(i.createdAt)}</td>
                      <td className="actions">
                        <button type="button" className="btn small danger" onClick={() => setConfirm(i)}>
                          Uninstall
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>
              No apps installed. <Link to="/marketplace">Browse the marketplace</Link>.
            </Empty>
          )
        }
      </QueryState>
      {confirm && (
        <Modal title={`Uninstall ${confirm.app.name}`} onClose={() => setConfirm(null)}>
          <p>Every token of the app stops working at once.</p>
          <div className="modal-foot">
            <button type="button" className="btn" onClick={() => setConfirm(null)}>
              Cancel
            </button>
            <button
              type="button"
              className="btn danger"
              disabled={act.busy}
              onClick={async () => {
                const r = await act.run(() => gql('mutation($id: ID!) { uninstallApp(id: $id) { installation { id uninstalledAt } } }', { id: confirm.id }));
                if (r) {
                  setConfirm(null);
                  q.reload(true);
                }
              }}
            >
              Uninstall
            </button>
          </div>
        </Modal>
      )}
    </Page>
  );
}
