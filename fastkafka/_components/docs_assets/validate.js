#!/usr/bin/env node
// Validate an AsyncAPI document with the official parser; print its diagnostics as JSON on stdout.
// Usage: node validate.js <spec.yml|spec.json>   exit 0 valid (warnings allowed), 1 errors, 2 usage/IO problem
'use strict';
const fs = require('fs');
const path = require('path');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');

const SEVERITY = { 0: 'error', 1: 'warning', 2: 'information', 3: 'hint' };

async function main(argv) {
  if (argv.length !== 1) {
    process.stderr.write('usage: node validate.js <asyncapi spec file>\n');
    return 2;
  }
  const file = path.resolve(argv[0]);
  const text = fs.readFileSync(file, 'utf8');
  const { document, diagnostics } = await new Parser().parse(text, { source: file });
  const out = diagnostics.map((d) => ({
    severity: SEVERITY[d.severity] || String(d.severity),
    code: String(d.code),
    message: d.message,
    path: d.path.map(String),
  }));
  const errors = out.filter((d) => d.severity === 'error').length;
  process.stdout.write(JSON.stringify({ valid: document !== undefined && errors === 0, diagnostics: out }) + '\n');
  return errors === 0 && document !== undefined ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(String(err && err.stack || err) + '\n'); process.exitCode = 2; },
);
