import { useMemo, useState } from 'react';
import { useQuery } from '../hooks.js';
import {
  Card, Empty, Field, Link, Page, QueryState, Tabs, download, ms, num, pct, toCsv, bytes,
} from '../ui.jsx';
import { HISTORY, UsageCharts, windowFor } from './dashboard.jsx';

const STATS = 'calls errors clientErrors serverErrors limitedCalls successRate p50LatencyMs p95LatencyMs p99LatencyMs bandwidthBytes';

const QUERY = `query Usage($period: UsagePeriod!, $start: DateTime!, $end: DateTime!, $g: UsageGranularity!) {
  ${HISTORY}
  usage(period: $period) { start end stats { ${STATS} } }
  usageByEndpoint(period: $period) { operation stats { ${STATS} } }
  usageByKey(period: $period) { keyId apiKey { id name environment status } stats { ${STATS} } }
  usageByApp(period: $period) { appId appName stats { ${STATS} } }
  errorBreakdown(period: $period) { status calls share }
}`;

const PERIODS = [
  ['LAST_24_HOURS', 'Last 24 hours'],
  ['LAST_7_DAYS', 'Last 7 days'],
  ['LAST_30_DAYS', 'Last 30 days'],
  ['CURRENT_MONTH', 'This month'],
  ['PREVIOUS_MONTH', 'Previous month'],
];

const STAT_COLS = [
  ['Calls', (s) => s.calls, num],
  ['Errors', (s) => s.errors, num],
  ['429s', (s) => s.limitedCalls, num],
  ['Success', (s) => s.successRate, pct],
  ['p50', (s) => s.p50LatencyMs, ms],
  ['p95', (s) => s.p95LatencyMs, ms],
  ['p99', (s) => s.p99LatencyMs, ms],
];

/** The table for a tab: `{ head, rows: [{ key, cells: [node], csv: [value] }] }`. */
function tableFor(tab, d) {
  const statCells = (s) => STAT_COLS.map(([, get, f]) => f(get(s)));
  const statCsv = (s) => STAT_COLS.map(([, get]) => get(s) ?? '');
  const statHead = STAT_COLS.map(([h]) => h);
  if (tab === 'endpoint') {
    return {
      head: ['Operation', ...statHead],
      rows: (d.usageByEndpoint || []).map((r) => ({
        key: r.operation,
        cells: [<code key="o">{r.operation}</code>, ...statCells(r.stats)],
        csv: [r.operation, ...statCsv(r.stats)],
      })),
    };
  }
  if (tab === 'key') {
    return {
      head: ['Key', ...statHead],
      rows: (d.usageByKey || []).map((r) => {
        const name = r.keyId ? r.apiKey?.name || `${r.keyId} (deleted)` : 'Signed-in users (no key)';
        return {
          key: r.keyId || 'session',
          cells: [r.apiKey ? <Link key="k" to={`/keys/${r.keyId}`}>{name}</Link> : name, ...statCells(r.stats)],
          csv: [name, ...statCsv(r.stats)],
        };
      }),
    };
  }
  if (tab === 'app') {
    return {
      head: ['App', ...statHead],
      rows: (d.usageByApp || []).map((r) => ({
        key: r.appId,
        cells: [r.appName || r.appId, ...statCells(r.stats)],
        csv: [r.appName || r.appId, ...statCsv(r.stats)],
      })),
    };
  }
  return {
    head: ['Status', 'Calls', 'Share'],
    rows: (d.errorBreakdown || []).map((r) => ({
      key: r.status,
      cells: [<code key="s">{r.status}</code>, num(r.calls), pct(r.share)],
      csv: [r.status, r.calls, r.share],
    })),
  };
}

export function Usage() {
  const [period, setPeriod] = useState('LAST_7_DAYS');
  const [tab, setTab] = useState('endpoint');
  const g = period === 'LAST_24_HOURS' ? 'HOUR' : 'DAY';
  const win = useMemo(() => windowFor(g), [g]);
  const q = useQuery(QUERY, { period, ...win });
  return (
    <Page title="Usage">
      <div className="filters">
        <Field label="Period" className="inline">
          <select value={period} onChange={(e) => setPeriod(e.target.value)}>
            {PERIODS.map(([k, l]) => (
              <option key={k} value={k}>
                {l}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <QueryState q={q} label="Loading usage…">
        {(d) => {
          const t = tableFor(tab, d);
          const s = d.usage?.stats;
          return (
            <>
              {s && (
                <div className="stats">
                  <div className="stat">
                    <div className="stat-label">Calls</div>
                    <div className="stat-value">{num(s.calls)}</div>
                  </div>
                  <div className="stat">
                    <div className="stat-label">Errors (4xx / 5xx)</div>
                    <div className="stat-value">
                      {num(s.clientErrors)} / {num(s.serverErrors)}
                    </div>
                  </div>
                  <div className="stat">
                    <div className="stat-label">p50 / p95 / p99</div>
                    <div className="stat-value">
                      {ms(s.p50LatencyMs)} / {ms(s.p95LatencyMs)} / {ms(s.p99LatencyMs)}
                    </div>
                  </div>
                  <div className="stat">
                    <div className="stat-label">Bandwidth</div>
                    <div className="stat-value">{bytes(s.bandwidthBytes)}</div>
                  </div>
                </div>
              )}
              {d.usageHistory && (
                <Card title={g === 'HOUR' ? 'Last 24 hours, by hour' : 'Last 30 days, by day'}>
                  <UsageCharts points={d.usageHistory} />
                </Card>
              )}
              <Card
                title="Breakdown"
                actions={
                  <button
                    type="button"
                    className="btn small"
                    disabled={!t.rows.length}
                    onClick={() => download(`gantry-usage-${tab}-${period.toLowerCase()}.csv`, toCsv([t.head, ...t.rows.map((r) => r.csv)]))}
                  >
                    Export CSV
                  </button>
                }
              >
                <Tabs
                  label="Breakdown"
                  value={tab}
                  onChange={setTab}
                  tabs={[
                    ['endpoint', 'By endpoint'],
                    ['key', 'By key'],
                    ['app', 'By app'],
                    ['errors', 'Errors'],
                  ]}
                />
                {t.rows.length ? (
                  <div className="table-wrap">
                    <table className="table" aria-label="Usage breakdown">
                      <thead>
                        <tr>
                          {t.head.map((h, i) => (
                            <th key={h} className={i ? 'num' : undefined}>
                              {h}
                            </th>
                          ))}
                        </tr>
                      </thead>
                      <tbody>
                        {t.rows.map((r) => (
                          <tr key={r.key}>
                            {r.cells.map((c, i) => (
                              <td key={i} className={i ? 'num' : undefined}>
                                {c}
                              </td>
                            ))}
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                ) : (
                  <Empty>Nothing in this period.</Empty>
                )}
              </Card>
            </>
          );
        }}
      </QueryState>
    </Page>
  );
}
