'use strict';
// Shared by validate.js and render.js: parse an AsyncAPI file with the official parser and
// turn its diagnostics into plain JSON records.
const fs = require('fs');
const path = require('path');
const { Parser } = require('@asyncapi/parser');

const SEVERITY = { 0: 'error', 1: 'warning', 2: 'information', 3: 'hint' };

async function checkSpec(file) {
  const source = path.resolve(file);
  const text = fs.readFileSync(source, 'utf8');
  const { document, diagnostics } = await new Parser().parse(text, { source });
  const records = diagnostics.map((d) => ({
    severity: SEVERITY[d.severity] || String(d.severity),
    code: String(d.code),
    message: d.message,
    path: d.path.map(String),
  }));
  const valid = document !== undefined && !records.some((d) => d.severity === 'error');
  return { text, document, valid, diagnostics: records };
}

// Run `main(argv)` and turn its result into the exit code; crashes print a stack and exit with 2.
function run(main) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err) => { process.stderr.write(String((err && err.stack) || err) + '\n'); process.exitCode = 2; },
  );
}

module.exports = { checkSpec, run };
