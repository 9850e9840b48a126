#!/usr/bin/env node
'use strict';
// Validate an AsyncAPI document with the official parser; print {"valid", "diagnostics"} as JSON.
// Usage: node validate.js <spec file>    exit code 0: valid (warnings allowed), 1: errors, 2: usage or crash
const { checkSpec, run } = require('./spec_check');

run(async (argv) => {
  if (argv.length !== 1) {
    process.stderr.write('usage: node validate.js <asyncapi spec file>\n');
    return 2;
  }
  const { valid, diagnostics } = await checkSpec(argv[0]);
  process.stdout.write(JSON.stringify({ valid, diagnostics }) + '\n');
  return valid ? 0 : 1;
});
