import { useState } from 'react';
import { gql } from '../api.js';
import { navigate, useAction, useQuery } from '../hooks.js';
import { useSession } from '../session.js';
import {
  Badge, Card, Empty, ErrorBox, Field, Modal, Page, QueryState, Status, Tabs, date, day, formValues, intOrNull, money, num, pct,
} from '../ui.jsx';

const TABS = [
  ['review', 'App review'],
  ['users', 'Users'],
  ['orgs', 'Organizations'],
  ['plans', 'Plans'],
  ['flags', 'Feature flags'],
  ['analytics', 'Analytics'],
];

export function Admin({ tab }) {
  const session = useSession();
  if (!session.isAdmin) {
    return (
      <Page title="Admin">
        <ErrorBox error={{ message: 'Only platform administrators may open this page.', code: 'FORBIDDEN' }} />
      </Page>
    );
  }
  return (
    <Page title="Admin" subtitle="Platform administration">
      <Tabs label="Admin sections" value={tab} onChange={(t) => navigate(`/admin/${t}`)} tabs={TABS} />
      {tab === 'review' && <Review />}
      {tab === 'users' && <Users />}
      {tab === 'orgs' && <Orgs />}
      {tab === 'plans' && <Plans />}
      {tab === 'flags' && <Flags />}
      {tab === 'analytics' && <Analytics />}
    </Page>
  );
}

function Review() {
  const q = useQuery(`query Pending { pendingApps(first: 50) { totalCount nodes { id name slug description category version submittedAt
    requestedScopes docsUrl supportUrl pricing { model amount currency } developer { id name } } } }`);
  const act = useAction();
  const [reject, setReject] = useState(null);
  return (
    <>
      <ErrorBox error={act.error} />
      <QueryState q={q} label="Loading the review queue…">
        {(d) =>
          d.pendingApps.nodes.length ? (
            <ul className="review-queue" aria-label="Apps waiting for review">
              {d.pendingApps.nodes.map((a) => (
                <li key={a.id} className="card" data-app-id={a.id}>
                  <div className="row wrap">
                    <strong>{a.name}</strong> <span className="muted">v{a.version} by {a.developer.name}</span>
                    <Badge>{a.category.toLowerCase().replace(/_/g, ' ')}</Badge>
                    <span className="muted small">submitted {date(a.submittedAt)}</span>
                  </div>
                  <p>{a.description}</p>
                  <p className="small">
                    Scopes: <code>{a.requestedScopes.join(' ')}</code>
                  </p>
                  <div className="row">
                    <button
                      type="button"
                      className="btn primary"
                      disabled={act.busy}
                      onClick={() =>
                        act.run(async () => {
                          await gql('mutation($id: ID!) { approveApp(id: $id) { id status } }', { id: a.id });
                          q.reload(true);
                        })
                      }
                    >
                      Approve {a.name}
                    </button>
                    <button type="button" className="btn danger" onClick={() => setReject(a)}>
                      Reject
                    </button>
                  </div>
                </li>
              ))}
            </ul>
          ) : (
            <Empty>The review queue is empty.</Empty>
          )
        }
      </QueryState>
      {reject && (
        <Modal title={`Reject ${reject.name}`} onClose={() => setReject(null)}>
          <form
            onSubmit={async (e) => {
              e.preventDefault();
              const reason = formValues(e.currentTarget).reason;
              const r = await act.run(() => gql('mutation($id: ID!, $r: String!) { rejectApp(id: $id, reason: $r) { id status } }', { id: reject.id, r: reason }));
              if (r) {
                setReject(null);
                q.reload(true);
              }
            }}
          >
            <Field label="Reason (the developer sees it)">
              <textarea name="reason" required minLength={1} maxLength={2000} rows={3} />
            </Field>
            <ErrorBox error={act.error} />
            <div className="modal-foot">
              <button type="submit" className="btn danger">
                Reject
              </button>
            </div>
          </form>
        </Modal>
      )}
    </>
  );
}

function SuspendModal({ what, onClose, onSubmit, error }) {
  return (
    <Modal title={`Suspend ${what}`} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onSubmit(formValues(e.currentTarget).reason);
        }}
      >
        <Field label="Reason (kept in the audit log)">
          <input name="reason" required />
        </Field>
        <ErrorBox error={error} />
        <div className="modal-foot">
          <button type="submit" className="btn danger">
            Suspend
          </button>
        </div>
      </form>
    </Modal>
  );
}

function Users() {
  const [search, setSearch] = useState('');
  const [applied, setApplied] = useState('');
  const q = useQuery(
    `query Users($s: String) { adminUsers(search: $s, first: 50) { totalCount nodes { id email name isPlatformAdmin emailVerified
      suspendedAt suspendedReason createdAt memberships { role organization { name } } } } }`,
    { s: applied || null },
  );
  const act = useAction();
  const [suspend, setSuspend] = useState(null);
  const mutate = (query, vars) =>
    act.run(async () => {
      const r = await gql(query, vars);
      q.reload(true);
      return r;
    });
  return (
    <>
      <form
        className="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(search);
        }}
      >
        <Field label="Search users" className="inline">
          <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
        </Field>
        <button type="submit" className="btn">
          Search
        </button>
      </form>
      <ErrorBox error={act.error} />
      <QueryState q={q} label="Loading users…">
        {(d) => (
          <div className="table-wrap">
            <table className="table" aria-label="Users">
              <thead>
                <tr>
                  <th>User</th>
                  <th>Organizations</th>
                  <th>State</th>
                  <th>Created</th>
                  <th>
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.adminUsers.nodes.map((u) => (
                  <tr key={u.id}>
                    <td>
                      {u.name} {u.isPlatformAdmin && <Badge tone="warn">admin</Badge>}
                      <div className="muted small">{u.email}</div>
                    </td>
                    <td className="small">{u.memberships.map((m) => `${m.organization.name} (${(m.role || '').toLowerCase()})`).join(', ')}</td>
                    <td>
                      {u.suspendedAt ? (
                        <>
                          <Status value="SUSPENDED" /> <span className="muted small">{u.suspendedReason}</span>
                        </>
                      ) : (
                        <Status value="ACTIVE" />
                      )}
                    </td>
                    <td>{day(u.createdAt)}</td>
                    <td className="actions">
                      {u.suspendedAt ? (
                        <button type="button" className="btn small" onClick={() => mutate('mutation($id: ID!) { unsuspendUser(id: $id) { id } }', { id: u.id })}>
                          Unsuspend
                        </button>
                      ) : (
                        <button type="button" className="btn small danger" onClick={() => setSuspend(u)}>
                          Suspend
                        </button>
                      )}
                      <button
                        type="button"
                        className="btn small ghost"
                        onClick={() =>
                          mutate(
                            u.isPlatformAdmin
                              ? 'mutation($id: ID!) { revokePlatformAdmin(userId: $id) { id } }'
                              : 'mutation($id: ID!) { grantPlatformAdmin(userId: $id) { id } }',
                            { id: u.id },
                          )
                        }
                      >
                        {u.isPlatformAdmin ? 'Revoke admin' : 'Make admin'}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p className="muted small">{d.adminUsers.totalCount} users</p>
          </div>
        )}
      </QueryState>
      {suspend && (
        <SuspendModal
          what={suspend.email}
          error={act.error}
          onClose={() => setSuspend(null)}
          onSubmit={async (reason) => {
            const r = await mutate('mutation($id: ID!, $r: String!) { suspendUser(id: $id, reason: $r) { id } }', { id: suspend.id, r: reason });
            if (r) setSuspend(null);
          }}
        />
      )}
    </>
  );
}

function Orgs() {
  const [search, setSearch] = useState('');
  const [applied, setApplied] = useState('');
  const q = useQuery(
    `query Orgs($s: String) { adminOrganizations(search: $s, first: 50) { totalCount nodes { id name slug isPersonal suspendedAt suspendedReason
      deletedAt createdAt plan { id name } } } plans { id name } }`,
    { s: applied || null },
  );
  const act = useAction();
  const [suspend, setSuspend] = useState(null);
  const mutate = (query, vars) =>
    act.run(async () => {
      const r = await gql(query, vars);
      q.reload(true);
      return r;
    });
  return (
    <>
      <form
        className="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(search);
        }}
      >
        <Field label="Search organizations" className="inline">
          <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
        </Field>
        <button type="submit" className="btn">
          Search
        </button>
      </form>
      <ErrorBox error={act.error} />
      <QueryState q={q} label="Loading organizations…">
        {(d) => (
          <div className="table-wrap">
            <table className="table" aria-label="Organizations">
              <thead>
                <tr>
                  <th>Organization</th>
                  <th>Plan</th>
                  <th>State</th>
                  <th>Created</th>
                  <th>
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.adminOrganizations.nodes.map((o) => (
                  <tr key={o.id}>
                    <td>
                      {o.name} {o.isPersonal && <Badge>personal</Badge>}
                      <div className="muted small">{o.slug}</div>
                    </td>
                    <td>
                      <select
                        aria-label={`Plan of ${o.name}`}
                        value={o.plan.id}
                        onChange={(e) => mutate('mutation($o: ID!, $p: ID!) { setOrganizationPlan(organizationId: $o, planId: $p) { id } }', { o: o.id, p: e.target.value })}
                      >
                        {d.plans.map((p) => (
                          <option key={p.id} value={p.id}>
                            {p.name}
                          </option>
                        ))}
                      </select>
                    </td>
                    <td>
                      {o.deletedAt ? (
                        <Badge>deleted</Badge>
                      ) : o.suspendedAt ? (
                        <>
                          <Status value="SUSPENDED" /> <span className="muted small">{o.suspendedReason}</span>
                        </>
                      ) : (
                        <Status value="ACTIVE" />
                      )}
                    </td>
                    <td>{day(o.createdAt)}</td>
                    <td className="actions">
                      {o.suspendedAt ? (
                        <button type="button" className="btn small" onClick={() => mutate('mutation($id: ID!) { unsuspendOrganization(id: $id) { id } }', { id: o.id })}>
                          Unsuspend
                        </button>
                      ) : (
                        <button type="button" className="btn small danger" onClick={() => setSuspend(o)}>
                          Suspend
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p className="muted small">{d.adminOrganizations.totalCount} organizations</p>
          </div>
        )}
      </QueryState>
      {suspend && (
        <SuspendModal
          what={suspend.name}
          error={act.error}
          onClose={() => setSuspend(null)}
          onSubmit={async (reason) => {
            const r = await mutate('mutation($id: ID!, $r: String!) { suspendOrganization(id: $id, reason: $r) { id } }', { id: suspend.id, r: reason });
            if (r) setSuspend(null);
          }}
        />
      )}
    </>
  );
}

const PLAN_LIMITS = [
  ['perSecond', 'Per second'],
  ['perHour', 'Per hour'],
  ['perDay', 'Per day'],
  ['monthlyQuota', 'Monthly quota'],
  ['maxApiKeys', 'API keys'],
  ['maxWebhookEndpoints', 'Webhook endpoints'],
  ['maxMembers', 'Members'],
  ['maxSubscriptions', 'Subscriptions'],
];

function Plans() {
  const q = useQuery(`query AdminPlans { plans { id slug name monthlyPrice { amount currency } quotaMode burst
    ${PLAN_LIMITS.map(([k]) => k).join(' ')} } }`);
  const act = useAction();
  const [edit, setEdit] = useState(null);
  return (
    <>
      <ErrorBox error={act.error} />
      <QueryState q={q} label="Loading plans…">
        {(d) => (
          <div className="table-wrap">
            <table className="table" aria-label="Plans">
              <thead>
                <tr>
                  <th>Plan</th>
                  <th>Price</th>
                  {PLAN_LIMITS.map(([k, l]) => (
                    <th key={k} className="num">
                      {l}
                    </th>
                  ))}
                  <th>
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.plans.map((p) => (
                  <tr key={p.id}>
                    <td>
                      {p.name} <span className="muted small">{p.slug}</span>
                    </td>
                    <td>{p.monthlyPrice ? money(p.monthlyPrice) : 'custom'}</td>
                    {PLAN_LIMITS.map(([k]) => (
                      <td key={k} className="num">
                        {p[k] == null ? '∞' : num(p[k])}
                      </td>
                    ))}
                    <td>
                      <button type="button" className="btn small" onClick={() => setEdit(p)}>
                        Edit
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </QueryState>
      {edit && (
        <Modal title={`Edit ${edit.name}`} onClose={() => setEdit(null)} wide>
          <form
            onSubmit={async (e) => {
              e.preventDefault();
              const v = formValues(e.currentTarget);
              const input = { name: v.name, quotaMode: v.quotaMode };
              for (const [k] of PLAN_LIMITS) input[k] = intOrNull(v[k]);
              const r = await act.run(() => gql('mutation($id: ID!, $input: UpdatePlanInput!) { updatePlan(id: $id, input: $input) { id } }', { id: edit.id, input }));
              if (r) {
                setEdit(null);
                q.reload(true);
              }
            }}
          >
            <div className="row wrap">
              <Field label="Name">
                <input name="name" defaultValue={edit.name} required />
              </Field>
              <Field label="Past the quota">
                <select name="quotaMode" defaultValue={edit.quotaMode}>
                  <option value="HARD">Refuse (hard)</option>
                  <option value="OVERAGE">Serve and bill (overage)</option>
                </select>
              </Field>
            </div>
            <p className="muted small">Blank removes a limit. Every node applies the change at once.</p>
            <div className="row wrap">
              {PLAN_LIMITS.map(([k, l]) => (
                <Field key={k} label={l} className="narrow">
                  <input name={k} type="number" min={0} defaultValue={edit[k] ?? ''} />
                </Field>
              ))}
            </div>
            <ErrorBox error={act.error} />
            <div className="modal-foot">
              <button type="submit" className="btn primary" disabled={act.busy}>
                Save plan
              </button>
            </div>
          </form>
        </Modal>
      )}
    </>
  );
}

function Flags() {
  const q = useQuery('query Flags { featureFlags { id key description enabled rolloutPercentage overrides { organizationId enabled } updatedAt } }');
  const act = useAction();
  const [creating, setCreating] = useState(false);
  const mutate = (query, vars) =>
    act.run(async () => {
      const r = await gql(query, vars);
      q.reload(true);
      return r;
    });
  return (
    <>
      <div className="filters">
        <button type="button" className="btn primary" onClick={() => setCreating(true)}>
          New flag
        </button>
      </div>
      <ErrorBox error={act.error} />
      <QueryState q={q} label="Loading flags…">
        {(d) =>
          d.featureFlags.length ? (
            <div className="table-wrap">
              <table className="table" aria-label="Feature flags">
                <thead>
                  <tr>
                    <th>Flag</th>
                    <th>Default</th>
                    <th>Rollout</th>
                    <th>Overrides</th>
                    <th>
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {d.featureFlags.map((f) => (
                    <tr key={f.id}>
                      <td>
                        <code>{f.key}</code>
                        <div className="muted small">{f.description}</div>
                      </td>
                      <td>
                        <button
                          type="button"
                          role="switch"
                          aria-checked={f.enabled}
                          aria-label={`${f.key} on by default`}
                          className={f.enabled ? 'switch on' : 'switch'}
                          onClick={() => mutate('mutation($id: ID!) { toggleFeatureFlag(id: $id) { id enabled } }', { id: f.id })}
                        >
                          {f.enabled ? 'On' : 'Off'}
                        </button>
                      </td>
                      <td>
                        <form
                          className="row"
                          onSubmit={(e) => {
                            e.preventDefault();
                            mutate('mutation($id: ID!, $r: Int) { updateFeatureFlag(id: $id, input: { rolloutPercentage: $r }) { id } }', {
                              id: f.id,
                              r: intOrNull(formValues(e.currentTarget).r),
                            });
                          }}
                        >
                          <input name="r" type="number" min={0} max={100} aria-label={`Rollout of ${f.key} (%)`} defaultValue={f.rolloutPercentage ?? ''} className="tiny" />
                          <button type="submit" className="btn small">
                            Set
                          </button>
                        </form>
                      </td>
                      <td className="small">{f.overrides.map((o) => `${o.organizationId}: ${o.enabled ? 'on' : 'off'}`).join(', ') || '—'}</td>
                      <td>
                        <button type="button" className="btn small danger" onClick={() => mutate('mutation($id: ID!) { deleteFeatureFlag(id: $id) { id } }', { id: f.id })}>
                          Delete
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>No feature flags.</Empty>
          )
        }
      </QueryState>
      {creating && (
        <Modal title="New feature flag" onClose={() => setCreating(false)}>
          <form
            onSubmit={async (e) => {
              e.preventDefault();
              const v = formValues(e.currentTarget);
              const r = await mutate('mutation($input: CreateFeatureFlagInput!) { createFeatureFlag(input: $input) { id } }', {
                input: { key: v.key, description: v.description || null, enabled: v.enabled === 'on', rolloutPercentage: intOrNull(v.rollout) },
              });
              if (r) setCreating(false);
            }}
          >
            <Field label="Key" hint="Lower-case letters, digits, - _ and .">
              <input name="key" required pattern="[a-z0-9._-]{1,100}" />
            </Field>
            <Field label="Description">
              <input name="description" maxLength={500} />
            </Field>
            <Field label="Rollout % (blank: all)" className="narrow">
              <input name="rollout" type="number" min={0} max={100} />
            </Field>
            <label className="check">
              <input type="checkbox" name="enabled" /> On by default
            </label>
            <ErrorBox error={act.error} />
            <div className="modal-foot">
              <button type="submit" className="btn primary">
                Create flag
              </button>
            </div>
          </form>
        </Modal>
      )}
    </>
  );
}

function Analytics() {
  const q = useQuery(`query PlatformAnalytics { platformAnalytics { start end users newUsers suspendedUsers organizations newOrganizations
    suspendedOrganizations organizationsByPlan { planName organizations } apiCalls apiErrors webhookDeliveries { status count }
    revenue { period currency amount invoices } marketplacePlatformShare { currency amount } }
    marketplaceRevenue { totals { gross { amount currency } platformShare { amount currency } invoiceCount } } }`);
  return (
    <QueryState q={q} label="Loading platform analytics…">
      {(d) => {
        const a = d.platformAnalytics;
        return (
          <>
            <p className="muted">
              {day(a.start)} – {day(a.end)}
            </p>
            <div className="stats">
              {[
                ['Users', `${num(a.users)} (+${num(a.newUsers)})`],
                ['Suspended users', num(a.suspendedUsers)],
                ['Organizations', `${num(a.organizations)} (+${num(a.newOrganizations)})`],
                ['Suspended organizations', num(a.suspendedOrganizations)],
                ['API calls', num(a.apiCalls)],
                ['Error rate', a.apiCalls ? pct(a.apiErrors / a.apiCalls) : '—'],
              ].map(([l, v]) => (
                <div className="stat" key={l}>
                  <div className="stat-label">{l}</div>
                  <div className="stat-value">{v}</div>
                </div>
              ))}
            </div>
            <div className="grid2">
              <Card title="Organizations by plan">
                <ul className="list">
                  {a.organizationsByPlan.map((p) => (
                    <li key={p.planName}>
                      {p.planName}: {num(p.organizations)}
                    </li>
                  ))}
                </ul>
              </Card>
              <Card title="Webhook deliveries">
                <ul className="list">
                  {a.webhookDeliveries.map((w) => (
                    <li key={w.status}>
                      {w.status}: {num(w.count)}
                    </li>
                  ))}
                </ul>
              </Card>
              <Card title="Revenue">
                {a.revenue.length ? (
                  <ul className="list">
                    {a.revenue.map((r) => (
                      <li key={r.period + r.currency}>
                        {r.period}: {money(r)} ({r.invoices} invoices)
                      </li>
                    ))}
                  </ul>
                ) : (
                  <Empty>No paid invoices in the period.</Empty>
                )}
              </Card>
              <Card title="Marketplace (this month)">
                {d.marketplaceRevenue && (
                  <p>
                    Gross {money(d.marketplaceRevenue.totals.gross)}, platform share {money(d.marketplaceRevenue.totals.platformShare)} over{' '}
                    {d.marketplaceRevenue.totals.invoiceCount} invoices.
                  </p>
                )}
              </Card>
            </div>
          </>
        );
      }}
    </QueryState>
  );
}
