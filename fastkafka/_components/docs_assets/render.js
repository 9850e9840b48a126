#!/usr/bin/env node
// Render an AsyncAPI document to a static HTML page that works offline.
// Usage: node render.js <spec file> <output dir>
// Writes <out>/index.html with the spec embedded, and copies the AsyncAPI React component's standalone
// bundle and stylesheet next to it (js/, css/): no CDN, no network at view time.
'use strict';
const fs = require('fs');
const path = require('path');
const { Parser } = require('@asyncapi/parser');

function componentFile(rel) {
  const pkg = require.resolve('@asyncapi/react-component/package.json');
  return path.join(path.dirname(pkg), rel);
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

// JSON that is safe inside a <script> element: no "</script", no "<!--".
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

async function main(argv) {
  if (argv.length !== 2) {
    process.stderr.write('usage: node render.js <asyncapi spec file> <output dir>\n');
    return 2;
  }
  const [specFile, outDir] = argv.map((p) => path.resolve(p));
  const specText = fs.readFileSync(specFile, 'utf8');
  const { document, diagnostics } = await new Parser().parse(specText, { source: specFile });
  if (document === undefined) {
    const errors = diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join('.')}: ${d.message}`);
    process.stderr.write(`the AsyncAPI document is not valid:\n${errors.join('\n')}\n`);
    return 1;
  }
  fs.mkdirSync(path.join(outDir, 'js'), { recursive: true });
  fs.mkdirSync(path.join(outDir, 'css'), { recursive: true });
  fs.copyFileSync(componentFile('browser/standalone/index.js'), path.join(outDir, 'js', 'asyncapi-standalone.js'));
  fs.copyFileSync(componentFile('styles/default.min.css'), path.join(outDir, 'css', 'asyncapi.min.css'));
  fs.writeFileSync(path.join(outDir, 'index.html'), page(document.info().title(), specText));
  process.stdout.write(JSON.stringify({ index: path.join(outDir, 'index.html') }) + '\n');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(String((err && err.stack) || err) + '\n'); process.exitCode = 2; },
);
