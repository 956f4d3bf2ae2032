// `mcp-warden revoke --config <file> --client <id> | --subject <sub> | --jti <jti>`: asks the embedded
// issuer (authenticated with its SSF admin secret) to publish the revocation on its SSF stream.
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { loadConfig, type Config } from '../config/compile.ts';
import { ConfigError } from '../config/errors.ts';
import { SSF_REVOKE_PATH, type RevokeTarget } from './ssf.ts';

export function revokeAtIssuer(file: string, target: RevokeTarget): Promise<string> {
  return revokeWith(loadConfig(file), target);
}

/** The same, for a loaded config (the rehearse drill); resolves with the published SET's jti. */
export async function revokeWith(config: Config, target: RevokeTarget): Promise<string> {
  const file = config.file;
  const as = config.authorizationServer;
  if (as?.ssf === undefined) throw new ConfigError([{ file, line: undefined, key: 'authorizationServer.ssf', message: 'is required to revoke through the embedded issuer' }]);
  // The issuer URL, or its own listener when it derives the URL from it (loopback only).
  const base = as.issuer ?? `http://${as.host.includes(':') ? `[${as.host}]` : as.host}:${as.port}`;
  const secret = readFileSync(as.ssf.adminSecretFile, 'utf8').trim();
  const res = await request(new URL(SSF_REVOKE_PATH, base).href, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(target),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const body = (await res.body.json().catch(() => ({}))) as { jti?: unknown; error?: unknown };
  if (res.statusCode !== 200 || typeof body.jti !== 'string') throw new Error(`the issuer refused the revocation (status ${res.statusCode}${typeof body.error === 'string' ? `, ${body.error}` : ''})`);
  return body.jti;
}
