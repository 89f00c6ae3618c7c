#!/usr/bin/env node
// Tests the playground's code export (src/export.js) in node, without a browser, by running the
// snippets it prints:
//
// - curl: the snippet runs under `/bin/sh -c` with `curl` replaced by a shell function that
//   prints its argv; the URL, the headers and the --data-raw body must be exactly the request.
// - JavaScript: the snippet runs in node as an ES module with a stubbed `fetch` that records
//   its arguments.
// - Python: the snippet runs with python3 and a fake `requests` module (on PYTHONPATH) whose
//   `post` records its arguments.
//
// Then, against a local HTTP server that records what it receives, the same snippets run for
// real: curl (when installed), node's fetch, and Python requests (when importable); the body
// the server gets must parse to the same JSON and carry the same headers.
//
//   node playground/e2e/export.mjs
//
// Prints "export: N passed, 0 failed" and exits 0, or lists the failures and exits 1.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import {
  curlSnippet,
  exportOperation,
  fetchSnippet,
  mergeHeaders,
  parseJsonObject,
  pythonSnippet,
  requestBody,
  shellQuote,
} from '../src/export.js';

const TMP = mkdtempSync(path.join(os.tmpdir(), 'gantry-export-'));
let passed = 0;
const failures = [];

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
  } catch (e) {
    failures.push(`${name}: ${e.message}`);
  }
}

/** Runs a program with input on stdin-less argv; resolves with { status, stdout, stderr }. */
function run(cmd, args, { env, timeoutMs = 15_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

function expectOk(result, what) {
  if (result.status !== 0) {
    throw new Error(`${what} exited ${result.status}: ${result.stderr.slice(0, 2000)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The operations under test.

const NASTY_QUERY = [
  '# It\'s a "test": $id, ${notInterpolated}, `backticks`, \\backslash\\n and \'\\\'\'',
  'query Nasty($id: ID!, $text: String = "caf\u00e9 \u2603 \ud83d\ude80 \u4e2d\u6587", $n: Int) {',
  '  apiKey(id: $id) { id name }',
  '  # tab\there, CRLF next\r',
  '  eventTypes(category: "a \\"quoted\\" \\\\ value \\u00e9") { name }',
  '  # block: """ not closed here; $(echo pwned) `echo pwned` $HOME ${HOME}',
  '  # controls: \u0001\u007f and separators \u2028 \u2029 and a BOM \ufeff',
  '}',
  '',
].join('\n');

const CASES = [
  {
    name: 'query with quotes, newlines, CR, unicode, $ and variables + Authorization',
    op: {
      url: 'http://127.0.0.1:8080/graphql',
      query: NASTY_QUERY,
      variables: {
        id: "key_'quoted' \"double\" $HOME ${HOME} `tick`",
        text: 'line1\nline2\r\n\ttab \u00e9 \ud83d\ude80 \u2028 \\ back',
        n: 42,
        f: -1.5e-7,
        big: 12345678901,
        flag: true,
        off: false,
        nothing: null,
        list: ['a', 1, null, { nested: ["it's"] }],
        empty: {},
        emptyList: [],
        '$weird key\'s "name"': 'v',
      },
      operationName: 'Nasty',
      token: 'gsk_test_AbC$1\'"',
      headers: { 'X-Trace-Id': "it's $(date) \"now\"", 'X-Unicode': 'caf\u00e9' },
    },
  },
  {
    name: 'bare query: no variables, no headers, no token',
    op: { url: 'https://gantry.example.com/graphql', query: '{ viewer { id } }' },
  },
  {
    name: 'headers pane overrides Content-Type and Authorization (case-insensitive)',
    op: {
      url: 'http://localhost:18700/graphql',
      query: 'mutation M($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }',
      variables: { input: { name: 'CI', scopes: ['keys:read'], environment: 'TEST' } },
      token: 'from-the-token-field',
      headers: { authorization: 'Bearer from-the-headers-pane', 'content-type': 'application/json; charset=utf-8' },
    },
  },
  {
    name: 'lone surrogates and a trailing quote/backslash',
    op: {
      url: 'http://127.0.0.1:1/graphql',
      query: 'query Q { viewer { id } } # lone \ud800 and \udc00 then "\\',
      variables: { s: 'lone \udbff end"', t: '\\' },
      token: 'k',
    },
  },
];

/** The request every snippet must send for `op`. */
function expected(op) {
  return {
    url: op.url,
    body: requestBody(op),
    bodyText: JSON.stringify(requestBody(op)),
    headers: Object.fromEntries(mergeHeaders(op)),
  };
}

// ---------------------------------------------------------------------------------------------
// Stubbed runs.

/** curl under /bin/sh with a shell function printing argv NUL-separated. */
async function curlStub(op) {
  const script = `curl() { printf '%s\\0' "$@"; }\n${curlSnippet(op)}`;
  const r = await run('/bin/sh', ['-c', script], { env: { HOME: '/should-not-appear' } });
  expectOk(r, 'sh');
  const argv = r.stdout.toString('utf8').split('\0');
  argv.pop(); // after the last NUL
  const [url, ...rest] = argv;
  const headers = {};
  let method = null;
  let data = null;
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i], rest[i + 1]];
    if (flag === '--request') method = value;
    else if (flag === '--header') {
      const at = value.indexOf(': ');
      headers[value.slice(0, at)] = value.slice(at + 2);
    } else if (flag === '--data-raw') data = value;
    else throw new Error(`unexpected curl argument ${JSON.stringify(flag)}`);
  }
  return { url, method, headers, data };
}

/** The JS snippet in node as an ES module, with fetch stubbed. */
async function fetchStub(op) {
  const capture = path.join(TMP, `fetch-${Math.random().toString(36).slice(2)}.json`);
  const file = path.join(TMP, `snippet-${Math.random().toString(36).slice(2)}.mjs`);
  const stub = `import { writeFileSync as __w } from 'node:fs';
globalThis.fetch = async (url, init) => {
  __w(${JSON.stringify(capture)}, JSON.stringify({ url, init }));
  return { status: 200, json: async () => ({ data: { stubbed: true } }) };
};
`;
  writeFileSync(file, stub + fetchSnippet(op), 'utf8');
  const r = await run(process.execPath, [file]);
  expectOk(r, 'node');
  if (!r.stdout.toString('utf8').includes('"stubbed": true')) throw new Error('the snippet did not print the response');
  return JSON.parse(readFileSync(capture, 'utf8'));
}

/** The Python snippet with a fake `requests` module first on PYTHONPATH. */
const FAKE_REQUESTS_DIR = path.join(TMP, 'fake-requests');
spawnSync('mkdir', ['-p', FAKE_REQUESTS_DIR]);
writeFileSync(
  path.join(FAKE_REQUESTS_DIR, 'requests.py'),
  `import json as _json
import os as _os


class _Response:
    status_code = 200

    def json(self):
        return {"data": {"stubbed": True}}

    def raise_for_status(self):
        pass


def post(url, *args, **kwargs):
    with open(_os.environ["CAPTURE_FILE"], "w") as f:
        _json.dump({"url": url, "args": list(args), "kwargs": kwargs}, f)
    return _Response()
`,
);

async function pythonStub(op) {
  const capture = path.join(TMP, `py-${Math.random().toString(36).slice(2)}.json`);
  const file = path.join(TMP, `snippet-${Math.random().toString(36).slice(2)}.py`);
  writeFileSync(file, pythonSnippet(op), 'utf8');
  const r = await run('python3', [file], { env: { PYTHONPATH: FAKE_REQUESTS_DIR, CAPTURE_FILE: capture } });
  expectOk(r, 'python3');
  if (!r.stdout.toString('utf8').includes('"stubbed": true')) throw new Error('the snippet did not print the response');
  return JSON.parse(readFileSync(capture, 'utf8'));
}

// ---------------------------------------------------------------------------------------------
// Real runs against a local server that records the request.

const received = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    received.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ data: { received: true } }));
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const LIVE_URL = `http://127.0.0.1:${server.address().port}/graphql`;

const hasCurl = spawnSync('curl', ['--version']).status === 0;
const hasRequests = spawnSync('python3', ['-c', 'import requests']).status === 0;

/** Checks what the server received against the expected request (headers by lower-case name). */
function checkReceived(got, want) {
  assert.equal(got.method, 'POST');
  assert.equal(got.url, '/graphql');
  assert.deepStrictEqual(JSON.parse(got.body), want.body);
  for (const [name, value] of Object.entries(want.headers)) {
    // Non-ASCII header values have no single encoding: curl sends UTF-8 bytes, fetch and
    // requests send Latin-1; node's server reads them as Latin-1. Accept either.
    const raw = got.headers[name.toLowerCase()];
    const asUtf8 = raw === undefined ? raw : Buffer.from(raw, 'latin1').toString('utf8');
    assert.ok(raw === value || asUtf8 === value, `header ${name}: got ${JSON.stringify(raw)}`);
  }
}

async function live(kind, op) {
  received.length = 0;
  const liveOp = { ...op, url: LIVE_URL };
  let r;
  if (kind === 'curl') {
    r = await run('/bin/sh', ['-c', curlSnippet(liveOp).replace(/^curl /, 'curl --silent --show-error ')]);
  } else if (kind === 'javascript') {
    const file = path.join(TMP, `live-${Math.random().toString(36).slice(2)}.mjs`);
    writeFileSync(file, fetchSnippet(liveOp), 'utf8');
    r = await run(process.execPath, [file]);
  } else {
    const file = path.join(TMP, `live-${Math.random().toString(36).slice(2)}.py`);
    writeFileSync(file, pythonSnippet(liveOp), 'utf8');
    r = await run('python3', [file]);
  }
  expectOk(r, kind);
  assert.ok(r.stdout.toString('utf8').includes('received'), `${kind} printed ${r.stdout}`);
  assert.equal(received.length, 1, 'exactly one request');
  checkReceived(received[0], expected(liveOp));
  if (kind === 'curl') assert.equal(received[0].body, expected(liveOp).bodyText, 'curl sends the body verbatim');
}

// ---------------------------------------------------------------------------------------------

for (const { name, op } of CASES) {
  const want = expected(op);

  await check(`${name} / curl`, async () => {
    const got = await curlStub(op);
    assert.equal(got.url, want.url);
    assert.equal(got.method, 'POST');
    assert.deepStrictEqual(got.headers, want.headers);
    assert.equal(got.data, want.bodyText, 'the --data-raw body is exactly the JSON request body');
    assert.deepStrictEqual(JSON.parse(got.data), want.body);
  });

  await check(`${name} / javascript`, async () => {
    const got = await fetchStub(op);
    assert.equal(got.url, want.url);
    assert.equal(got.init.method, 'POST');
    assert.deepStrictEqual(got.init.headers, want.headers);
    assert.equal(got.init.body, want.bodyText, 'fetch body is exactly the JSON request body');
  });

  await check(`${name} / python`, async () => {
    const got = await pythonStub(op);
    assert.equal(got.url, want.url);
    assert.deepStrictEqual(got.args, []);
    assert.deepStrictEqual(got.kwargs.headers, want.headers);
    assert.deepStrictEqual(got.kwargs.json, want.body);
    assert.deepStrictEqual(Object.keys(got.kwargs.json), Object.keys(want.body));
  });

  if (hasCurl) await check(`${name} / curl against a local server`, () => live('curl', op));
  await check(`${name} / fetch against a local server`, () => live('javascript', op));
  if (hasRequests) await check(`${name} / requests against a local server`, () => live('python', op));
}

// The pieces the panel relies on.
await check('the nasty query keeps its $ and newlines in every snippet', () => {
  const { snippets } = exportOperation({
    url: 'http://h/graphql',
    query: NASTY_QUERY,
    variablesText: '{"id": "x"}',
    headersText: '{"X-A": "b"}',
    operationName: 'Nasty',
    token: 't',
  });
  assert.deepStrictEqual(snippets.map((s) => s.id), ['curl', 'javascript', 'python']);
  for (const s of snippets) {
    assert.ok(s.code.includes('Authorization'), `${s.id} has the Authorization header`);
    assert.ok(s.code.includes('X-A'), `${s.id} has the pane header`);
    assert.ok(s.code.includes('application/json'), `${s.id} has the content type`);
    assert.ok(s.code.includes('http://h/graphql'), `${s.id} has the URL`);
  }
  // The JS and Python snippets show the query on several lines, not as one escaped line.
  assert.ok(snippets[1].code.includes('query Nasty($id: ID!'), 'readable JS query');
  assert.ok(snippets[2].code.includes('query Nasty($id: ID!'), 'readable Python query');
});
await check('blank editors mean no variables and no extra headers', () => {
  const { snippets } = exportOperation({ url: 'http://h/graphql', query: '{ a }', variablesText: ' \n', headersText: '' });
  assert.ok(!snippets[0].code.includes('variables'));
  assert.ok(!snippets[0].code.includes('Authorization'));
});
await check('bad JSON in the variables or headers is reported, not exported', () => {
  assert.throws(() => exportOperation({ url: 'u', query: '{a}', variablesText: '{nope' }), /variables are not valid JSON/);
  assert.throws(() => exportOperation({ url: 'u', query: '{a}', headersText: '[1]' }), /headers must be a JSON object/);
  assert.equal(parseJsonObject('', 'x'), undefined);
});
await check("shell quoting writes ' as '\\''", () => {
  assert.equal(shellQuote("it's"), "'it'\\''s'");
  assert.equal(shellQuote('$HOME `x` "y"'), '\'$HOME `x` "y"\'');
});

server.close();
rmSync(TMP, { recursive: true, force: true });

for (const f of failures) console.error(`FAIL: ${f}`);
if (!hasCurl) console.log('note: curl not installed; the live curl run was skipped');
if (!hasRequests) console.log('note: python requests not importable; the live requests run was skipped');
console.log(`export: ${passed} passed, ${failures.length} failed`);
process.exit(failures.length ? 1 : 0);
