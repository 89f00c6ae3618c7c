import { useEffect, useRef, useState } from 'react';
import { BASE, navigate } from './hooks.js';

// ---- formatting --------------------------------------------------------------------------------

const nf = new Intl.NumberFormat('en-US');
export const num = (n) => (n == null ? '—' : nf.format(n));
export const ms = (n) => (n == null ? '—' : `${n < 10 ? n.toFixed(1) : Math.round(n)} ms`);
export const pct = (f, digits = 1) => (f == null ? '—' : `${(f * 100).toFixed(digits)} %`);

export function money(m) {
  if (!m) return '—';
  const { amount, currency } = m;
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(amount / 100);
  } catch {
    return `${(amount / 100).toFixed(2)} ${currency}`;
  }
}

export function bytes(n) {
  if (n == null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function date(s) {
  if (!s) return '—';
  return new Date(s).toLocaleString('en-GB', {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

export function day(s) {
  if (!s) return '—';
  return new Date(s).toLocaleDateString('en-GB', { year: 'numeric', month: 'short', day: 'numeric' });
}

export function ago(s) {
  if (!s) return 'never';
  const d = (Date.now() - new Date(s).getTime()) / 1000;
  const f = (v, u) => `${Math.round(v)} ${u}${Math.round(v) === 1 ? '' : 's'}`;
  if (d < 0) {
    const a = -d;
    if (a < 3600) return `in ${f(a / 60, 'minute')}`;
    if (a < 86400) return `in ${f(a / 3600, 'hour')}`;
    return `in ${f(a / 86400, 'day')}`;
  }
  if (d < 45) return 'just now';
  if (d < 3600) return `${f(d / 60, 'minute')} ago`;
  if (d < 86400) return `${f(d / 3600, 'hour')} ago`;
  return `${f(d / 86400, 'day')} ago`;
}

export function Time({ value }) {
  if (!value) return <span className="muted">never</span>;
  return (
    <time dateTime={value} title={new Date(value).toISOString()}>
      {ago(value)}
    </time>
  );
}

// ---- navigation ---------------------------------------------------------------------------------

export function Link({ to, children, onClick, ...rest }) {
  return (
    <a
      href={`${BASE}${to}`}
      onClick={(e) => {
        onClick?.(e);
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(to);
      }}
      {...rest}
    >
      {children}
    </a>
  );
}

// ---- states -----------------------------------------------------------------------------------

export function Loading({ label = 'Loading…' }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

function RetryCountdown({ seconds, onRetry }) {
  const [left, setLeft] = useState(seconds);
  useEffect(() => {
    setLeft(seconds);
    const t = setInterval(() => setLeft((l) => Math.max(0, l - 1)), 1000);
    return () => clearInterval(t);
  }, [seconds]);
  return (
    <span>
      {left > 0 ? `Retry possible in ${left} s.` : 'You can retry now.'}{' '}
      {onRetry && (
        <button type="button" className="btn small" disabled={left > 0} onClick={() => onRetry()}>
          Retry
        </button>
      )}
    </span>
  );
}

/** An error from the API: its message, `extensions.code` and what to do. */
export function ErrorBox({ error, onRetry, title }) {
  if (!error) return null;
  const limited = error.code === 'RATE_LIMITED' || error.status === 429;
  return (
    <div className="error-box" role="alert">
      <div className="error-title">
        {title || 'The request failed'}
        {error.code && <code className="error-code">{error.code}</code>}
      </div>
      <div className="error-msg">{error.message}</div>
      {error.hint && !(limited && error.retryAfter != null) && <div className="error-hint">{error.hint}</div>}
      {limited && error.retryAfter != null && (
        <div className="error-hint">
          Rate limited (retry-after {error.retryAfter} s). <RetryCountdown seconds={error.retryAfter} onRetry={onRetry} />
        </div>
      )}
      {!limited && onRetry && (
        <button type="button" className="btn small" onClick={() => onRetry()}>
          Retry
        </button>
      )}
    </div>
  );
}

/** Errors that came beside data: the parts of the page they concern are missing. */
export function PartialErrors({ errors }) {
  if (!errors?.length) return null;
  // One line per distinct refusal, naming every part it took out.
  const groups = new Map();
  for (const e of errors) {
    const k = `${e.code}|${e.message}`;
    if (!groups.has(k)) groups.set(k, { e, paths: [] });
    if (e.path) groups.get(k).paths.push(e.path.join('.'));
  }
  return (
    <div className="warn-box" role="status">
      Part of this page could not be loaded:
      <ul>
        {[...groups.values()].map(({ e, paths }, i) => (
          <li key={i}>
            {e.message} {e.code && <code className="error-code">{e.code}</code>}
            {e.hint && <strong> {e.hint}</strong>}
            {paths.length > 0 && <span className="muted small"> ({paths.join(', ')})</span>}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** In place of a part of the page that failed to load (its error is listed above). */
export function Unavailable() {
  return <div className="empty">Not available: see the message above.</div>;
}

/** Loading / error / content for one query result. */
export function QueryState({ q, children, label }) {
  if (q.error && !q.data) return <ErrorBox error={q.error} onRetry={() => q.reload()} />;
  if (!q.data) return <Loading label={label} />;
  return (
    <>
      {q.error && <ErrorBox error={q.error} onRetry={() => q.reload()} title="Refreshing failed" />}
      <PartialErrors errors={q.errors} />
      {children(q.data)}
    </>
  );
}

export function Empty({ children }) {
  return <div className="empty">{children}</div>;
}

// ---- layout -----------------------------------------------------------------------------------

export function Page({ title, actions, children, subtitle }) {
  useEffect(() => {
    document.title = `${title} · Gantry console`;
  }, [title]);
  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-head">
        <div>
          <h1 id="page-title" tabIndex={-1}>
            {title}
          </h1>
          {subtitle && <p className="muted">{subtitle}</p>}
        </div>
        {actions && <div className="page-actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

export function Card({ title, actions, children, className = '', ...rest }) {
  return (
    <section className={`card ${className}`} {...rest}>
      {(title || actions) && (
        <header className="card-head">
          {title && <h2>{title}</h2>}
          {actions && <div className="card-actions">{actions}</div>}
        </header>
      )}
      {children}
    </section>
  );
}

export function Badge({ tone = 'neutral', children }) {
  return <span className={`badge ${tone}`}>{children}</span>;
}

const TONES = {
  ACTIVE: 'ok', SUCCEEDED: 'ok', PAID: 'ok', APPROVED: 'ok', ACCEPTED: 'ok',
  PENDING: 'pending', OPEN: 'warn', DRAFT: 'neutral', ACKNOWLEDGED: 'neutral',
  REVOKED: 'bad', EXPIRED: 'bad', FAILED: 'bad', REJECTED: 'bad', VOID: 'neutral',
  UNCOLLECTIBLE: 'bad', DEPRECATED: 'neutral', PAST_DUE: 'bad', SUSPENDED: 'bad', CANCELED: 'neutral',
  CRITICAL: 'bad', HIGH: 'bad', MEDIUM: 'warn', LOW: 'neutral',
};

export function Status({ value }) {
  return <Badge tone={TONES[value] || 'neutral'}>{String(value).toLowerCase().replace(/_/g, ' ')}</Badge>;
}

export function Tabs({ tabs, value, onChange, label }) {
  return (
    <div className="tabs" role="tablist" aria-label={label}>
      {tabs.map(([k, l]) => (
        <button
          key={k}
          type="button"
          role="tab"
          aria-selected={value === k}
          className={value === k ? 'tab active' : 'tab'}
          onClick={() => onChange(k)}
        >
          {l}
        </button>
      ))}
    </div>
  );
}

/** A modal dialog: Escape or the close button closes it; focus moves into it. */
export function Modal({ title, onClose, children, wide }) {
  const ref = useRef(null);
  useEffect(() => {
    const prev = document.activeElement;
    const el = ref.current;
    const first = el?.querySelector('input, select, textarea, button:not(.modal-close)');
    (first || el)?.focus();
    const onKey = (e) => {
      if (e.key === 'Escape') onClose();
    };
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('keydown', onKey);
      prev?.focus?.();
    };
  }, [onClose]);
  return (
    <div className="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div
        className={wide ? 'modal wide' : 'modal'}
        role="dialog"
        aria-modal="true"
        aria-labelledby="modal-title"
        ref={ref}
        tabIndex={-1}
      >
        <header className="modal-head">
          <h2 id="modal-title">{title}</h2>
          <button type="button" className="modal-close" aria-label="Close" onClick={onClose}>
            ×
          </button>
        </header>
        <div className="modal-body">{children}</div>
      </div>
    </div>
  );
}

export function Field({ label, hint, children, className = '' }) {
  return (
    <label className={`field ${className}`}>
      <span className="field-label">{label}</span>
      {children}
      {hint && <span className="field-hint">{hint}</span>}
    </label>
  );
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.className = 'offscreen';
    document.body.appendChild(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    ta.remove();
    return ok;
  }
}

export function CopyButton({ text, label = 'Copy' }) {
  const [done, setDone] = useState(null);
  return (
    <button
      type="button"
      className="btn small"
      onClick={async () => {
        setDone((await copyText(text)) ? 'Copied' : 'Copy failed: select and copy by hand');
        setTimeout(() => setDone(null), 2500);
      }}
    >
      {done || label}
    </button>
  );
}

/** A secret shown this once: never stored anywhere, gone when this unmounts. */
export function SecretBox({ secret, what = 'secret', children }) {
  return (
    <div className="secret-box" role="status">
      <p>
        <strong>Copy this {what} now.</strong> It is shown only once: Gantry keeps only its hash.
      </p>
      <div className="secret-row">
        <code className="secret" data-testid="secret">
          {secret}
        </code>
        <CopyButton text={secret} />
      </div>
      {children}
    </div>
  );
}

export function JsonBlock({ value, label }) {
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  return (
    <pre className="json" aria-label={label} tabIndex={0}>
      {text}
    </pre>
  );
}

/** Reads a form's fields into an object of strings. */
export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

/** Comma/newline separated text to a trimmed list. */
export function list(text) {
  return String(text || '')
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** An integer field's value, or null when blank. */
export function intOrNull(v) {
  if (v == null || String(v).trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? Math.trunc(n) : null;
}

/** CSV text of rows (first row = header), RFC 4180 quoting. */
export function toCsv(rows) {
  return rows
    .map((r) =>
      r
        .map((c) => {
          const s = c == null ? '' : String(c);
          return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
        })
        .join(','),
    )
    .join('\n');
}

export function download(name, text, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
