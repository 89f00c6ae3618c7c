import { StrictMode, createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { useEditorContext } from '@graphiql/react';
import { Kind, parse } from 'graphql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { createClient } from 'graphql-ws';

import 'graphiql/style.css';
import './style.css';

import { COLLECTIONS, DEFAULT_TABS, SAMPLES, groupOf } from './samples.js';
import { exportOperation } from './export.js';

const TOKEN_STORAGE_KEY = 'gantry.playground.token';
// How long the token input must be idle before a typed token is applied.
// Enter or leaving the field applies it at once.
const TOKEN_APPLY_DELAY_MS = 400;

/** Same-origin endpoints, derived from where the page was served from. */
function endpoints() {
  const { protocol, host } = window.location;
  const wsProtocol = protocol === 'https:' ? 'wss:' : 'ws:';
  return {
    http: `${protocol}//${host}/graphql`,
    ws: `${wsProtocol}//${host}/graphql/ws`,
  };
}

/** Accepts a bare token or a pasted "Bearer <token>" and returns the bare token. */
function normalizeToken(raw) {
  return (raw ?? '').trim().replace(/^bearer\s+/i, '').trim();
}

function loadStoredToken() {
  try {
    return window.localStorage.getItem(TOKEN_STORAGE_KEY) ?? '';
  } catch {
    return '';
  }
}

function storeToken(token) {
  try {
    if (token) window.localStorage.setItem(TOKEN_STORAGE_KEY, token);
    else window.localStorage.removeItem(TOKEN_STORAGE_KEY);
  } catch {
    // Storage can be unavailable (private mode, disabled); the token then lives
    // only as long as the page.
  }
}

function isCloseEvent(value) {
  return typeof value === 'object' && value !== null && 'code' in value && 'reason' in value;
}

/**
 * Builds the GraphiQL fetcher for one token: HTTP POST /graphql with an
 * Authorization header (queries, mutations and introspection for the docs
 * explorer), and a graphql-ws client on /graphql/ws whose connection_init
 * payload carries the same Authorization value (subscriptions).
 */
function createGantryFetcher(token, onWsStatus) {
  const { http, ws } = endpoints();
  const authorization = token ? `Bearer ${token}` : null;

  const wsClient = createClient({
    url: ws,
    lazy: true,
    // The connection_init payload.
    connectionParams: () => (authorization ? { Authorization: authorization } : {}),
    // Retry dropped connections a couple of times, but report authentication
    // failures (4401 Unauthorized, 4403 Forbidden) at once instead of backing off.
    retryAttempts: 2,
    shouldRetry: (event) =>
      isCloseEvent(event) && event.code !== 4401 && event.code !== 4403,
    on: {
      connecting: () => onWsStatus({ state: 'connecting' }),
      connected: () => onWsStatus({ state: 'connected' }),
      closed: (event) =>
        onWsStatus({
          state: 'closed',
          code: event?.code,
          reason: event?.reason,
        }),
      error: () => onWsStatus({ state: 'error' }),
    },
  });

  const fetcher = createGraphiQLFetcher({
    url: http,
    headers: authorization ? { Authorization: authorization } : {},
    wsClient,
    // Plain JSON POSTs; no multipart/mixed incremental delivery.
    enableIncrementalDelivery: false,
  });

  return {
    fetcher,
    dispose: () => {
      wsClient.dispose();
    },
  };
}

function describeWsStatus(status) {
  switch (status.state) {
    case 'connecting':
      return { label: 'WS connecting', tone: 'pending' };
    case 'connected':
      return { label: 'WS connected', tone: 'ok' };
    case 'closed': {
      // 1000 is a normal close (e.g. after the last subscription ended or
      // the token changed), not a failure.
      if (status.code === 1000 || status.code === undefined) {
        return { label: 'WS idle', tone: 'idle' };
      }
      const reason = status.reason ? `: ${status.reason}` : '';
      return { label: `WS closed ${status.code}${reason}`, tone: 'bad' };
    }
    case 'error':
      return { label: 'WS error', tone: 'bad' };
    default:
      return { label: 'WS idle', tone: 'idle' };
  }
}

/** The bare token the playground sends (for the code export). */
const TokenContext = createContext('');

/**
 * A function that opens a saved operation in a new tab (query and variables), or null while
 * the editors are not ready. Must be used inside GraphiQL (it needs the editor context).
 */
function useOpenOperation() {
  const { addTab, queryEditor, variableEditor } = useEditorContext({ nonNull: true });
  return useMemo(() => {
    if (!queryEditor) return null;
    return (sample) => {
      addTab();
      // addTab resets the shared editors to the new tab's (empty) contents;
      // fill them on the next tick so the tab picks up the sample.
      window.setTimeout(() => {
        queryEditor.setValue(sample.query);
        variableEditor?.setValue(sample.variables ?? '');
        if (sample.variables) {
          // Expand the variables pane so the required variables are visible.
          const tab = document.querySelector(
            '.graphiql-editor-tools button[data-name="variables"]:not(.active)',
          );
          tab?.click();
        }
        queryEditor.focus();
      }, 0);
    };
  }, [addTab, queryEditor, variableEditor]);
}

/** Removes the static "Loading the playground…" element of index.html. */
function removeLoadingElement() {
  document.getElementById('gantry-loading')?.remove();
}

/**
 * Rendered inside GraphiQL (so it can reach the editor context); hands the
 * header bar a function that opens a saved operation in a new tab, and removes
 * the loading element once the query editor exists (GraphiQL has rendered).
 */
function EditorBridge({ onReady }) {
  const open = useOpenOperation();

  useEffect(() => {
    if (!open) return undefined;
    removeLoadingElement();
    onReady(open);
    return () => onReady(null);
  }, [open, onReady]);

  return null;
}

/** Copies text to the clipboard; falls back to a selected textarea outside secure contexts. */
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'gantry-offscreen';
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

function CopyButton({ text, label }) {
  const [state, setState] = useState('idle');
  useEffect(() => {
    if (state === 'idle') return undefined;
    const timer = window.setTimeout(() => setState('idle'), 1500);
    return () => window.clearTimeout(timer);
  }, [state]);
  return (
    <button
      type="button"
      className="gantry-copy"
      aria-label={`Copy the ${label} snippet`}
      onClick={async () => setState((await copyText(text)) ? 'copied' : 'failed')}
    >
      {state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed' : 'Copy'}
    </button>
  );
}

/** The operation to name in the request: only needed when the document holds several. */
function operationNameFor(query, selected) {
  let doc;
  try {
    doc = parse(query);
  } catch {
    return selected || undefined;
  }
  const ops = doc.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (ops.length < 2) return undefined;
  return selected || ops[0].name?.value || undefined;
}

/** Plugin panel: the current operation as curl, JavaScript (fetch) and Python (requests). */
function ExportPanel() {
  const { tabs, activeTabIndex, queryEditor } = useEditorContext({ nonNull: true });
  const token = useContext(TokenContext);
  const tab = tabs[activeTabIndex] ?? {};
  const query = tab.query ?? '';
  const selected = tab.operationName ?? queryEditor?.operationName ?? null;
  const url = endpoints().http;

  let result;
  try {
    result = exportOperation({
      url,
      query,
      variablesText: tab.variables,
      headersText: tab.headers,
      operationName: operationNameFor(query, selected),
      token,
    });
  } catch (e) {
    result = { error: e.message };
  }

  return (
    <div className="gantry-panel gantry-export" id="gantry-export">
      <div className="graphiql-doc-explorer-title">Export code</div>
      <p className="gantry-panel-note">
        The operation in the editor with its variables and headers, sent to <code>{url}</code>
        {token ? ' with your token: treat the snippets like the token.' : '.'}
      </p>
      {!query.trim() ? (
        <p className="gantry-panel-note">Write an operation in the editor first.</p>
      ) : result.error ? (
        <p className="gantry-panel-error" role="alert">
          {result.error}
        </p>
      ) : (
        result.snippets.map((s) => (
          <section key={s.id} className="gantry-snippet" data-language={s.id}>
            <div className="gantry-snippet-head">
              <h3>{s.label}</h3>
              <CopyButton text={s.code} label={s.label} />
            </div>
            <pre>
              <code>{s.code}</code>
            </pre>
          </section>
        ))
      )}
    </div>
  );
}

/** Plugin panel: the saved collections, grouped by domain; a click opens one in a new tab. */
function CollectionsPanel() {
  const open = useOpenOperation();
  return (
    <div className="gantry-panel gantry-collections" id="gantry-collections">
      <div className="graphiql-doc-explorer-title">Collections</div>
      <p className="gantry-panel-note">
        Saved operations per domain. Opening one puts its query and variables in a new tab;
        replace the <code>paste …</code> placeholders with ids from your own data.
      </p>
      {COLLECTIONS.map((c) => (
        <section key={c.id} className="gantry-collection" data-collection={c.id}>
          <h3>{c.name}</h3>
          <p className="gantry-panel-note">{c.description}</p>
          <ul>
            {c.operations.map((op) => (
              <li key={op.name}>
                <button
                  type="button"
                  className="gantry-collection-entry"
                  data-name={op.name}
                  disabled={!open}
                  onClick={() => open?.(op)}
                >
                  <span className="gantry-collection-name">{op.name}</span>
                  <span className="gantry-collection-description">{op.description}</span>
                </button>
              </li>
            ))}
          </ul>
        </section>
      ))}
    </div>
  );
}

const iconProps = {
  width: 20,
  height: 20,
  viewBox: '0 0 24 24',
  fill: 'none',
  stroke: 'currentColor',
  strokeWidth: 1.5,
  strokeLinecap: 'round',
  strokeLinejoin: 'round',
};

function ExportIcon(props) {
  return (
    <svg {...iconProps} {...props}>
      <path d="M8 7 3 12l5 5M16 7l5 5-5 5M14 4l-4 16" />
    </svg>
  );
}

function CollectionsIcon(props) {
  return (
    <svg {...iconProps} {...props}>
      <path d="M3 6.5A1.5 1.5 0 0 1 4.5 5H9l2 2h8.5A1.5 1.5 0 0 1 21 8.5v9a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 17.5z" />
      <path d="M7 11h10M7 15h6" />
    </svg>
  );
}

/** Extra GraphiQL sidebar plugins (stable objects: GraphiQL compares them by identity). */
const PLUGINS = [
  { title: 'Collections', icon: CollectionsIcon, content: CollectionsPanel },
  { title: 'Export code', icon: ExportIcon, content: ExportPanel },
];

function TokenInput({ value, applied, onChange, onApply }) {
  const [visible, setVisible] = useState(false);
  return (
    <div className="gantry-token">
      <label htmlFor="gantry-token" className="gantry-token-label">
        Token
      </label>
      <input
        id="gantry-token"
        name="gantry-token"
        type={visible ? 'text' : 'password'}
        placeholder="API key or session token"
        autoComplete="off"
        autoCapitalize="off"
        autoCorrect="off"
        spellCheck={false}
        value={value}
        data-applied={applied ? 'true' : 'false'}
        onChange={(e) => onChange(e.target.value)}
        onBlur={onApply}
        onKeyDown={(e) => {
          if (e.key === 'Enter') onApply();
        }}
      />
      <button
        type="button"
        className="gantry-button"
        onClick={() => setVisible((v) => !v)}
        aria-pressed={visible}
        title={visible ? 'Hide token' : 'Show token'}
      >
        {visible ? 'Hide' : 'Show'}
      </button>
      <button
        type="button"
        className="gantry-button"
        onClick={() => {
          onChange('');
          onApply('');
        }}
        disabled={!value}
        title="Forget the token"
      >
        Clear
      </button>
    </div>
  );
}

function SamplePicker({ onPick, disabled }) {
  return (
    <select
      id="gantry-sample"
      className="gantry-select"
      value=""
      disabled={disabled}
      aria-label="Open a saved operation in a new tab"
      onChange={(e) => {
        const sample = SAMPLES.find((s) => s.name === e.target.value);
        if (sample) onPick(sample);
      }}
    >
      <option value="" disabled>
        Collections…
      </option>
      {[...new Set(SAMPLES.map(groupOf))].map((group) => (
        <optgroup key={group} label={group}>
          {SAMPLES.filter((s) => groupOf(s) === group).map((s) => (
            <option key={s.name} value={s.name} title={s.description}>
              {s.name} — {s.description}
            </option>
          ))}
        </optgroup>
      ))}
    </select>
  );
}

function App() {
  const [draftToken, setDraftToken] = useState(loadStoredToken);
  const [token, setToken] = useState(() => normalizeToken(loadStoredToken()));
  const [wsStatus, setWsStatus] = useState({ state: 'idle' });
  const [bundle, setBundle] = useState(null);
  const [openSample, setOpenSample] = useState(null);

  const applyToken = useCallback(
    (raw) => {
      const next = normalizeToken(typeof raw === 'string' ? raw : draftToken);
      storeToken(next);
      setToken(next);
    },
    [draftToken],
  );

  // Apply a typed token once the field has been idle for a moment.
  useEffect(() => {
    if (normalizeToken(draftToken) === token) return undefined;
    const timer = window.setTimeout(() => applyToken(draftToken), TOKEN_APPLY_DELAY_MS);
    return () => window.clearTimeout(timer);
  }, [draftToken, token, applyToken]);

  // A new token means a new fetcher: new HTTP headers, a new WebSocket
  // connection (new connection_init payload) and a fresh introspection.
  useEffect(() => {
    let current = true;
    setWsStatus({ state: 'idle' });
    const next = createGantryFetcher(token, (status) => {
      if (current) setWsStatus(status);
    });
    setBundle(next);
    return () => {
      current = false;
      next.dispose();
    };
  }, [token]);

  const onBridgeReady = useCallback((fn) => setOpenSample(() => fn), []);

  const applied = normalizeToken(draftToken) === token;
  const ws = describeWsStatus(wsStatus);

  return (
    <div className="gantry-app">
      <header className="gantry-header">
        <h1 className="gantry-title">Gantry playground</h1>
        <TokenInput
          value={draftToken}
          applied={applied}
          onChange={setDraftToken}
          onApply={applyToken}
        />
        <SamplePicker onPick={(s) => openSample?.(s)} disabled={!openSample} />
        <div className="gantry-status" aria-live="polite">
          <span className={`gantry-pill gantry-pill-${token ? 'ok' : 'idle'}`}>
            {token ? (applied ? 'Token set' : 'Token pending') : 'No token'}
          </span>
          <span className={`gantry-pill gantry-pill-${ws.tone}`} id="gantry-ws-status">
            {ws.label}
          </span>
        </div>
      </header>
      <main className="gantry-main">
        {bundle ? (
          <TokenContext.Provider value={token}>
            <GraphiQL
              fetcher={bundle.fetcher}
              defaultTabs={DEFAULT_TABS}
              isHeadersEditorEnabled
              shouldPersistHeaders={false}
              plugins={PLUGINS}
            >
              <GraphiQL.Logo>
                <EditorBridge onReady={onBridgeReady} />
              </GraphiQL.Logo>
            </GraphiQL>
          </TokenContext.Provider>
        ) : null}
      </main>
    </div>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
