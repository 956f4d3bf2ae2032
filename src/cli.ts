import { parseArgs } from 'node:util';
import { loadConfig } from './config/compile.ts';
import { ConfigError, formatProblem } from './config/errors.ts';
import { serve } from './serve.ts';
import { parseWorkers } from './workers/listen.ts';
import { probeHealth } from './observe/health.ts';
import { addKey, generateKeyFile, listKeys, promoteKey, retireKey } from './identity/keyfile.ts';
import { checkGatewayKeyFile } from './identity/keys.ts';
import { serveIssuer } from './issuer/serve.ts';
import { rotateIssuerKeys } from './issuer/rotate.ts';
import { evidenceOf, rehearse } from './rehearse/run.ts';
import { writeEvidence } from './rehearse/evidence.ts';
import { revokeAtIssuer } from './issuer/revoke-command.ts';
import { exitCode, formatReport } from './rehearse/report.ts';
import { parseDirectUrls, parseStepUpTool } from './rehearse/options.ts';
import { policyExplain, policyTest } from './policy-test/command.ts';
import { updatePins } from './policy/pins-update.ts';
import { auditCommand } from './observe/audit-command.ts';

const USAGE = `usage:
  mcp-warden serve --config <file> [--workers <N|auto>]
                                         run the gateway (N processes on the traffic port; auto = cores)
  mcp-warden validate --config <file>    check config and policy (exit 0 valid, 1 invalid)
  mcp-warden health --config <file>      ask /healthz on the config's admin listener (exit 0 healthy)
  mcp-warden rehearse --config <file> [--json] [--strict] [--url <gateway base URL>]...
                      [--client-id <id> --client-secret <secret>] [--rotate-cmd <shell command>]
                      [--direct-url <upstream>=<url> ...] [--gateway-key <file>] [--report <file>]
                      [--step-up-tool <upstream>/<tool>] [--no-outage]
                                         drill the failure scenarios; exit 0 only when all pass
  mcp-warden issuer --config <file>      run the embedded authorization server (authorizationServer:);
                                         SIGHUP or a file change reloads it
  mcp-warden revoke --config <file> --client <id> | --subject <sub> | --jti <jti>
                                         publish a revocation on the embedded issuer's SSF stream
  mcp-warden keys rotate --issuer --config <file>             rotate the embedded issuer's keys
  mcp-warden keys generate --out <file> [--alg EdDSA|ES256]   new gateway key file (0600)
  mcp-warden keys add --file <file> [--alg EdDSA|ES256]       publish a new key (does not sign yet)
  mcp-warden keys promote --file <file> --kid <kid>           make that key the signer
  mcp-warden keys retire --file <file> --kid <kid>            remove a key that no longer signs
  mcp-warden keys list --file <file>
  mcp-warden policy test <file> [--config <file>]   run policy test cases; exit 0 when all pass, 1 otherwise
  mcp-warden policy explain --config <file> --claims <json|@file> --call <json|@file> [--upstream <name>]
                                         which entry decides one call, and why
  mcp-warden pins update --config <file> [--upstream <name>]
                                         pin the tool definitions the gateway observed differing
  mcp-warden audit verify <file> [--jwks <file|url>]
                                         check the audit chains in a log (exit 0 intact, 1 tampered)
`;

/** Thin CLI (STYLE rule 13): parse argv, load config, hand over. Returns the exit code, or undefined while serving. */
export async function main(argv: readonly string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serveCommand(rest);
    case 'validate':
      return validateCommand(rest);
    case 'health':
      return healthCommand(rest);
    case 'keys':
      return keysCommand(rest);
    case 'rehearse':
      return rehearseCommand(rest);
    case 'policy':
      return policyCommand(rest);
    case 'pins':
      return pinsCommand(rest);
    case 'issuer':
      return issuerCommand(rest);
    case 'audit':
      return (await auditCommand(rest, (text) => process.stdout.write(text), (text) => process.stderr.write(text))) ?? usage();
    case 'revoke':
      return revokeCommand(rest);
    default:
      return usage();
  }
}

async function serveCommand(rest: readonly string[]): Promise<number | undefined> {
  const { values } = parseArgs({ args: [...rest], options: { config: { type: 'string' }, workers: { type: 'string' } }, strict: true });
  if (values.config === undefined) return usage();
  const workers = values.workers === undefined ? undefined : parseWorkers(values.workers);
  if (workers === undefined && values.workers !== undefined) return usage();
  try {
    await serve(values.config, workers);
  } catch (err) {
    return reportConfigError(err);
  }
  return undefined;
}

async function validateCommand(rest: readonly string[]): Promise<number> {
  const { values } = parseArgs({ args: [...rest], options: { config: { type: 'string' } }, strict: true });
  if (values.config === undefined) return usage();
  try {
    const config = loadConfig(values.config);
    await checkGatewayKeyFile(config.identity.signingKeyFile, config.file, config.identity.signingKeyFileLine);
    for (const w of config.warnings) process.stderr.write(`warning: ${formatProblem(w)}\n`);
    process.stdout.write(`${values.config}: valid (${config.upstreams.length} upstream(s), ${config.issuers.length} issuer(s))\n`);
    return 0;
  } catch (err) {
    return reportConfigError(err);
  }
}

function pinsCommand(rest: readonly string[]): number {
  const [sub, ...args] = rest;
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, upstream: { type: 'string' } }, strict: true });
  if (sub !== 'update' || values.config === undefined) return usage();
  try {
    process.stdout.write(updatePins(loadConfig(values.config), values.upstream));
    return 0;
  } catch (err) {
    return reportConfigError(err);
  }
}

async function issuerCommand(rest: readonly string[]): Promise<number | undefined> {
  const { values } = parseArgs({ args: [...rest], options: { config: { type: 'string' } }, strict: true });
  if (values.config === undefined) return usage();
  try {
    const served = await serveIssuer(values.config, (line) => process.stderr.write(`${line}\n`));
    process.stdout.write(`mcp-warden issuer listening: ${served.issuer.url} (jwks ${served.issuer.jwksUri})${served.issuer.mtlsUrl === undefined ? "" : `, mTLS token endpoint ${served.issuer.mtlsUrl}/token`}\n`);
    const stop = (): void => void served.stop().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    return undefined;
  } catch (err) {
    return reportConfigError(err);
  }
}

async function revokeCommand(rest: readonly string[]): Promise<number> {
  const { values } = parseArgs({ args: [...rest], options: { config: { type: 'string' }, client: { type: 'string' }, subject: { type: 'string' }, jti: { type: 'string' } }, strict: true });
  const named = (['client', 'subject', 'jti'] as const).filter((k) => values[k] !== undefined);
  if (values.config === undefined || named.length !== 1) return usage();
  const key = named[0] as 'client' | 'subject' | 'jti';
  try {
    const jti = await revokeAtIssuer(values.config, { [key]: values[key] as string } as { client: string });
    process.stdout.write(`revoked ${key} ${values[key]}: SET ${jti} published\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) return reportConfigError(err);
    process.stderr.write(`mcp-warden revoke: ${err instanceof Error ? err.message : 'failed'}\n`);
    return 1;
  }
}

async function healthCommand(rest: readonly string[]): Promise<number> {
  const { values } = parseArgs({ args: [...rest], options: { config: { type: 'string' } }, strict: true });
  if (values.config === undefined) return usage();
  try {
    const { ok, detail } = await probeHealth(values.config);
    (ok ? process.stdout : process.stderr).write(`${ok ? 'healthy' : 'unhealthy'}: ${detail}\n`);
    return ok ? 0 : 1;
  } catch (err) {
    return reportConfigError(err);
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
    options: { out: { type: 'string' }, file: { type: 'string' }, kid: { type: 'string' }, alg: { type: 'string', default: 'EdDSA' }, issuer: { type: 'boolean' }, config: { type: 'string' } },
    strict: true,
  });
  if (sub === 'rotate' && values.issuer === true && values.config !== undefined) {
    try {
      const config = loadConfig(values.config);
      if (config.authorizationServer === undefined) throw new ConfigError([{ file: values.config, line: undefined, key: 'authorizationServer', message: 'is required to rotate the embedded issuer keys' }]);
      await rotateIssuerKeys(config.authorizationServer);
      process.stdout.write(`rotated ${config.authorizationServer.keysFile}: the new key is published now and signs after ${config.authorizationServer.rotationGraceSeconds ?? 60} s\n`);
      return 0;
    } catch (err) {
      return reportConfigError(err);
    }
  }
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
      if (sub === 'promote') await promoteKey(file, values.kid);
      else await retireKey(file, values.kid);
      process.stdout.write(`${sub}d ${values.kid} in ${file}\n`);
      return 0;
    case 'list':
      for (const k of listKeys(file)) process.stdout.write(`${k.kid} ${k.alg}${k.signing ? ' (signing)' : ''}\n`);
      return 0;
    default:
      return usage();
  }
}

function policyCommand(args: readonly string[]): number {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: [...rest],
    options: { config: { type: 'string' }, claims: { type: 'string' }, call: { type: 'string' }, upstream: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  try {
    let result;
    if (sub === 'test' && positionals.length === 1) result = policyTest(positionals[0] as string, values.config);
    else if (sub === 'explain' && values.config !== undefined && values.claims !== undefined && values.call !== undefined) result = policyExplain(values.config, values.claims, values.call, values.upstream);
    else return usage();
    process.stdout.write(result.output);
    return result.code;
  } catch (err) {
    return reportConfigError(err);
  }
}

async function rehearseCommand(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      config: { type: 'string' }, json: { type: 'boolean' }, strict: { type: 'boolean' }, url: { type: 'string', multiple: true },
      'client-id': { type: 'string' }, 'client-secret': { type: 'string' }, 'rotate-cmd': { type: 'string' },
      'direct-url': { type: 'string', multiple: true }, 'gateway-key': { type: 'string' }, report: { type: 'string' },
      'step-up-tool': { type: 'string' },
      'no-outage': { type: 'boolean' },
    },
    strict: true,
  });
  if (values.config === undefined) return usage();
  let config;
  try {
    config = loadConfig(values.config);
  } catch (err) {
    return reportConfigError(err);
  }
  const client = values['client-id'] !== undefined && values['client-secret'] !== undefined ? { clientId: values['client-id'], clientSecret: values['client-secret'] } : undefined;
  const directUrls = parseDirectUrls(values['direct-url'] ?? [], config);
  if (typeof directUrls === 'string') {
    process.stderr.write(`${directUrls}\n`);
    return 2;
  }
  const stepUpTool = parseStepUpTool(values['step-up-tool']);
  const options = {
    ...(values.url === undefined || values.url.length === 0 ? {} : { baseUrl: (values.url[0] as string).replace(/\/$/, ''), replicaUrls: values.url.map((u) => u.replace(/\/$/, '')) }),
    ...(client === undefined ? {} : { client }),
    ...(values['rotate-cmd'] === undefined ? {} : { rotateCmd: values['rotate-cmd'] }),
    directUrls,
    ...(values['gateway-key'] === undefined ? {} : { gatewayKeyFile: values['gateway-key'] }),
    ...(stepUpTool === undefined ? {} : { stepUpTool }),
    outage: values['no-outage'] !== true,
  };
  const results = await rehearse(config, options);
  if (values.report !== undefined) {
    const files = writeEvidence(values.report, evidenceOf(config, options, results));
    process.stderr.write(`evidence report: ${files.markdown}, ${files.html}\n`);
  }
  process.stdout.write(values.json === true ? JSON.stringify({ results, exitCode: exitCode(results, values.strict === true) }, null, 2) + '\n' : formatReport(results));
  return exitCode(results, values.strict === true);
}
