#!/usr/bin/env node
'use strict';
// Validate an AsyncAPI document and, when it is valid, render it as a static HTML page that works offline:
// <out>/index.html embeds the spec; the AsyncAPI React component's standalone bundle and stylesheet are
// copied next to it (js/, css/), so the page needs no CDN and no network.
// Usage: node render.js <spec file> <output dir>
// Prints {"valid", "diagnostics", "index"} as JSON; exit code 0: rendered, 1: invalid spec, 2: usage or crash.
const fs = require('fs');
const path = require('path');
const { checkSpec, run } = require('./spec_check');

function componentFile(rel) {
  return path.join(path.dirname(require.resolve('@asyncapi/react-component/package.json')), rel);
}

function escapeHtml(s) {
  const map = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  return String(s).replace(/[&<>"']/g, (c) => map[c]);
}

// JSON that is safe inside a <script> element (no "</script>", no "<!--").
function scriptJson(value) {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function page(title, specText) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(title)}</title>
  <link rel="stylesheet" href="css/asyncapi.min.css">
</head>
<body>
  <div id="asyncapi"><noscript>This page needs JavaScript to show the AsyncAPI documentation.</noscript></div>
  <script src="js/asyncapi-standalone.js"></script>
  <script>
    AsyncApiStandalone.render({
      schema: ${scriptJson(specText)},
      config: { show: { sidebar: true, info: true, servers: true, operations: true, messages: true, schemas: true, errors: true } },
    }, document.getElementById('asyncapi'));
  </script>
</body>
</html>
`;
}

run(async (argv) => {
  if (argv.length !== 2) {
    process.stderr.write('usage: node render.js <asyncapi spec file> <output dir>\n');
    return 2;
  }
  const outDir = path.resolve(argv[1]);
  const { text, document, valid, diagnostics } = await checkSpec(argv[0]);
  let index = null;
  if (valid) {
    fs.mkdirSync(path.join(outDir, 'js'), { recursive: true });
    fs.mkdirSync(path.join(outDir, 'css'), { recursive: true });
    fs.copyFileSync(componentFile('browser/standalone/index.js'), path.join(outDir, 'js', 'asyncapi-standalone.js'));
    fs.copyFileSync(componentFile('styles/default.min.css'), path.join(outDir, 'css', 'asyncapi.min.css'));
    index = path.join(outDir, 'index.html');
    fs.writeFileSync(index, page(document.info().title(), text));
  }
  process.stdout.write(JSON.stringify({ valid, diagnostics, index }) + '\n');
  return valid ? 0 : 1;
});
