#!/usr/bin/env node
// Validates every sample operation of the playground against the server's schema
// (`schema.graphql` at the repository root, which a test keeps equal to the served schema):
// each must parse, pass GraphQL validation, and carry variables that are valid JSON covering
// its required variables.
//
//   node playground/e2e/samples.mjs
//
// Exits 0 and prints "samples: N valid" on success; 1 with every problem otherwise.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, parse, validate, Kind } from 'graphql';

import { SAMPLES, DEFAULT_TABS } from '../src/samples.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const schema = buildSchema(readFileSync(path.join(HERE, '..', '..', 'schema.graphql'), 'utf8'));

const problems = [];
const names = new Set();
for (const sample of SAMPLES) {
  const where = `sample ${sample.name}`;
  if (names.has(sample.name)) problems.push(`${where}: the name is used twice`);
  names.add(sample.name);
  let doc;
  try {
    doc = parse(sample.query);
  } catch (e) {
    problems.push(`${where}: ${e.message}`);
    continue;
  }
  for (const error of validate(schema, doc)) problems.push(`${where}: ${error.message}`);
  let variables = {};
  if (sample.variables != null) {
    try {
      variables = JSON.parse(sample.variables);
    } catch (e) {
      problems.push(`${where}: variables are not JSON: ${e.message}`);
    }
  }
  for (const def of doc.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION) continue;
    for (const v of def.variableDefinitions ?? []) {
      const required = v.type.kind === Kind.NON_NULL_TYPE && !v.defaultValue;
      if (required && !(v.variable.name.value in variables)) {
        problems.push(`${where}: no value for the required variable $${v.variable.name.value}`);
      }
    }
  }
}
if (DEFAULT_TABS.length === 0) problems.push('no default tabs');

if (problems.length) {
  for (const p of problems) console.error(`FAIL: ${p}`);
  process.exit(1);
}
console.log(`samples: ${SAMPLES.length} valid`);
