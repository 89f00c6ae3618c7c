import { useMemo, useState } from 'react';
import { gql } from '../api.js';
import { TimeChart, columns, Gauge } from '../chart.jsx';
import { useAction, useDebounced, useQuery, useSubscription } from '../hooks.js';
import { useSession } from '../session.js';
import { Card, Empty, ErrorBox, Link, Page, QueryState, Status, Tabs, Time, Unavailable, day, ms, num, pct } from '../ui.jsx';

export const HISTORY = `usageHistory(start: $start, end: $end, granularity: $g) {
  start stats { calls errors serverErrors limitedCalls p50LatencyMs p95LatencyMs p99LatencyMs } }`;

const QUERY = `query Dashboard($start: DateTime!, $end: DateTime!, $g: UsageGranularity!) {
  ${HISTORY}
  usage(period: LAST_24_HOURS) { stats { calls errors successRate p95LatencyMs } }
  usageForecast { periodStart periodEnd calls projectedCalls quotaUsed projectedQuotaUsed monthlyQuota
    projectedPercentOfQuota quotaExhaustedAt }
  alerts(first: 5) { totalCount nodes { id kind severity status title triggeredAt lastSeenAt occurrences } }
  webhookDeliveries(first: 8) { nodes { id endpointId eventType status attemptCount lastStatusCode createdAt } }
  webhookEndpoints(first: 3) { nodes { id url } }
}`;

/** The window of a usage chart: the last 24 hours by hour, or the last 30 days by day. */
export function windowFor(g) {
  const now = new Date();
  if (g === 'HOUR') {
    const end = new Date(now);
    end.setUTCMinutes(0, 0, 0);
    end.setUTCHours(end.getUTCHours() + 1);
    return { g, start: new Date(end.getTime() - 24 * 3600e3).toISOString(), end: end.toISOString() };
  }
  const end = new Date(now);
  end.setUTCHours(0, 0, 0, 0);
  end.setUTCDate(end.getUTCDate() + 1);
  return { g, start: new Date(end.getTime() - 30 * 86400e3).toISOString(), end: end.toISOString() };
}

export function UsageCharts({ points, compact }) {
  const calls = useMemo(() => columns(points, ['calls', 'errors']), [points]);
  const lat = useMemo(() => columns(points, ['p50LatencyMs', 'p95LatencyMs']), [points]);
  return (
    <div className={compact ? 'charts one' : 'charts'}>
      <figure>
        <figcaption>Calls and errors</figcaption>
        <TimeChart
          label="Calls and errors over time"
          data={calls}
          series={[
            { label: 'Calls', color: '#4f46e5' },
            { label: 'Errors', color: '#dc2626' },
          ]}
        />
      </figure>
      {!compact && (
        <figure>
          <figcaption>Latency</figcaption>
          <TimeChart
            label="p50 and p95 latency over time"
            data={lat}
            yUnit=" ms"
            series={[
              { label: 'p50', color: '#0891b2' },
              { label: 'p95', color: '#d97706' },
            ]}
          />
        </figure>
      )}
    </div>
  );
}

const LIVE_TYPES = ['quota.*', 'alert.*', 'webhook.*', 'key.*', 'billing.*', 'app.*', 'install.*', 'member.*'];

export function Dashboard() {
  const session = useSession();
  const [g, setG] = useState('HOUR');
  const win = useMemo(() => windowFor(g), [g]);
  const q = useQuery(QUERY, win, { pollMs: 30_000 });
  const [live, setLive] = useState([]);
  const [quotaEvent, setQuotaEvent] = useState(null);
  const refresh = useDebounced(() => q.reload(true), 1500);
  const ack = useAction();

  const liveErr = useSubscription(
    'subscription DashboardEvents($types: [String!]) { events(types: $types) { id type occurredAt data } }',
    { types: LIVE_TYPES },
    (d) => {
      setLive((l) => [d.events, ...l].slice(0, 8));
      refresh();
    },
  );
  useSubscription(
    'subscription Quota { usageThresholdReached(threshold: 80) { id percent used quota severity occurredAt } }',
    {},
    (d) => {
      setQuotaEvent(d.usageThresholdReached);
      refresh();
    },
  );
  const endpoints = q.data?.webhookEndpoints?.nodes || [];
  const epKey = endpoints.map((e) => e.id).join(',');
  return (
    <Page
      title="Dashboard"
      subtitle={`${session.org.name} · ${session.org.plan.name} plan`}
      actions={
        <>
          <Link className="btn" to="/keys?new=1">
            New API key
          </Link>
          <Link className="btn" to="/webhooks?new=1">
            New webhook
          </Link>
        </>
      }
    >
      {quotaEvent && (
        <div className="warn-box" role="alert">
          Quota threshold reached: {quotaEvent.percent} % of the monthly quota used ({num(quotaEvent.used)} of{' '}
          {num(quotaEvent.quota)}).
        </div>
      )}
      {liveErr && <ErrorBox error={liveErr} title="Live updates unavailable" />}
      {epKey && <DeliverySubs ids={epKey.split(',')} onAttempt={refresh} />}
      <QueryState q={q} label="Loading the dashboard…">
        {(d) => (
          <>
            <div className="stats">
              <Stat label="Calls (24 h)" value={num(d.usage?.stats.calls)} />
              <Stat label="Errors (24 h)" value={num(d.usage?.stats.errors)} />
              <Stat label="Success rate (24 h)" value={pct(d.usage?.stats.successRate)} />
              <Stat label="p95 latency (24 h)" value={ms(d.usage?.stats.p95LatencyMs)} />
            </div>
            <Card
              title="API activity"
              actions={
                <Tabs
                  label="Granularity"
                  value={g}
                  onChange={setG}
                  tabs={[
                    ['HOUR', 'Last 24 hours'],
                    ['DAY', 'Last 30 days'],
                  ]}
                />
              }
            >
              {d.usageHistory ? <UsageCharts points={d.usageHistory} /> : <Unavailable />}
            </Card>
            <div className="grid2">
              <Card title="Monthly quota">{d.usageForecast ? <Quota f={d.usageForecast} /> : <Unavailable />}</Card>
              <Card
                title={`Open alerts${d.alerts ? ` (${d.alerts.totalCount})` : ''}`}
              >
                <ErrorBox error={ack.error} />
                {d.alerts == null ? (
                  <Unavailable />
                ) : d.alerts.nodes.length ? (
                  <ul className="list">
                    {d.alerts.nodes.map((a) => (
                      <li key={a.id}>
                        <Status value={a.severity} /> <strong>{a.title}</strong>{' '}
                        <span className="muted">
                          <Time value={a.lastSeenAt} /> · {a.occurrences}×
                        </span>{' '}
                        {a.status === 'OPEN' ? (
                          <button
                            type="button"
                            className="btn small"
                            disabled={ack.busy}
                            onClick={() =>
                              ack.run(async () => {
                                await gql('mutation($id: ID!) { acknowledgeAlert(id: $id) { id status } }', { id: a.id });
                                q.reload(true);
                              })
                            }
                          >
                            Acknowledge
                          </button>
                        ) : (
                          <Status value={a.status} />
                        )}
                      </li>
                    ))}
                  </ul>
                ) : (
                  <Empty>No open alerts.</Empty>
                )}
              </Card>
            </div>
            <div className="grid2">
              <Card title="Last webhook deliveries" actions={<Link to="/webhooks">All webhooks</Link>}>
                {d.webhookDeliveries == null ? (
                  <Unavailable />
                ) : d.webhookDeliveries.nodes.length ? (
                  <div className="table-wrap"><table className="table">
                    <thead>
                      <tr>
                        <th>Event</th>
                        <th>Status</th>
                        <th>Attempts</th>
                        <th>When</th>
                      </tr>
                    </thead>
                    <tbody>
                      {d.webhookDeliveries.nodes.map((w) => (
                        <tr key={w.id}>
                          <td>
                            <Link to={`/webhooks/${w.endpointId}?delivery=${w.id}`}>{w.eventType}</Link>
                          </td>
                          <td>
                            <Status value={w.status} /> {w.lastStatusCode && <code>{w.lastStatusCode}</code>}
                          </td>
                          <td>{w.attemptCount}</td>
                          <td>
                            <Time value={w.createdAt} />
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table></div>
                ) : (
                  <Empty>No deliveries yet.</Empty>
                )}
              </Card>
              <Card title="Live events">
                {live.length ? (
                  <ul className="list live" aria-live="polite">
                    {live.map((e) => (
                      <li key={e.id}>
                        <code>{e.type}</code> <Time value={e.occurredAt} />
                      </li>
                    ))}
                  </ul>
                ) : (
                  <Empty>Events appear here as they happen.</Empty>
                )}
              </Card>
            </div>
          </>
        )}
      </QueryState>
    </Page>
  );
}

function DeliverySubs({ ids, onAttempt }) {
  return ids.map((id) => <DeliverySub key={id} id={id} onAttempt={onAttempt} />);
}

function DeliverySub({ id, onAttempt }) {
  useSubscription(
    'subscription($id: ID!) { webhookDelivered(webhookId: $id) { attemptId deliveryId status } }',
    { id },
    onAttempt,
  );
  return null;
}

function Stat({ label, value }) {
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value">{value}</div>
    </div>
  );
}

export function Quota({ f }) {
  if (f.monthlyQuota == null) {
    return (
      <p>
        {num(f.quotaUsed)} calls counted this month; the plan has no monthly quota. Projected by{' '}
        {day(f.periodEnd)}: {num(f.projectedCalls)}.
      </p>
    );
  }
  const used = f.quotaUsed / f.monthlyQuota;
  return (
    <div>
      <Gauge used={f.quotaUsed} projected={f.projectedQuotaUsed} limit={f.monthlyQuota} />
      <p className="gauge-legend">
        <strong>{pct(used)}</strong> used: {num(f.quotaUsed)} of {num(f.monthlyQuota)}.
      </p>
      <p className="muted">
        Forecast to {day(f.periodEnd)}: {num(f.projectedQuotaUsed)} ({f.projectedPercentOfQuota?.toFixed(1)} % of the quota)
        {f.quotaExhaustedAt ? (
          <>
            {' '}
            — <strong className="bad-text">runs out {day(f.quotaExhaustedAt)}</strong> at this pace.
          </>
        ) : (
          ' — within the quota at this pace.'
        )}
      </p>
    </div>
  );
}
