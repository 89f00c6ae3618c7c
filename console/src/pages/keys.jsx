import { useMemo, useState } from 'react';
import { gql, scopeList, scopeAllows } from '../api.js';
import { TimeChart, columns } from '../chart.jsx';
import { navigate, useAction, useQuery, useRoute } from '../hooks.js';
import { useSession } from '../session.js';
import {
  Badge, Card, Empty, ErrorBox, Field, Link, Modal, Page, QueryState, SecretBox, Status, Time, date, formValues,
  intOrNull, list, ms, num, pct,
} from '../ui.jsx';
import { windowFor } from './dashboard.jsx';

const KEY_FIELDS = `id name description environment prefix maskedKey scopes status expiresAt allowedIps
  rateLimit { perSecond perMinute perHour perDay burst concurrency }
  createdAt updatedAt lastUsedAt lastUsedIp totalRequests revokedAt revokedReason createdBy { name email }`;

const LIST = `query Keys($rev: Boolean!, $env: ApiKeyEnvironment) {
  apiKeys(first: 100, includeRevoked: $rev, environment: $env) { totalCount nodes { ${KEY_FIELDS} } }
}`;

function ScopePicker({ name = 'scopes', initial = [], held }) {
  const [all, setAll] = useState(initial.includes('*'));
  return (
    <fieldset className="scopes">
      <legend>Scopes</legend>
      <label className="check">
        <input type="checkbox" name={name} value="*" checked={all} disabled={!held.includes('*')} onChange={(e) => setAll(e.target.checked)} />
        <code>*</code> everything
      </label>
      <div className="scope-grid">
        {scopeList().map(({ name: s, description }) => (
          <label className="check" key={s} title={description}>
            <input
              type="checkbox"
              name={name}
              value={s}
              defaultChecked={initial.includes(s)}
              disabled={all || !scopeAllows(held, s)}
            />
            <code>{s}</code>
          </label>
        ))}
      </div>
      <span className="field-hint">You can grant only scopes you hold yourself.</span>
    </fieldset>
  );
}

function RateLimitFields({ initial }) {
  const r = initial || {};
  return (
    <fieldset>
      <legend>Rate limits (blank: the plan's)</legend>
      <div className="row wrap">
        {[
          ['perSecond', 'Per second'],
          ['perMinute', 'Per minute'],
          ['perHour', 'Per hour'],
          ['perDay', 'Per day'],
          ['burst', 'Burst'],
          ['concurrency', 'Concurrency'],
        ].map(([k, l]) => (
          <Field key={k} label={l} className="narrow">
            <input name={`rl_${k}`} type="number" min={0} inputMode="numeric" defaultValue={r[k] ?? ''} />
          </Field>
        ))}
      </div>
    </fieldset>
  );
}

function readRateLimit(form) {
  const out = {};
  let any = false;
  for (const k of ['perSecond', 'perMinute', 'perHour', 'perDay', 'burst', 'concurrency']) {
    const v = intOrNull(form.get(`rl_${k}`));
    if (v != null) {
      out[k] = v;
      any = true;
    }
  }
  return any ? out : null;
}

function readScopes(form) {
  const s = form.getAll('scopes').map(String);
  return s.includes('*') ? ['*'] : s;
}

function CreateKey({ onClose, onCreated }) {
  const session = useSession();
  const act = useAction();
  const [created, setCreated] = useState(null);
  if (created) {
    return (
      <Modal title="API key created" onClose={onClose}>
        <p>
          <strong>{created.apiKey.name}</strong> ({created.apiKey.environment.toLowerCase()}) —{' '}
          <code>{created.apiKey.maskedKey}</code>
        </p>
        <SecretBox secret={created.secret} what="API key" />
        <div className="modal-foot">
          <button type="button" className="btn primary" onClick={onClose}>
            I have stored it
          </button>
        </div>
      </Modal>
    );
  }
  async function onSubmit(e) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const v = formValues(e.currentTarget);
    const input = {
      name: v.name,
      environment: v.environment,
      scopes: readScopes(form),
      allowedIps: list(v.allowedIps),
    };
    if (v.description) input.description = v.description;
    if (v.expiresAt) input.expiresAt = new Date(v.expiresAt).toISOString();
    const rl = readRateLimit(form);
    if (rl) input.rateLimit = rl;
    const d = await act.run(() =>
      gql(`mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { ${KEY_FIELDS} } } }`, { input }),
    );
    if (d) {
      setCreated(d.createApiKey);
      onCreated();
    }
  }
  return (
    <Modal title="Create an API key" onClose={onClose} wide>
      <form onSubmit={onSubmit} aria-label="Create an API key">
        <div className="row wrap">
          <Field label="Name">
            <input name="name" required maxLength={100} />
          </Field>
          <Field label="Environment">
            <select name="environment" defaultValue="TEST">
              <option value="TEST">Test (gk_test_…)</option>
              <option value="LIVE">Live (gk_live_…)</option>
            </select>
          </Field>
          <Field label="Expires (optional)">
            <input name="expiresAt" type="datetime-local" />
          </Field>
        </div>
        <Field label="Description (optional)">
          <input name="description" maxLength={1000} />
        </Field>
        <ScopePicker held={session.scopes} initial={[]} />
        <Field label="Allowed IPs (optional)" hint="Addresses or CIDR ranges, one per line or comma-separated; empty = anywhere.">
          <textarea name="allowedIps" rows={2} spellCheck={false} placeholder="203.0.113.0/24" />
        </Field>
        <RateLimitFields />
        <ErrorBox error={act.error} title="The key was not created" />
        <div className="modal-foot">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn primary" disabled={act.busy}>
            {act.busy ? 'Creating…' : 'Create key'}
          </button>
        </div>
      </form>
    </Modal>
  );
}

function RollKey({ k, onClose, onDone }) {
  const act = useAction();
  const [rolled, setRolled] = useState(null);
  if (rolled) {
    return (
      <Modal title="Key rolled" onClose={onClose}>
        <SecretBox secret={rolled.secret} what="new secret">
          <p className="muted">The previous secret keeps working until {date(rolled.previousSecretExpiresAt)}.</p>
        </SecretBox>
        <div className="modal-foot">
          <button type="button" className="btn primary" onClick={onClose}>
            Done
          </button>
        </div>
      </Modal>
    );
  }
  return (
    <Modal title={`Roll ${k.name}`} onClose={onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const secs = Number(formValues(e.currentTarget).overlap);
          const d = await act.run(() =>
            gql(
              'mutation($id: ID!, $s: Int) { rollApiKey(id: $id, expireOldInSeconds: $s) { secret previousSecretExpiresAt apiKey { id maskedKey } } }',
              { id: k.id, s: secs },
            ),
          );
          if (d) {
            setRolled(d.rollApiKey);
            onDone();
          }
        }}
      >
        <p>A new secret is issued. Choose how long the current one keeps working, so you can deploy the new one.</p>
        <Field label="Overlap">
          <select name="overlap" defaultValue="86400">
            <option value="0">None: stop the old secret now</option>
            <option value="3600">1 hour</option>
            <option value="86400">24 hours</option>
            <option value="604800">7 days</option>
            <option value="2592000">30 days</option>
          </select>
        </Field>
        <ErrorBox error={act.error} />
        <div className="modal-foot">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn primary" disabled={act.busy}>
            Roll key
          </button>
        </div>
      </form>
    </Modal>
  );
}

function RevokeKey({ k, onClose, onDone }) {
  const act = useAction();
  return (
    <Modal title={`Revoke ${k.name}`} onClose={onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const reason = formValues(e.currentTarget).reason || null;
          const d = await act.run(() =>
            gql('mutation($id: ID!, $r: String) { revokeApiKey(id: $id, reason: $r) { id status } }', { id: k.id, r: reason }),
          );
          if (d) {
            onDone();
            onClose();
          }
        }}
      >
        <p>
          <strong>This cannot be undone.</strong> Every call with <code>{k.maskedKey}</code> is refused at once, on every node.
        </p>
        <Field label="Reason (kept in the audit log)">
          <input name="reason" maxLength={500} />
        </Field>
        <ErrorBox error={act.error} />
        <div className="modal-foot">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn danger" disabled={act.busy}>
            Revoke key
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function Keys() {
  const { params } = useRoute();
  const [rev, setRev] = useState(false);
  const [env, setEnv] = useState('');
  const q = useQuery(LIST, { rev, env: env || null });
  const [modal, setModal] = useState(params.get('new') ? { kind: 'create' } : null);
  const close = () => {
    setModal(null);
    if (params.get('new')) navigate('/keys', { replace: true });
  };
  return (
    <Page
      title="API keys"
      actions={
        <button type="button" className="btn primary" onClick={() => setModal({ kind: 'create' })}>
          Create API key
        </button>
      }
    >
      <div className="filters">
        <label className="check">
          <input type="checkbox" checked={rev} onChange={(e) => setRev(e.target.checked)} /> Show revoked
        </label>
        <Field label="Environment" className="inline">
          <select value={env} onChange={(e) => setEnv(e.target.value)}>
            <option value="">All</option>
            <option value="LIVE">Live</option>
            <option value="TEST">Test</option>
          </select>
        </Field>
      </div>
      <QueryState q={q} label="Loading keys…">
        {(d) =>
          d.apiKeys.nodes.length ? (
            <div className="table-wrap">
              <table className="table" aria-label="API keys">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Key</th>
                    <th>Status</th>
                    <th>Scopes</th>
                    <th>Last used</th>
                    <th className="num">Requests</th>
                    <th>
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {d.apiKeys.nodes.map((k) => (
                    <tr key={k.id} data-key-id={k.id}>
                      <td>
                        <Link to={`/keys/${k.id}`}>{k.name}</Link>{' '}
                        <Badge tone={k.environment === 'LIVE' ? 'warn' : 'neutral'}>{k.environment.toLowerCase()}</Badge>
                      </td>
                      <td>
                        <code>{k.maskedKey}</code>
                      </td>
                      <td>
                        <Status value={k.status} />
                      </td>
                      <td className="scopes-cell">{k.scopes.join(' ')}</td>
                      <td>
                        <Time value={k.lastUsedAt} />
                        {k.lastUsedIp && <div className="muted small">{k.lastUsedIp}</div>}
                      </td>
                      <td className="num">{num(k.totalRequests)}</td>
                      <td className="actions">
                        {k.status === 'ACTIVE' && (
                          <>
                            <button type="button" className="btn small" onClick={() => setModal({ kind: 'roll', k })}>
                              Roll
                            </button>
                            <button type="button" className="btn small danger" onClick={() => setModal({ kind: 'revoke', k })}>
                              Revoke
                            </button>
                          </>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>No keys yet. Create one to call the API.</Empty>
          )
        }
      </QueryState>
      {modal?.kind === 'create' && <CreateKey onClose={close} onCreated={() => q.reload(true)} />}
      {modal?.kind === 'roll' && <RollKey k={modal.k} onClose={close} onDone={() => q.reload(true)} />}
      {modal?.kind === 'revoke' && <RevokeKey k={modal.k} onClose={close} onDone={() => q.reload(true)} />}
    </Page>
  );
}

const DETAIL = `query Key($id: ID!, $start: DateTime!, $end: DateTime!, $g: UsageGranularity!) {
  apiKey(id: $id) { ${KEY_FIELDS} metadata }
  usageHistory(start: $start, end: $end, granularity: $g, keyId: $id) { start stats { calls errors p95LatencyMs } }
  usage(period: LAST_30_DAYS, keyId: $id) { stats { calls errors successRate p50LatencyMs p95LatencyMs p99LatencyMs } }
  usageByEndpoint(period: LAST_30_DAYS, keyId: $id) { operation stats { calls errors p95LatencyMs } }
}`;

export function KeyDetail({ id }) {
  const session = useSession();
  const win = useMemo(() => windowFor('DAY'), []);
  const q = useQuery(DETAIL, { id, ...win });
  const [modal, setModal] = useState(null);
  const [editing, setEditing] = useState(false);
  const act = useAction();
  const k = q.data?.apiKey;
  const chart = useMemo(() => (q.data?.usageHistory ? columns(q.data.usageHistory, ['calls', 'errors']) : null), [q.data]);
  return (
    <Page
      title={k ? k.name : 'API key'}
      subtitle={<Link to="/keys">← All keys</Link>}
      actions={
        k?.status === 'ACTIVE' && (
          <>
            <button type="button" className="btn" onClick={() => setEditing((x) => !x)}>
              {editing ? 'Close editor' : 'Edit'}
            </button>
            <button type="button" className="btn" onClick={() => setModal('roll')}>
              Roll
            </button>
            <button type="button" className="btn danger" onClick={() => setModal('revoke')}>
              Revoke
            </button>
          </>
        )
      }
    >
      <QueryState q={q} label="Loading the key…">
        {(d) =>
          d.apiKey && (
            <>
              {editing && (
                <Card title="Edit key">
                  <form
                    onSubmit={async (e) => {
                      e.preventDefault();
                      const form = new FormData(e.currentTarget);
                      const v = formValues(e.currentTarget);
                      const input = {
                        name: v.name,
                        description: v.description || null,
                        scopes: readScopes(form),
                        allowedIps: list(v.allowedIps),
                        expiresAt: v.expiresAt ? new Date(v.expiresAt).toISOString() : null,
                        rateLimit: readRateLimit(form),
                      };
                      const r = await act.run(() =>
                        gql('mutation($id: ID!, $input: UpdateApiKeyInput!) { updateApiKey(id: $id, input: $input) { id } }', { id, input }),
                      );
                      if (r) {
                        setEditing(false);
                        q.reload(true);
                      }
                    }}
                  >
                    <div className="row wrap">
                      <Field label="Name">
                        <input name="name" required defaultValue={k.name} maxLength={100} />
                      </Field>
                      <Field label="Expires">
                        <input name="expiresAt" type="datetime-local" defaultValue={k.expiresAt ? toLocalInput(k.expiresAt) : ''} />
                      </Field>
                    </div>
                    <Field label="Description">
                      <input name="description" defaultValue={k.description || ''} />
                    </Field>
                    <ScopePicker held={session.scopes} initial={k.scopes} />
                    <Field label="Allowed IPs">
                      <textarea name="allowedIps" rows={2} defaultValue={k.allowedIps.join('\n')} />
                    </Field>
                    <RateLimitFields initial={k.rateLimit} />
                    <ErrorBox error={act.error} />
                    <button type="submit" className="btn primary" disabled={act.busy}>
                      Save changes
                    </button>
                  </form>
                </Card>
              )}
              <div className="grid2">
                <Card title="Key">
                  <dl className="props">
                    <dt>Key</dt>
                    <dd>
                      <code>{k.maskedKey}</code>
                    </dd>
                    <dt>Status</dt>
                    <dd>
                      <Status value={k.status} /> {k.revokedReason && <span className="muted">{k.revokedReason}</span>}
                    </dd>
                    <dt>Environment</dt>
                    <dd>{k.environment.toLowerCase()}</dd>
                    <dt>Scopes</dt>
                    <dd>{k.scopes.join(' ')}</dd>
                    <dt>Expires</dt>
                    <dd>{k.expiresAt ? date(k.expiresAt) : 'never'}</dd>
                    <dt>Allowed IPs</dt>
                    <dd>{k.allowedIps.length ? k.allowedIps.join(', ') : 'anywhere'}</dd>
                    <dt>Rate limits</dt>
                    <dd>
                      {k.rateLimit
                        ? Object.entries(k.rateLimit)
                            .filter(([, v]) => v != null)
                            .map(([n, v]) => `${n} ${v}`)
                            .join(' · ') || "the plan's"
                        : "the plan's"}
                    </dd>
                    <dt>Created</dt>
                    <dd>
                      {date(k.createdAt)} {k.createdBy && <span className="muted">by {k.createdBy.name}</span>}
                    </dd>
                    <dt>Last used</dt>
                    <dd>
                      <Time value={k.lastUsedAt} /> {k.lastUsedIp && <span className="muted">from {k.lastUsedIp}</span>}
                    </dd>
                    <dt>Requests ever</dt>
                    <dd>{num(k.totalRequests)}</dd>
                  </dl>
                </Card>
                <Card title="Last 30 days">
                  {d.usage && (
                    <dl className="props">
                      <dt>Calls</dt>
                      <dd>{num(d.usage.stats.calls)}</dd>
                      <dt>Errors</dt>
                      <dd>{num(d.usage.stats.errors)}</dd>
                      <dt>Success rate</dt>
                      <dd>{pct(d.usage.stats.successRate)}</dd>
                      <dt>Latency p50 / p95 / p99</dt>
                      <dd>
                        {ms(d.usage.stats.p50LatencyMs)} / {ms(d.usage.stats.p95LatencyMs)} / {ms(d.usage.stats.p99LatencyMs)}
                      </dd>
                    </dl>
                  )}
                </Card>
              </div>
              <Card title="Calls per day">
                {chart && (
                  <TimeChart
                    label="This key's calls and errors per day"
                    data={chart}
                    bars
                    series={[
                      { label: 'Calls', color: '#4f46e5' },
                      { label: 'Errors', color: '#dc2626' },
                    ]}
                  />
                )}
              </Card>
              <Card title="Busiest operations (30 days)">
                {d.usageByEndpoint?.length ? (
                  <div className="table-wrap"><table className="table">
                    <thead>
                      <tr>
                        <th>Operation</th>
                        <th className="num">Calls</th>
                        <th className="num">Errors</th>
                        <th className="num">p95</th>
                      </tr>
                    </thead>
                    <tbody>
                      {d.usageByEndpoint.slice(0, 15).map((r) => (
                        <tr key={r.operation}>
                          <td>
                            <code>{r.operation}</code>
                          </td>
                          <td className="num">{num(r.stats.calls)}</td>
                          <td className="num">{num(r.stats.errors)}</td>
                          <td className="num">{ms(r.stats.p95LatencyMs)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table></div>
                ) : (
                  <Empty>This key made no calls in the last 30 days.</Empty>
                )}
              </Card>
              {modal === 'roll' && <RollKey k={k} onClose={() => setModal(null)} onDone={() => q.reload(true)} />}
              {modal === 'revoke' && <RevokeKey k={k} onClose={() => setModal(null)} onDone={() => q.reload(true)} />}
            </>
          )
        }
      </QueryState>
    </Page>
  );
}

function toLocalInput(iso) {
  const d = new Date(iso);
  const off = d.getTimezoneOffset() * 60000;
  return new Date(d.getTime() - off).toISOString().slice(0, 16);
}
