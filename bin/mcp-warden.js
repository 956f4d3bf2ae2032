#!/usr/bin/env node
// In a checkout (and the Docker image) Node 24 runs the TypeScript sources directly. Installed as a
// package, Node will not strip types under node_modules: there the compiled dist/ (built by prepack) runs.
const installed = import.meta.url.includes('/node_modules/');
const { main } = await import(installed ? '../dist/cli.js' : '../src/cli.ts');

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`mcp-warden: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
