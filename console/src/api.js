// The console's only way to the server: POST /graphql (queries and mutations) and the
// graphql-ws protocol on /graphql/ws (subscriptions), both same-origin. The credential lives
// in memory only (module state below, set from React state); nothing is ever written to
// localStorage or sessionStorage.

import { createClient } from 'graphql-ws';

/**
 * The scope vocabulary as the server states it (`scopes`: name, description, the roles holding
 * it), loaded with the viewer at sign-in.
 */
let vocabulary = [];

export function setVocabulary(list) {
  vocabulary = Array.isArray(list) ? list : [];
}

/** Every scope a key or an app may be granted: `{ name, description, roles }`. */
export function scopeList() {
  return vocabulary;
}

export function scopeAllows(granted, wanted) {
  return granted.some(
    (g) =>
      g === '*' ||
      g === wanted ||
      (wanted.endsWith(':read') && g.endsWith(':write') && g.slice(0, -6) === wanted.slice(0, -5)),
  );
}

/** The roles whose members hold `scope`, e.g. ['OWNER', 'ADMIN', 'MEMBER'] (the server's matrix). */
export function rolesWithScope(scope) {
  return vocabulary.find((s) => s.name === scope)?.roles || [];
}

/** One failed GraphQL error (or a transport failure) in a shape pages can show. */
export class ApiError extends Error {
  constructor({ message, code, status, retryAfter, reason, field, path, all }) {
    super(message);
    this.name = 'ApiError';
    this.code = code || null;
    this.status = status || null;
    this.retryAfter = retryAfter ?? null;
    this.reason = reason || null;
    this.field = field || null;
    this.path = path || null;
    this.all = all || [];
  }

  /** A sentence for people: what happened and, where we can tell, what to do. */
  get hint() {
    if (this.code === 'RATE_LIMITED' || this.status === 429) {
      return this.retryAfter != null
        ? `Rate limited: try again in ${this.retryAfter} s.`
        : 'Rate limited: try again shortly.';
    }
    if (this.code === 'QUOTA_EXCEEDED') return 'The monthly quota is spent.';
    if (this.code === 'FORBIDDEN') {
      if (this.reason) return `Refused: ${this.reason}.`;
      const scope = /`([a-z]+:[a-z]+)`/.exec(this.message)?.[1];
      if (scope) {
        const roles = rolesWithScope(scope);
        return `Needs the ${scope} scope: role ${roles.join(', ')}.`;
      }
      if (/OWNER/.test(this.message)) return 'Needs the OWNER role.';
      if (/platform admin/i.test(this.message)) return 'Only platform administrators may do this.';
    }
    if (this.code === 'UNAUTHENTICATED') return 'Your session ended: sign in again.';
    return null;
  }
}

const auth = { token: null, orgId: null, onUnauthenticated: null };

/** Sets the credential used by every call (kept in memory only). */
export function setCredential(token, orgId) {
  const changed = auth.token !== token || auth.orgId !== orgId;
  auth.token = token || null;
  auth.orgId = orgId || null;
  if (changed) resetSubscriptions();
}

export function onUnauthenticated(fn) {
  auth.onUnauthenticated = fn;
}

function errorFrom(errors, status, retryAfterHeader) {
  const first = errors[0] || {};
  const ext = first.extensions || {};
  let retryAfter = ext.retryAfter;
  if (retryAfter == null && retryAfterHeader) retryAfter = Number(retryAfterHeader);
  return new ApiError({
    message: first.message || `HTTP ${status}`,
    code: ext.code,
    status,
    retryAfter,
    reason: ext.reason,
    field: ext.field,
    path: first.path,
    all: errors,
  });
}

/**
 * Runs one operation. Resolves `{ data, errors }`: `data` may be partial with `errors` beside it
 * (a field that failed is null and its error is listed). Rejects with an ApiError when nothing
 * came back (transport failure, HTTP error, or `data: null`).
 */
export async function gqlRaw(query, variables = {}, { token, orgId, signal } = {}) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  const t = token === undefined ? auth.token : token;
  const o = orgId === undefined ? auth.orgId : orgId;
  if (t) headers.Authorization = `Bearer ${t}`;
  if (o) headers['X-Organization-Id'] = o;
  let res;
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables }),
      signal,
      credentials: 'omit',
    });
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new ApiError({ message: `The server could not be reached (${e.message}).`, code: 'NETWORK' });
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON
  }
  const errors = Array.isArray(body?.errors) ? body.errors : [];
  if (!body || body.data == null) {
    const err = errors.length
      ? errorFrom(errors, res.status, res.headers.get('Retry-After'))
      : new ApiError({
          message: `The server answered HTTP ${res.status} without data.`,
          status: res.status,
          code: res.status === 429 ? 'RATE_LIMITED' : undefined,
          retryAfter: res.headers.get('Retry-After') ? Number(res.headers.get('Retry-After')) : null,
        });
    if (err.code === 'UNAUTHENTICATED' && t && auth.onUnauthenticated && t === auth.token) {
      auth.onUnauthenticated(err);
    }
    throw err;
  }
  return { data: body.data, errors: errors.map((e) => errorFrom([e], res.status)) };
}

/**
 * Runs one operation and rejects on any error (for mutations, where a partial answer is a
 * failure to report).
 */
export async function gql(query, variables, opts) {
  const { data, errors } = await gqlRaw(query, variables, opts);
  if (errors.length) throw errors[0];
  return data;
}

// ---- subscriptions ---------------------------------------------------------------------------

let wsClient = null;
const wsListeners = new Set();
let wsState = { state: 'idle' };

function setWsState(s) {
  wsState = s;
  for (const fn of wsListeners) fn(s);
}

export function onWsState(fn) {
  wsListeners.add(fn);
  fn(wsState);
  return () => wsListeners.delete(fn);
}

const credentialListeners = new Set();

/** Calls `fn` whenever the credential changes (subscriptions must then be made again). */
export function onCredentialChange(fn) {
  credentialListeners.add(fn);
  return () => credentialListeners.delete(fn);
}

function resetSubscriptions() {
  for (const fn of credentialListeners) fn();
  if (wsClient) {
    wsClient.dispose();
    wsClient = null;
    setWsState({ state: 'idle' });
  }
}

function client() {
  if (wsClient) return wsClient;
  if (!auth.token) return null;
  const { protocol, host } = window.location;
  const token = auth.token;
  const orgId = auth.orgId;
  wsClient = createClient({
    url: `${protocol === 'https:' ? 'wss:' : 'ws:'}//${host}/graphql/ws`,
    lazy: true,
    lazyCloseTimeout: 2000,
    connectionParams: () => {
      const p = { Authorization: `Bearer ${token}` };
      if (orgId) p['X-Organization-Id'] = orgId;
      return p;
    },
    retryAttempts: 5,
    shouldRetry: (e) => !(e && typeof e === 'object' && 'code' in e && (e.code === 4401 || e.code === 4403)),
    on: {
      connecting: () => setWsState({ state: 'connecting' }),
      connected: () => setWsState({ state: 'connected' }),
      closed: (e) => setWsState({ state: 'closed', code: e?.code, reason: e?.reason }),
      error: () => setWsState({ state: 'error' }),
    },
  });
  return wsClient;
}

/**
 * Subscribes; `onData(data)` for each result, `onError(ApiError)` on failure. Returns the
 * unsubscribe function.
 */
export function subscribe(query, variables, onData, onError) {
  const c = client();
  if (!c) return () => {};
  return c.subscribe(
    { query, variables },
    {
      next: (r) => {
        if (r.errors?.length) onError?.(errorFrom(r.errors, 200));
        if (r.data) onData(r.data);
      },
      error: (e) => {
        if (Array.isArray(e)) onError?.(errorFrom(e, 200));
        else if (e && typeof e === 'object' && 'code' in e && 'reason' in e) {
          onError?.(new ApiError({ message: `Live updates closed (${e.code}${e.reason ? `: ${e.reason}` : ''}).`, code: 'WS_CLOSED' }));
        } else onError?.(new ApiError({ message: 'Live updates failed to connect.', code: 'WS_ERROR' }));
      },
      complete: () => {},
    },
  );
}

/**
 * GETs a same-origin REST resource as text with the current credential (the invoice's printable
 * HTML view, which has no GraphQL equivalent). Rejects with an ApiError on a non-2xx answer.
 */
export async function restText(path) {
  const headers = {};
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  if (auth.orgId) headers['X-Organization-Id'] = auth.orgId;
  const res = await fetch(path, { headers, credentials: 'omit' });
  const text = await res.text();
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    let code;
    try {
      const j = JSON.parse(text);
      msg = j.error?.message || j.message || msg;
      code = j.error?.type || j.error?.code;
    } catch {
      // not JSON
    }
    throw new ApiError({ message: msg, code, status: res.status, retryAfter: res.headers.get('Retry-After') });
  }
  return text;
}
