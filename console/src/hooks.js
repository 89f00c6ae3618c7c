import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { gqlRaw, onCredentialChange, subscribe } from './api.js';

// ---- routing (history API under /console) ----------------------------------------------------

export const BASE = '/console';
const routeListeners = new Set();

function currentPath() {
  let p = window.location.pathname;
  if (p.startsWith(BASE)) p = p.slice(BASE.length);
  if (!p || p === '/') return '/';
  return p.replace(/\/+$/, '');
}

export function navigate(to, { replace = false } = {}) {
  const url = `${BASE}${to}`;
  if (replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
  for (const fn of routeListeners) fn();
  window.scrollTo(0, 0);
}

window.addEventListener('popstate', () => {
  for (const fn of routeListeners) fn();
});

function subscribeRoute(fn) {
  routeListeners.add(fn);
  return () => routeListeners.delete(fn);
}

function routeSnapshot() {
  return window.location.pathname + window.location.search;
}

/** The path under /console (e.g. `/keys/key_1`) and the query string's parameters. */
export function useRoute() {
  useSyncExternalStore(subscribeRoute, routeSnapshot);
  return { path: currentPath(), params: new URLSearchParams(window.location.search) };
}

// ---- data --------------------------------------------------------------------------------------

/**
 * Runs a query when mounted and whenever `variables` change. `data` keeps what arrived even when
 * `errors` (partial failures) came with it; `error` is set when nothing came back.
 */
export function useQuery(query, variables = {}, { skip = false, pollMs = 0 } = {}) {
  const [state, setState] = useState({ loading: !skip, data: null, errors: [], error: null });
  const varsKey = JSON.stringify(variables);
  const seq = useRef(0);
  const run = useCallback(
    async (quiet = false) => {
      const mine = ++seq.current;
      if (!quiet) setState((s) => ({ ...s, loading: true, error: null }));
      try {
        const { data, errors } = await gqlRaw(query, JSON.parse(varsKey));
        if (mine === seq.current) setState({ loading: false, data, errors, error: null });
      } catch (error) {
        if (mine === seq.current) setState((s) => ({ ...s, loading: false, error }));
      }
    },
    [query, varsKey],
  );
  useEffect(() => {
    if (skip) return undefined;
    run();
    if (!pollMs) return undefined;
    const t = setInterval(() => run(true), pollMs);
    return () => clearInterval(t);
  }, [run, skip, pollMs]);
  const setData = useCallback((fn) => setState((s) => ({ ...s, data: fn(s.data) })), []);
  return { ...state, reload: run, setData };
}

/** Subscribes while mounted; `onData` always sees the latest closure. */
export function useSubscription(query, variables, onData, { skip = false } = {}) {
  const handler = useRef(onData);
  handler.current = onData;
  const [error, setError] = useState(null);
  // A refreshed session token means a new WebSocket: subscribe again on it.
  const [epoch, setEpoch] = useState(0);
  useEffect(() => onCredentialChange(() => setEpoch((e) => e + 1)), []);
  const varsKey = JSON.stringify(variables || {});
  useEffect(() => {
    if (skip) return undefined;
    setError(null);
    // Subscribe after the credential change has taken effect (the old client is disposed first).
    let unsub = null;
    const t = setTimeout(() => {
      unsub = subscribe(query, JSON.parse(varsKey), (d) => handler.current(d), setError);
    }, 0);
    return () => {
      clearTimeout(t);
      unsub?.();
    };
  }, [query, varsKey, skip, epoch]);
  return error;
}

/** Runs a mutation-like async function with `busy` and `error` state. */
export function useAction() {
  const [state, setState] = useState({ busy: false, error: null });
  const run = useCallback(async (fn) => {
    setState({ busy: true, error: null });
    try {
      const r = await fn();
      setState({ busy: false, error: null });
      return r;
    } catch (error) {
      setState({ busy: false, error });
      return undefined;
    }
  }, []);
  const clear = useCallback(() => setState({ busy: false, error: null }), []);
  return { ...state, run, clear };
}

/** Calls `fn` at most once per `ms` (trailing). */
export function useDebounced(fn, ms) {
  const ref = useRef(fn);
  ref.current = fn;
  const timer = useRef(null);
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      ref.current();
    }, ms);
  }, [ms]);
}
