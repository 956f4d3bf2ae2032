#!/usr/bin/env node
// Node >= 22.18 runs the TypeScript sources directly (type stripping); no build step.
import { main } from '../src/cli.ts';

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`mcp-warden: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
