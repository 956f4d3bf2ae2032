import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startIssuer } from '../issuer/index.ts';
import { IAM, NHI } from './controls.ts';
import type { Drill, DrillContext } from './drill.ts';
import { liveOrSkip } from './gateway-drills.ts';
import { json, mcpCall } from './http.ts';
import { clientCredentials, register } from './tokens.ts';

/**
 * A really expired token: the embedded issuer's keys sign a 1-second token in a sibling issuer
 * (same issuer URL, a copy of its keys file), which is then waited out past the clock skew.
 */
export const expiredToken: Drill = {
  id: 'expired-token', title: 'expired token', controls: [NHI, IAM],
  async run(ctx) {
    const as = ctx.config.authorizationServer;
    const issuer = ctx.issuer;
    if (as === undefined || issuer === undefined || as.issuer !== issuer.issuer) {
      return ctx.record(this.title, 'skip', 'needs the embedded issuer: only its keys can sign a token that really expires');
    }
    const a = ctx.upstream;
    // The copy holds the issuer's private signing keys: it lives only as long as the drill.
    const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-rehearse-'));
    const removeCopy = (): void => rmSync(dir, { recursive: true, force: true });
    const keysFile = join(dir, 'keys.json');
    let sibling: Awaited<ReturnType<typeof startIssuer>>;
    try {
      copyFileSync(as.keysFile, keysFile);
      sibling = await startIssuer({ ...as, host: '127.0.0.1', port: 0, keysFile, accessTokenTtlSeconds: 1, registration: {}, clients: [], mtls: undefined });
    } catch (err) {
      removeCopy();
      return ctx.record(this.title, 'fail', (err as Error).message);
    }
    try {
      const client = await register(`${sibling.listenUrl}/reg`, a.scopes, undefined);
      if (typeof client === 'string') throw new Error(client);
      const short = await clientCredentials(`${sibling.listenUrl}/token`, client, a.audience, a.scopes);
      const waitMs = ((decodeJwt(short).exp ?? 0) + issuer.clockSkewSeconds + 1) * 1000 - Date.now();
      await new Promise((r) => setTimeout(r, Math.max(0, waitMs)));
      const r = await mcpCall(ctx.urlOf(a), short);
      const reason = json<{ reason?: string }>(r)?.reason;
      ctx.record(this.title, r.status === 401 && reason === 'token_expired' ? 'pass' : 'fail', `${r.status} ${reason ?? ''} after waiting ${Math.round(waitMs / 1000)} s`);
    } catch (err) {
      ctx.record(this.title, 'fail', (err as Error).message);
    } finally {
      await sibling.close();
      removeCopy();
    }
  },
};

/** Rotate the issuer's keys while calling continuously: no valid call may fail, the new key must verify. */
export const keyRotation: Drill = {
  id: 'key-rotation', title: 'key rotation', controls: [NHI, IAM],
  async run(ctx) {
    if (ctx.target.rotate === undefined) return ctx.record(this.title, 'skip', 'needs the embedded issuer or --rotate-cmd');
    const live = await liveOrSkip(ctx, this.title);
    if (live !== undefined) await rotate(ctx, ctx.target.rotate, () => live.token(ctx.upstream), this.title);
  },
};

async function rotate(ctx: DrillContext, rotateKeys: () => Promise<void>, fresh: () => Promise<string>, name: string): Promise<void> {
  const before = decodeProtectedHeader(await fresh()).kid;
  await rotateKeys();
  const failures: string[] = [];
  let calls = 0;
  let after = before;
  const deadline = Date.now() + 90_000;
  while (after === before && Date.now() < deadline) {
    const t = await fresh();
    after = decodeProtectedHeader(t).kid;
    const r = await mcpCall(ctx.urlOf(ctx.upstream), t);
    calls++;
    if (r.status !== 200) failures.push(`${r.status} (kid ${after})`);
    await new Promise((res) => setTimeout(res, 500));
  }
  if (after === before) return ctx.record(name, 'fail', `the issuer still signs with ${before} after 90 s`);
  ctx.record(name, failures.length === 0 ? 'pass' : 'fail', `${calls} calls during rotation ${before} → ${after}, ${failures.length} failed${failures.length > 0 ? `: ${failures.slice(0, 3).join(', ')}` : ''}; upstream ${ctx.upstream.name}`);
}
