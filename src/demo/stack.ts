import type { Config } from '../config/compile.ts';
import { startIssuer } from '../issuer/index.ts';
import type { RunningIssuer } from '../issuer/types.ts';
import type { Logger } from '../observe/log.ts';
import { startFromFile, type ServedGateway } from '../serve.ts';
import { loadConfig } from '../config/compile.ts';
import { ConfigError, formatProblem } from '../config/errors.ts';
import { issuerOptionsFrom } from '../issuer/serve.ts';
import { startDemoServer } from './server.ts';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writePrivateFile } from '../lib/private-file.ts';

export interface DemoStack {
  readonly config: Config;
  readonly issuer: RunningIssuer;
  readonly gateway: ServedGateway;
  readonly upstreamUrl: string;
  /** SIGHUP: the gateway and the issuer re-read the file; each keeps its running config when it is invalid. */
  reload(): Promise<readonly string[]>;
  close(): Promise<void>;
}

/** The demo's SSF poll and admin secrets: random, 0600, written once (a real deployment brings its own). */
async function demoSecrets(config: Config): Promise<void> {
  const ssf = config.authorizationServer?.ssf;
  if (ssf === undefined) return;
  for (const file of new Set([ssf.pollSecretFile, ssf.adminSecretFile])) {
    if (!existsSync(file)) await writePrivateFile(file, randomBytes(32).toString('base64url'), { exclusive: true }).catch(() => undefined);
  }
}

/** Issuer first (the gateway discovers its keys), then the demo MCP server, then the gateway. */
export async function startDemoStack(configFile: string, logger: Logger): Promise<DemoStack> {
  const config = loadConfig(configFile);
  if (config.authorizationServer === undefined) throw new Error(`${configFile}: the demo needs an authorizationServer section`);
  const upstream = config.upstreams[0];
  if (upstream === undefined) throw new Error(`${configFile}: no upstream`);
  await demoSecrets(config);
  const issuer = await startIssuer(config.authorizationServer);
  const closers: (() => Promise<void>)[] = [() => issuer.close()];
  try {
    // One demo server answers every upstream of the demo config that points at its address.
    const mine = config.upstreams.filter((u) => u.target.host === upstream.target.host);
    const demo = await startDemoServer({
      host: upstream.target.hostname,
      port: Number(upstream.target.port),
      gatewayJwksUrl: `${config.publicUrl.origin}/.well-known/jwks.json`,
      gatewayIssuer: config.publicUrl.origin,
      endpoints: mine.map((u) => ({ path: u.target.pathname, audience: u.audience })),
    });
    closers.unshift(() => demo.close());
    const gateway = await startFromFile(configFile, logger);
    closers.unshift(() => gateway.shutdown(2_000));
    return {
      config, issuer, gateway, upstreamUrl: demo.url,
      async reload() {
        const problems: string[] = [];
        if (!(await gateway.reloadFromFile())) problems.push('gateway: not reloaded (see the log)');
        try {
          await issuer.reload(issuerOptionsFrom(configFile));
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          problems.push(...err.problems.map((p) => `issuer: ${formatProblem(p)}`));
        }
        return problems;
      },
      async close() {
        for (const close of closers) await close().catch(() => undefined);
      },
    };
  } catch (err) {
    for (const close of closers) await close().catch(() => undefined);
    throw err;
  }
}
