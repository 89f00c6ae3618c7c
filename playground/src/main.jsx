import { StrictMode, useCallback, useEffect, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { useEditorContext } from '@graphiql/react';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { createClient } from 'graphql-ws';

import 'graphiql/style.css';
import './style.css';

import { DEFAULT_TABS, SAMPLES, groupOf } from './samples.js';

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

/**
 * Rendered inside GraphiQL (so it can reach the editor context); hands the
 * header bar a function that opens a sample operation in a new tab.
 */
function EditorBridge({ onReady }) {
  const editor = useEditorContext({ nonNull: true });
  const { addTab, queryEditor, variableEditor } = editor;

  useEffect(() => {
    if (!queryEditor) return undefined;
    onReady((sample) => {
      addTab();
      // addTab resets the shared editors to the new tab's (empty) contents;
      // fill them on the next tick so the tab picks up the sample.
      window.setTimeout(() => {
        queryEditor.setValue(sample.query);
        variableEditor?.setValue(sample.variables ?? '');
        if (sample.variables) {
          // Expand the variables pane so the required $id is visible.
          const tab = document.querySelector(
            '.graphiql-editor-tools button[data-name="variables"]:not(.active)',
          );
          tab?.click();
        }
        queryEditor.focus();
      }, 0);
    });
    return () => onReady(null);
  }, [addTab, queryEditor, variableEditor, onReady]);

  return null;
}

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
      aria-label="Open a sample operation in a new tab"
      onChange={(e) => {
        const sample = SAMPLES.find((s) => s.name === e.target.value);
        if (sample) onPick(sample);
      }}
    >
      <option value="" disabled>
        Sample operations…
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
          <GraphiQL
            fetcher={bundle.fetcher}
            defaultTabs={DEFAULT_TABS}
            isHeadersEditorEnabled
            shouldPersistHeaders={false}
          >
            <GraphiQL.Logo>
              <EditorBridge onReady={onBridgeReady} />
            </GraphiQL.Logo>
          </GraphiQL>
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
