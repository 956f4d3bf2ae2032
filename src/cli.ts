import { parseArgs } from 'node:util';
import { loadConfig } from './config/compile.ts';
import { ConfigError, formatProblem } from './config/errors.ts';
import { serve } from './serve.ts';
import { generateGatewayJwk, writeKeyFile } from './identity/keys.ts';

const USAGE = `usage:
  mcp-warden serve --config <file>       run the gateway
  mcp-warden validate --config <file>    check config and policy (exit 0 valid, 1 invalid)
  mcp-warden keys generate --out <file> [--alg EdDSA|ES256]
`;

/** Thin CLI (STYLE rule 13): parse argv, load config, hand over. Returns the exit code, or undefined while serving. */
export async function main(argv: readonly string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } }, strict: true });
      if (values.config === undefined) return usage();
      try {
        await serve(values.config);
      } catch (err) {
        return reportConfigError(err);
      }
      return undefined;
    }
    case 'validate': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } }, strict: true });
      if (values.config === undefined) return usage();
      try {
        const config = loadConfig(values.config);
        for (const w of config.warnings) process.stderr.write(`warning: ${formatProblem(w)}\n`);
        process.stdout.write(`${values.config}: valid (${config.upstreams.length} upstream(s), ${config.issuers.length} issuer(s))\n`);
        return 0;
      } catch (err) {
        return reportConfigError(err);
      }
    }
    case 'keys': {
      const [sub, ...args] = rest;
      const { values } = parseArgs({ args, options: { out: { type: 'string' }, alg: { type: 'string', default: 'EdDSA' } }, strict: true });
      if (sub !== 'generate' || values.out === undefined || (values.alg !== 'EdDSA' && values.alg !== 'ES256')) return usage();
      const jwk = await generateGatewayJwk(values.alg);
      writeKeyFile(values.out, jwk);
      process.stdout.write(`wrote ${values.out} (kid ${jwk.kid}, ${values.alg})\n`);
      return 0;
    }
    default:
      return usage();
  }
}

function usage(): number {
  process.stderr.write(USAGE);
  return 2;
}

function reportConfigError(err: unknown): number {
  if (err instanceof ConfigError) {
    for (const p of err.problems) process.stderr.write(`error: ${formatProblem(p)}\n`);
    return 1;
  }
  throw err;
}
