import { parseArgs } from 'node:util';
import { loadConfig } from './config/compile.ts';
import { ConfigError, formatProblem } from './config/errors.ts';
import { serve } from './serve.ts';
import { addKey, generateKeyFile, listKeys, promoteKey, retireKey } from './identity/keyfile.ts';

const USAGE = `usage:
  mcp-warden serve --config <file>       run the gateway
  mcp-warden validate --config <file>    check config and policy (exit 0 valid, 1 invalid)
  mcp-warden keys generate --out <file> [--alg EdDSA|ES256]   new gateway key file (0600)
  mcp-warden keys add --file <file> [--alg EdDSA|ES256]       publish a new key (does not sign yet)
  mcp-warden keys promote --file <file> --kid <kid>           make that key the signer
  mcp-warden keys retire --file <file> --kid <kid>            remove a key that no longer signs
  mcp-warden keys list --file <file>
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
    case 'keys':
      return keysCommand(rest);
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

async function keysCommand(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({
    args: [...rest],
    options: { out: { type: 'string' }, file: { type: 'string' }, kid: { type: 'string' }, alg: { type: 'string', default: 'EdDSA' } },
    strict: true,
  });
  const alg = values.alg;
  if (alg !== 'EdDSA' && alg !== 'ES256') return usage();
  const file = values.file ?? values.out;
  if (file === undefined) return usage();
  switch (sub) {
    case 'generate':
      process.stdout.write(`wrote ${file} (kid ${await generateKeyFile(file, alg)}, ${alg})\n`);
      return 0;
    case 'add':
      process.stdout.write(`added kid ${await addKey(file, alg)} to ${file} (published, not signing)\n`);
      return 0;
    case 'promote':
    case 'retire':
      if (values.kid === undefined) return usage();
      if (sub === 'promote') promoteKey(file, values.kid);
      else retireKey(file, values.kid);
      process.stdout.write(`${sub}d ${values.kid} in ${file}\n`);
      return 0;
    case 'list':
      for (const k of listKeys(file)) process.stdout.write(`${k.kid} ${k.alg}${k.signing ? ' (signing)' : ''}\n`);
      return 0;
    default:
      return usage();
  }
}
