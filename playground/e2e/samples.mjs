#!/usr/bin/env node
// Validates every saved-collection entry of the playground (src/samples.js) against the server's
// schema (`schema.graphql` at the repository root, which a test keeps equal to the served schema):
// each must parse and pass GraphQL validation, and its variables must be a JSON object that
// graphql-js coerces without error against the operation's variable definitions (every required
// variable present, every value of the right shape: enums, input objects, lists, scalars;
// DateTime values must be RFC 3339 instants).
//
//   node playground/e2e/samples.mjs
//
// Exits 0 and prints "samples: N valid" on success; 1 with every problem otherwise.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, parse, validate, Kind, GraphQLError } from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';

import { COLLECTIONS, SAMPLES, DEFAULT_TABS } from '../src/samples.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const schema = buildSchema(readFileSync(path.join(HERE, '..', '..', 'schema.graphql'), 'utf8'));

// buildSchema's custom scalars accept anything; make DateTime check its values like the server.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const dateTime = schema.getType('DateTime');
dateTime.parseValue = (value) => {
  if (typeof value !== 'string' || !RFC3339.test(value) || Number.isNaN(Date.parse(value))) {
    throw new GraphQLError(`DateTime must be an RFC 3339 instant, got ${JSON.stringify(value)}`);
  }
  return value;
};

const EXPECTED_COLLECTIONS = ['keys', 'webhooks', 'usage', 'apps', 'billing'];

const problems = [];
const names = new Set();
for (const sample of SAMPLES) {
  const where = `${sample.collection}/${sample.name}`;
  if (!sample.name || !sample.description) problems.push(`${where}: needs a name and a description`);
  if (names.has(sample.name)) problems.push(`${where}: the name is used twice`);
  names.add(sample.name);
  let doc;
  try {
    doc = parse(sample.query);
  } catch (e) {
    problems.push(`${where}: ${e.message}`);
    continue;
  }
  const errors = validate(schema, doc);
  for (const error of errors) problems.push(`${where}: ${error.message}`);
  if (errors.length) continue;

  const operations = doc.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (operations.length !== 1) problems.push(`${where}: has ${operations.length} operations, not 1`);
  if (operations[0]?.name?.value !== sample.name) {
    problems.push(`${where}: the operation is named ${operations[0]?.name?.value ?? '(anonymous)'}`);
  }

  let variables = {};
  if (sample.variables != null) {
    try {
      variables = JSON.parse(sample.variables);
    } catch (e) {
      problems.push(`${where}: variables are not JSON: ${e.message}`);
      continue;
    }
    if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) {
      problems.push(`${where}: variables are not a JSON object`);
      continue;
    }
  }
  for (const op of operations) {
    const declared = new Set((op.variableDefinitions ?? []).map((v) => v.variable.name.value));
    for (const key of Object.keys(variables)) {
      if (!declared.has(key)) problems.push(`${where}: variable "${key}" is not declared by the operation`);
    }
    // The same coercion the server applies: required variables present, values of the right shape.
    const result = getVariableValues(schema, op.variableDefinitions ?? [], variables);
    for (const error of result.errors ?? []) problems.push(`${where}: ${error.message}`);
  }
}

const ids = COLLECTIONS.map((c) => c.id);
if (JSON.stringify(ids) !== JSON.stringify(EXPECTED_COLLECTIONS)) {
  problems.push(`collections are ${ids.join(', ')}; expected ${EXPECTED_COLLECTIONS.join(', ')}`);
}
for (const c of COLLECTIONS) {
  if (c.operations.length < 3) problems.push(`collection ${c.id} has only ${c.operations.length} entries`);
}
if (DEFAULT_TABS.length === 0) problems.push('no default tabs');

if (problems.length) {
  for (const p of problems) console.error(`FAIL: ${p}`);
  process.exit(1);
}
console.log(`samples: ${SAMPLES.length} valid`);
