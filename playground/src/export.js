// Code export: turns the current operation (query, variables, operation name, headers) and the
// server URL into runnable curl, JavaScript (fetch) and Python (requests) snippets.
//
// Pure functions only (no DOM, no React), so e2e/export.mjs tests them in node by running the
// snippets for real. Every snippet sends the same request: POST <url> with
// `Content-Type: application/json`, the given headers, and the JSON body
// {"query", "variables"?, "operationName"?}.

/**
 * Parses the text of a JSON editor (variables or headers pane). Blank text is `undefined`.
 * Throws an Error naming `what` when the text is not a JSON object.
 */
export function parseJsonObject(text, what) {
  if (text == null || !String(text).trim()) return undefined;
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`The ${what} are not valid JSON: ${e.message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`The ${what} must be a JSON object`);
  }
  return value;
}

/**
 * The request headers as [name, value] pairs: `Content-Type: application/json`, then
 * `Authorization: Bearer <token>` when a token is given, then the headers pane. A header from
 * the pane replaces one of the same name (case-insensitive) in place.
 */
export function mergeHeaders({ token, headers } = {}) {
  const out = [['Content-Type', 'application/json']];
  if (token) out.push(['Authorization', `Bearer ${token}`]);
  for (const [name, raw] of Object.entries(headers ?? {})) {
    if (raw === null || raw === undefined) continue;
    const value = typeof raw === 'string' ? raw : String(raw);
    const at = out.findIndex(([n]) => n.toLowerCase() === name.toLowerCase());
    if (at >= 0) out[at] = [name, value];
    else out.push([name, value]);
  }
  return out;
}

/** The request body object, without `variables`/`operationName` when there are none. */
export function requestBody({ query, variables, operationName }) {
  const body = { query: query ?? '' };
  if (variables !== undefined && variables !== null) body.variables = variables;
  if (operationName) body.operationName = operationName;
  return body;
}

/** Quotes a string for a POSIX shell: '…' with every ' written as '\''. */
export function shellQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

// Characters written as escapes in JS and Python string literals: C0 controls other than
// newline and tab, DEL, C1 controls, the Unicode line/paragraph separators, the BOM, and lone
// surrogates (which cannot be stored as UTF-8). Carriage returns must be escaped because both
// languages turn a literal CR inside a multi-line string into LF.
const NEEDS_ESCAPE =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const hex4 = (c) => c.charCodeAt(0).toString(16).padStart(4, '0');

/** A JavaScript template literal holding exactly `s` (multi-line, readable). */
export function jsTemplateLiteral(s) {
  const body = String(s)
    .replace(/\\/g, '\\\\')
    .replace(/`/g, '\\`')
    .replace(/\$\{/g, '\\${')
    .replace(NEEDS_ESCAPE, (c) => `\\u${hex4(c)}`);
  return `\`${body}\``;
}

/** A Python triple-quoted string holding exactly `s` (multi-line, readable). */
export function pyTripleQuoted(s) {
  const body = String(s)
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(NEEDS_ESCAPE, (c) => `\\u${hex4(c)}`);
  return `"""${body}"""`;
}

/** A Python string literal holding exactly `s` (JSON string escapes are valid Python escapes). */
export function pyString(s) {
  return JSON.stringify(String(s)).replace(NEEDS_ESCAPE, (c) => `\\u${hex4(c)}`);
}

/** A Python literal (dict/list/str/int/float/True/False/None) equal to the JSON value. */
export function pyLiteral(value, indent = 0) {
  const pad = '    '.repeat(indent + 1);
  const end = '    '.repeat(indent);
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : 'None';
  if (typeof value === 'string') return pyString(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => `${pad}${pyLiteral(v, indent + 1)},`).join('\n')}\n${end}]`;
  }
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `${pad}${pyString(k)}: ${pyLiteral(v, indent + 1)},`).join('\n')}\n${end}}`;
}

/** Indents every line but the first by `spaces`. */
const indentRest = (text, spaces) => text.replace(/\n/g, `\n${' '.repeat(spaces)}`);

/** JSON for a JS object literal (valid JS since ES2019), with the same escapes as strings. */
const jsValue = (value) => JSON.stringify(value, null, 2).replace(NEEDS_ESCAPE, (c) => `\\u${hex4(c)}`);

/**
 * The curl command: one line per option, the body as compact JSON in single quotes.
 */
export function curlSnippet(op) {
  const lines = [`curl ${shellQuote(op.url)}`, '  --request POST'];
  for (const [name, value] of mergeHeaders(op)) lines.push(`  --header ${shellQuote(`${name}: ${value}`)}`);
  lines.push(`  --data-raw ${shellQuote(JSON.stringify(requestBody(op)))}`);
  return `${lines.join(' \\\n')}\n`;
}

/** JavaScript with fetch (a browser console, Deno, or Node ≥ 18 as an ES module). */
export function fetchSnippet(op) {
  const headers = Object.fromEntries(mergeHeaders(op));
  const out = [`const query = ${jsTemplateLiteral(op.query ?? '')};`];
  const parts = ['query'];
  if (op.variables !== undefined && op.variables !== null) {
    out.push(`const variables = ${jsValue(op.variables)};`);
    parts.push('variables');
  }
  if (op.operationName) parts.push(`operationName: ${jsValue(op.operationName)}`);
  out.push(
    '',
    `const response = await fetch(${jsValue(op.url)}, {`,
    '  method: "POST",',
    `  headers: ${indentRest(jsValue(headers), 2)},`,
    `  body: JSON.stringify({ ${parts.join(', ')} }),`,
    '});',
    'console.log(JSON.stringify(await response.json(), null, 2));',
  );
  return `${out.join('\n')}\n`;
}

/** Python 3 with requests (`pip install requests`). */
export function pythonSnippet(op) {
  const headers = Object.fromEntries(mergeHeaders(op));
  const out = ['import json', '', 'import requests', '', `query = ${pyTripleQuoted(op.query ?? '')}`];
  const body = ['    "query": query,'];
  if (op.variables !== undefined && op.variables !== null) {
    out.push(`variables = ${pyLiteral(op.variables)}`);
    body.push('    "variables": variables,');
  }
  if (op.operationName) body.push(`    "operationName": ${pyString(op.operationName)},`);
  out.push(
    `headers = ${pyLiteral(headers)}`,
    '',
    'response = requests.post(',
    `    ${pyString(op.url)},`,
    '    headers=headers,',
    `    json={\n    ${body.join('\n    ')}\n    },`,
    '    timeout=30,',
    ')',
    'print(json.dumps(response.json(), indent=2))',
  );
  return `${out.join('\n')}\n`;
}

export const LANGUAGES = [
  { id: 'curl', label: 'curl', generate: curlSnippet },
  { id: 'javascript', label: 'JavaScript (fetch)', generate: fetchSnippet },
  { id: 'python', label: 'Python (requests)', generate: pythonSnippet },
];

/**
 * All three snippets for the operation as the editors hold it.
 *
 * @param {object} input
 * @param {string} input.url            the GraphQL endpoint, e.g. `${location.origin}/graphql`
 * @param {string} input.query          the query editor's text
 * @param {string} [input.variablesText] the variables editor's text (JSON object or blank)
 * @param {string} [input.headersText]   the headers editor's text (JSON object or blank)
 * @param {string} [input.operationName] the operation to run when the document has several
 * @param {string} [input.token]         the bare token (sent as `Authorization: Bearer …`)
 * @returns {{ snippets: {id: string, label: string, code: string}[] }} or throws on bad JSON
 */
export function exportOperation({ url, query, variablesText, headersText, operationName, token }) {
  const variables = parseJsonObject(variablesText, 'variables');
  const headers = parseJsonObject(headersText, 'headers');
  const op = { url, query, variables, headers, operationName: operationName || undefined, token };
  return { snippets: LANGUAGES.map(({ id, label, generate }) => ({ id, label, code: generate(op) })) };
}
