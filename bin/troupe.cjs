#!/usr/bin/env node
// The `troupe` command as npm installs it. CommonJS in syntax every Node still in use can parse,
// so that an old Node reaches the version check and says what to install instead of failing on a
// syntax error deep inside the CLI.
'use strict';

var minimum = [22, 18, 0];
var current = process.versions.node.split('.').map(Number);

function olderThan(a, b) {
  for (var i = 0; i < 3; i++) {
    if (a[i] !== b[i]) return a[i] < b[i];
  }
  return false;
}

if (olderThan(current, minimum)) {
  process.stderr.write(
    'troupe: Node.js ' + minimum.join('.') + ' or newer is needed (this is ' + process.versions.node + ').\n' +
      'Install Node.js 24 LTS (https://nodejs.org, or `nvm install 24`, or your system\'s package) and run troupe again.\n',
  );
  process.exit(2);
}

var path = require('node:path');
var fs = require('node:fs');
var url = require('node:url');

// An installed package ships only the built CLI. A checkout has the TypeScript sources, which Node
// runs directly (type stripping), so a stale dist/ is never picked up there.
var root = path.join(__dirname, '..');
var source = path.join(root, 'cli', 'main.ts');
var entry = fs.existsSync(source) ? source : path.join(root, 'dist', 'cli', 'main.js');
import(url.pathToFileURL(entry).href).catch(function (error) {
  process.stderr.write('troupe: could not start: ' + (error && error.message ? error.message : String(error)) + '\n');
  process.exit(1);
});
