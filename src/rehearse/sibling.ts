import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIssuer } from '../issuer/index.ts';
import type { IssuerOptions, RunningIssuer } from '../issuer/types.ts';
import type { DrillContext } from './drill.ts';

/** Why a sibling cannot be had, or undefined: the deployment's JWT issuer is the embedded one of this config. */
export function siblingUnavailable(ctx: DrillContext): string | undefined {
  const as = ctx.config.authorizationServer;
  return as === undefined || ctx.issuer === undefined || as.issuer !== ctx.issuer.issuer
    ? 'not applicable: needs the deployment\'s issuer to be the embedded one (authorizationServer:), whose keys the drill can use'
    : undefined;
}

/**
 * Runs `use` against a sibling of the embedded issuer: same issuer URL, a copy of its keys file (so
 * the gateway accepts what it signs), on an ephemeral loopback port, with `overrides` (a setting the
 * live deployment must not change, e.g. a 1-second lifetime). The copy holds the issuer's private
 * keys: it lives only as long as the drill.
 */
export async function withSibling<T>(ctx: DrillContext, overrides: Partial<IssuerOptions>, use: (sibling: RunningIssuer) => Promise<T>): Promise<T> {
  const as = ctx.config.authorizationServer as IssuerOptions;
  const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-rehearse-'));
  try {
    const keysFile = join(dir, 'keys.json');
    copyFileSync(as.keysFile, keysFile);
    const sibling = await startIssuer({ ...as, host: '127.0.0.1', port: 0, keysFile, registration: {}, clients: [], federation: undefined, mtls: undefined, ...overrides });
    try {
      return await use(sibling);
    } finally {
      await sibling.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
