#!/usr/bin/env node
// The `vmigrate` command (package.json "bin", so `npx vmigrate` works): runs the TypeScript CLI through tsx.
require('tsx/cjs');
const { runCli } = require('../cli/main.ts');

runCli(process.argv).then((code) => {
  process.exitCode = code;
});
