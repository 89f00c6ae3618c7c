import { useCallback, useState } from 'react';
import { gql } from '../api.js';
import { navigate, useAction, useDebounced, useQuery, useRoute, useSubscription } from '../hooks.js';
import {
  Badge, Card, Empty, ErrorBox, Field, JsonBlock, Link, Modal, Page, QueryState, SecretBox, Status, Time,
  date, formValues, intOrNull, list, pct,
} from '../ui.jsx';

const EP_FIELDS = `id url description filterTypes headers enabled disabledReason rateLimitPerSecond retrySchedule
  timeoutSeconds failingSince consecutiveFailures createdAt updatedAt
  stats { succeeded pending failed attemptsLast24Hours successRateLast24Hours }`;

const LIST = `query Webhooks { webhookEndpoints(first: 50) { totalCount nodes { ${EP_FIELDS} } } }`;

/** `Name: value` lines ⇄ a JSON object of headers. */
function parseHeaders(text) {
  const out = {};
  for (const line of String(text || '').split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const i = t.indexOf(':');
    if (i <= 0) throw new Error(`Header line "${t}" is not "Name: value".`);
    out[t.slice(0, i).trim()] = t.slice(i + 1).trim();
  }
  return out;
}
const headerText = (h) => Object.entries(h || {}).map(([k, v]) => `${k}: ${v}`).join('\n');

function EndpointForm({ initial, onSubmit, busy, error, submitLabel }) {
  const [localErr, setLocalErr] = useState(null);
  return (
    <form
      aria-label={submitLabel}
      onSubmit={(e) => {
        e.preventDefault();
        const v = formValues(e.currentTarget);
        let headers;
        try {
          headers = parseHeaders(v.headers);
        } catch (err) {
          setLocalErr(err);
          return;
        }
        setLocalErr(null);
        const filterTypes = list(v.filterTypes);
        onSubmit({
          url: v.url.trim(),
          description: v.description || null,
          filterTypes: filterTypes.length ? filterTypes : ['*'],
          headers,
          enabled: v.enabled === 'on',
          rateLimitPerSecond: intOrNull(v.rateLimitPerSecond),
          timeoutSeconds: intOrNull(v.timeoutSeconds) ?? 30,
        });
      }}
    >
      <Field label="Endpoint URL" hint="https:// (http only when the operator allows it).">
        <input name="url" type="url" required defaultValue={initial?.url || ''} placeholder="https://example.com/webhooks" />
      </Field>
      <Field label="Description">
        <input name="description" maxLength={1000} defaultValue={initial?.description || ''} />
      </Field>
      <Field
        label="Event types"
        hint={
          <>
            Exact names, <code>category.*</code>, or <code>*</code> for everything; comma or newline separated. See the{' '}
            <Link to="/events">event catalog</Link>.
          </>
        }
      >
        <textarea name="filterTypes" rows={2} spellCheck={false} defaultValue={(initial?.filterTypes || ['*']).join(', ')} />
      </Field>
      <Field label="Extra headers" hint="One per line: Name: value (not webhook-*, content-type, user-agent).">
        <textarea name="headers" rows={2} spellCheck={false} defaultValue={headerText(initial?.headers)} placeholder="X-Team: payments" />
      </Field>
      <div className="row wrap">
        <Field label="Requests per second (blank: no limit)" className="narrow">
          <input name="rateLimitPerSecond" type="number" min={1} max={10000} defaultValue={initial?.rateLimitPerSecond ?? ''} />
        </Field>
        <Field label="Timeout (seconds)" className="narrow">
          <input name="timeoutSeconds" type="number" min={1} max={30} defaultValue={initial?.timeoutSeconds ?? 30} />
        </Field>
        <label className="check">
          <input type="checkbox" name="enabled" defaultChecked={initial ? initial.enabled : true} /> Enabled
        </label>
      </div>
      <ErrorBox error={localErr || error} />
      <div className="modal-foot">
        <button type="submit" className="btn primary" disabled={busy}>
          {busy ? 'Saving…' : submitLabel}
        </button>
      </div>
    </form>
  );
}

export function Webhooks() {
  const { params } = useRoute();
  const q = useQuery(LIST);
  const [creating, setCreating] = useState(!!params.get('new'));
  const [created, setCreated] = useState(null);
  const act = useAction();
  const close = () => {
    setCreating(false);
    setCreated(null);
    if (params.get('new')) navigate('/webhooks', { replace: true });
  };
  return (
    <Page
      title="Webhooks"
      actions={
        <>
          <Link className="btn" to="/events">
            Event catalog
          </Link>
          <button type="button" className="btn primary" onClick={() => setCreating(true)}>
            Add endpoint
          </button>
        </>
      }
    >
      <QueryState q={q} label="Loading endpoints…">
        {(d) =>
          d.webhookEndpoints.nodes.length ? (
            <div className="table-wrap">
              <table className="table" aria-label="Webhook endpoints">
                <thead>
                  <tr>
                    <th>URL</th>
                    <th>Events</th>
                    <th>State</th>
                    <th className="num">Delivered / pending / failed</th>
                    <th className="num">Success (24 h)</th>
                  </tr>
                </thead>
                <tbody>
                  {d.webhookEndpoints.nodes.map((e) => (
                    <tr key={e.id}>
                      <td>
                        <Link to={`/webhooks/${e.id}`}>{e.url}</Link>
                        {e.description && <div className="muted small">{e.description}</div>}
                      </td>
                      <td className="scopes-cell">{e.filterTypes.join(', ')}</td>
                      <td>
                        {e.enabled ? <Badge tone="ok">enabled</Badge> : <Badge tone="bad">disabled</Badge>}
                        {e.failingSince && (
                          <div className="bad-text small">
                            failing since <Time value={e.failingSince} />
                          </div>
                        )}
                      </td>
                      <td className="num">
                        {e.stats.succeeded} / {e.stats.pending} / {e.stats.failed}
                      </td>
                      <td className="num">{pct(e.stats.successRateLast24Hours)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>No endpoints yet. Add one to receive events as signed HTTP requests.</Empty>
          )
        }
      </QueryState>
      {creating && (
        <Modal title={created ? 'Endpoint created' : 'Add a webhook endpoint'} onClose={close} wide>
          {created ? (
            <>
              <p>
                Events now go to <code>{created.endpoint.url}</code>.
              </p>
              <SecretBox secret={created.secret} what="signing secret" />
              <div className="modal-foot">
                <button type="button" className="btn" onClick={close}>
                  Close
                </button>
                <button type="button" className="btn primary" onClick={() => navigate(`/webhooks/${created.endpoint.id}`)}>
                  Open endpoint
                </button>
              </div>
            </>
          ) : (
            <EndpointForm
              submitLabel="Create endpoint"
              busy={act.busy}
              error={act.error}
              onSubmit={async (input) => {
                const d2 = await act.run(() =>
                  gql(`mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret endpoint { id url } } }`, {
                    input,
                  }),
                );
                if (d2) {
                  setCreated(d2.createWebhookEndpoint);
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

const DETAIL = `query Webhook($id: ID!, $status: WebhookDeliveryStatus) {
  webhookEndpoint(id: $id) { ${EP_FIELDS}
    deliveries(first: 30, status: $status) { totalCount nodes { id eventId eventType status attemptCount nextAttemptAt lastStatusCode lastError createdAt } } }
  eventTypes { name }
}`;

const DELIVERY = `query Delivery($id: ID!) { webhookDelivery(id: $id) { id eventId eventType status attemptCount nextAttemptAt lastStatusCode lastError createdAt
  attempts { id attempt url requestHeaders requestBody responseStatus responseHeaders responseBody latencyMs errorKind errorMessage createdAt } } }`;

function DeliveryDetail({ id, tick }) {
  const q = useQuery(DELIVERY, { id, tick });
  const act = useAction();
  return (
    <div className="delivery-detail">
      <QueryState q={q} label="Loading attempts…">
        {(d) => (
          <>
            <div className="row wrap">
              <span>
                Event <code>{d.webhookDelivery.eventId}</code>
              </span>
              {d.webhookDelivery.nextAttemptAt && (
                <span className="muted">
                  next attempt <Time value={d.webhookDelivery.nextAttemptAt} />
                </span>
              )}
              <button
                type="button"
                className="btn small"
                disabled={act.busy}
                onClick={() =>
                  act.run(async () => {
                    await gql('mutation($id: ID!) { retryDelivery(id: $id) { id status } }', { id });
                    q.reload(true);
                  })
                }
              >
                Retry now
              </button>
            </div>
            <ErrorBox error={act.error} />
            {d.webhookDelivery.attempts.length ? (
              <ol className="attempts" aria-label="Attempts">
                {d.webhookDelivery.attempts.map((a) => (
                  <li key={a.id} className="attempt" data-attempt={a.attempt}>
                    <div className="attempt-head">
                      <strong>Attempt {a.attempt}</strong>{' '}
                      {a.responseStatus != null ? (
                        <Badge tone={a.responseStatus < 300 ? 'ok' : 'bad'}>HTTP {a.responseStatus}</Badge>
                      ) : (
                        <Badge tone="bad">{a.errorKind || 'no answer'}</Badge>
                      )}{' '}
                      <span className="muted">
                        {a.latencyMs} ms · {date(a.createdAt)}
                      </span>
                      {a.errorMessage && <div className="bad-text">{a.errorMessage}</div>}
                    </div>
                    <details>
                      <summary>Request</summary>
                      <div className="muted small">POST {a.url}</div>
                      <JsonBlock value={a.requestHeaders} label="Request headers" />
                      <JsonBlock value={prettyBody(a.requestBody)} label="Request body" />
                    </details>
                    <details>
                      <summary>Response</summary>
                      {a.responseHeaders && <JsonBlock value={a.responseHeaders} label="Response headers" />}
                      <JsonBlock value={a.responseBody ?? '(no body)'} label="Response body" />
                    </details>
                  </li>
                ))}
              </ol>
            ) : (
              <p className="muted">No attempt yet — it appears here as soon as it is made.</p>
            )}
          </>
        )}
      </QueryState>
    </div>
  );
}

function prettyBody(b) {
  try {
    return JSON.stringify(JSON.parse(b), null, 2);
  } catch {
    return b;
  }
}

export function WebhookDetail({ id }) {
  const { params } = useRoute();
  const [status, setStatus] = useState('');
  const q = useQuery(DETAIL, { id, status: status || null });
  const [open, setOpen] = useState(params.get('delivery') || null);
  const [ticks, setTicks] = useState({});
  const [modal, setModal] = useState(null);
  const [secret, setSecret] = useState(null);
  const act = useAction();
  const [liveCount, setLiveCount] = useState(0);
  const reloadList = useDebounced(() => q.reload(true), 300);

  const liveErr = useSubscription(
    'subscription Attempts($id: ID!) { webhookDelivered(webhookId: $id) { attemptId deliveryId attempt status responseStatus } }',
    { id },
    useCallback(
      (d) => {
        const o = d.webhookDelivered;
        setTicks((t) => ({ ...t, [o.deliveryId]: (t[o.deliveryId] || 0) + 1 }));
        setLiveCount((c) => c + 1);
        reloadList();
      },
      [reloadList],
    ),
  );

  const ep = q.data?.webhookEndpoint;
  const mutate = (query, vars) =>
    act.run(async () => {
      const r = await gql(query, vars);
      q.reload(true);
      return r;
    });

  return (
    <Page title={ep ? ep.url : 'Webhook endpoint'} subtitle={<Link to="/webhooks">← All endpoints</Link>}>
      <QueryState q={q} label="Loading the endpoint…">
        {(d) => (
          <>
            <ErrorBox error={act.error} />
            {liveErr && <ErrorBox error={liveErr} title="Live attempts unavailable" />}
            {secret && (
              <SecretBox secret={secret.secret} what="new signing secret">
                <p className="muted">The previous secret keeps signing beside it until {date(secret.previousSecretExpiresAt)}.</p>
                <button type="button" className="btn small" onClick={() => setSecret(null)}>
                  Hide
                </button>
              </SecretBox>
            )}
            <div className="grid2">
              <Card
                title="Endpoint"
                actions={
                  <>
                    <button type="button" className="btn small" onClick={() => setModal('edit')}>
                      Edit
                    </button>
                    <button
                      type="button"
                      className="btn small"
                      disabled={act.busy}
                      onClick={() =>
                        mutate('mutation($id: ID!, $e: Boolean!) { updateWebhookEndpoint(id: $id, input: { enabled: $e }) { id enabled } }', {
                          id,
                          e: !ep.enabled,
                        })
                      }
                    >
                      {ep.enabled ? 'Disable' : 'Enable'}
                    </button>
                  </>
                }
              >
                <dl className="props">
                  <dt>State</dt>
                  <dd>
                    {ep.enabled ? <Badge tone="ok">enabled</Badge> : <Badge tone="bad">disabled</Badge>}{' '}
                    {ep.disabledReason && <span className="muted">{ep.disabledReason}</span>}
                  </dd>
                  <dt>Events</dt>
                  <dd>{ep.filterTypes.join(', ')}</dd>
                  <dt>Headers</dt>
                  <dd>{Object.keys(ep.headers || {}).length ? <pre className="inline-pre">{headerText(ep.headers)}</pre> : 'none'}</dd>
                  <dt>Limits</dt>
                  <dd>
                    {ep.rateLimitPerSecond ? `${ep.rateLimitPerSecond}/s` : 'no rate limit'} · timeout {ep.timeoutSeconds} s
                  </dd>
                  <dt>Retries</dt>
                  <dd>{ep.retrySchedule.map(human).join(', ')}</dd>
                  <dt>Health</dt>
                  <dd>
                    {ep.consecutiveFailures ? `${ep.consecutiveFailures} failures in a row` : 'healthy'} · success{' '}
                    {pct(ep.stats.successRateLast24Hours)} over {ep.stats.attemptsLast24Hours} attempts (24 h)
                  </dd>
                </dl>
              </Card>
              <Card title="Actions">
                <form
                  className="row wrap"
                  aria-label="Send a test event"
                  onSubmit={async (e) => {
                    e.preventDefault();
                    const type = formValues(e.currentTarget).type || null;
                    const r = await mutate(
                      'mutation($id: ID!, $t: String) { sendTestEvent(endpointId: $id, type: $t) { id status } }',
                      { id, t: type },
                    );
                    if (r) setOpen(r.sendTestEvent.id);
                  }}
                >
                  <Field label="Event type" className="inline">
                    <select name="type" defaultValue="webhook.test">
                      {d.eventTypes.map((t) => (
                        <option key={t.name} value={t.name}>
                          {t.name}
                        </option>
                      ))}
                    </select>
                  </Field>
                  <button type="submit" className="btn primary" disabled={act.busy}>
                    Send test event
                  </button>
                </form>
                <form
                  className="row wrap"
                  aria-label="Recover failed deliveries"
                  onSubmit={async (e) => {
                    e.preventDefault();
                    const since = formValues(e.currentTarget).since;
                    const r = await mutate('mutation($id: ID!, $s: DateTime!) { recoverEndpoint(id: $id, since: $s) }', {
                      id,
                      s: new Date(since).toISOString(),
                    });
                    if (r != null) setModal({ recovered: r.recoverEndpoint });
                  }}
                >
                  <Field label="Resend failed deliveries since" className="inline">
                    <input name="since" type="datetime-local" required />
                  </Field>
                  <button type="submit" className="btn" disabled={act.busy}>
                    Recover
                  </button>
                </form>
                <div className="row wrap">
                  <button
                    type="button"
                    className="btn"
                    disabled={act.busy}
                    onClick={async () => {
                      const r = await mutate(
                        'mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret previousSecretExpiresAt } }',
                        { id },
                      );
                      if (r) setSecret(r.rotateWebhookSecret);
                    }}
                  >
                    Rotate signing secret
                  </button>
                  <button type="button" className="btn danger" onClick={() => setModal('delete')}>
                    Delete endpoint
                  </button>
                </div>
              </Card>
            </div>
            <Card
              title={`Deliveries (${ep.deliveries.totalCount})`}
              actions={
                <>
                  <span className="muted small" aria-live="polite">
                    {liveCount ? `${liveCount} live attempt${liveCount === 1 ? '' : 's'}` : 'live'}
                  </span>
                  <Field label="Status" className="inline">
                    <select value={status} onChange={(e) => setStatus(e.target.value)}>
                      <option value="">All</option>
                      <option value="PENDING">Pending</option>
                      <option value="SUCCEEDED">Succeeded</option>
                      <option value="FAILED">Failed</option>
                    </select>
                  </Field>
                </>
              }
            >
              {ep.deliveries.nodes.length ? (
                <ul className="deliveries" aria-label="Deliveries">
                  {ep.deliveries.nodes.map((m) => (
                    <li key={m.id} data-delivery-id={m.id}>
                      <button
                        type="button"
                        className="delivery-row"
                        aria-expanded={open === m.id}
                        onClick={() => setOpen(open === m.id ? null : m.id)}
                      >
                        <Status value={m.status} /> <code>{m.eventType}</code>
                        <span className="muted">
                          {m.attemptCount} attempt{m.attemptCount === 1 ? '' : 's'}
                          {m.lastStatusCode ? ` · HTTP ${m.lastStatusCode}` : ''}
                        </span>
                        <span className="grow" />
                        <Time value={m.createdAt} />
                      </button>
                      {m.lastError && <div className="bad-text small pad">{m.lastError}</div>}
                      {open === m.id && <DeliveryDetail id={m.id} tick={ticks[m.id] || 0} />}
                    </li>
                  ))}
                </ul>
              ) : (
                <Empty>No deliveries yet. Send a test event to try the endpoint.</Empty>
              )}
            </Card>
            {modal === 'edit' && (
              <Modal title="Edit endpoint" onClose={() => setModal(null)} wide>
                <EndpointForm
                  initial={ep}
                  submitLabel="Save changes"
                  busy={act.busy}
                  error={act.error}
                  onSubmit={async (input) => {
                    const r = await mutate(
                      'mutation($id: ID!, $input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $input) { id } }',
                      { id, input },
                    );
                    if (r) setModal(null);
                  }}
                />
              </Modal>
            )}
            {modal === 'delete' && (
              <Modal title="Delete endpoint" onClose={() => setModal(null)}>
                <p>The endpoint, its deliveries and their logs are deleted.</p>
                <div className="modal-foot">
                  <button type="button" className="btn" onClick={() => setModal(null)}>
                    Cancel
                  </button>
                  <button
                    type="button"
                    className="btn danger"
                    onClick={async () => {
                      const r = await act.run(() => gql('mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }', { id }));
                      if (r) navigate('/webhooks');
                    }}
                  >
                    Delete
                  </button>
                </div>
              </Modal>
            )}
            {modal?.recovered != null && (
              <Modal title="Recovery queued" onClose={() => setModal(null)}>
                <p>{modal.recovered} failed deliveries were queued again.</p>
              </Modal>
            )}
          </>
        )}
      </QueryState>
    </Page>
  );
}

function human(s) {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

export function EventCatalog() {
  const q = useQuery('query Catalog { eventTypes(includeArchived: false) { name category description schema sample deprecated builtIn archivedAt } }');
  const [search, setSearch] = useState('');
  const [open, setOpen] = useState(null);
  return (
    <Page title="Event catalog" subtitle="Every event type an endpoint can receive, with its payload schema and a sample.">
      <div className="filters">
        <Field label="Search" className="inline">
          <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="key.created" />
        </Field>
      </div>
      <QueryState q={q} label="Loading the catalog…">
        {(d) => {
          const types = d.eventTypes.filter(
            (t) => !search || t.name.includes(search.toLowerCase()) || t.description.toLowerCase().includes(search.toLowerCase()),
          );
          const cats = [...new Set(types.map((t) => t.category))];
          if (!types.length) return <Empty>No event type matches.</Empty>;
          return cats.map((c) => (
            <Card key={c} title={<code>{c}.*</code>}>
              <ul className="catalog">
                {types
                  .filter((t) => t.category === c)
                  .map((t) => (
                    <li key={t.name}>
                      <button type="button" className="link-btn" aria-expanded={open === t.name} onClick={() => setOpen(open === t.name ? null : t.name)}>
                        <code>{t.name}</code>
                      </button>{' '}
                      {t.deprecated && <Badge tone="warn">deprecated</Badge>} {!t.builtIn && <Badge>custom</Badge>}{' '}
                      <span className="muted">{t.description}</span>
                      {open === t.name && (
                        <div className="grid2">
                          <div>
                            <h3>Schema</h3>
                            <JsonBlock value={t.schema} label={`${t.name} schema`} />
                          </div>
                          <div>
                            <h3>Sample</h3>
                            <JsonBlock value={t.sample} label={`${t.name} sample`} />
                          </div>
                        </div>
                      )}
                    </li>
                  ))}
              </ul>
            </Card>
          ));
        }}
      </QueryState>
    </Page>
  );
}

