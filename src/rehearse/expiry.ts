import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { IssuerConfig } from '../config/compile.ts';
import { IAM, NHI } from './controls.ts';
import type { Drill, DrillContext } from './drill.ts';
import { liveOrSkip } from './gateway-drills.ts';
import { json, mcpCall } from './http.ts';
import { siblingUnavailable, withSibling } from './sibling.ts';
import { clientCredentials, register } from './tokens.ts';

/** A really expired token: a 1-second token from a sibling of the embedded issuer, waited out past the skew. */
export const expiredToken: Drill = {
  id: 'expired-token', title: 'expired token', controls: [NHI, IAM],
  async run(ctx) {
    if (siblingUnavailable(ctx) !== undefined) return ctx.record(this.title, 'skip', 'needs the embedded issuer: only its keys can sign a token that really expires');
    const a = ctx.upstream;
    const skew = (ctx.issuer as IssuerConfig).clockSkewSeconds;
    const detail = await withSibling(ctx, { accessTokenTtlSeconds: 1 }, async (sibling) => {
      const client = await register(`${sibling.listenUrl}/reg`, a.scopes, undefined);
      if (typeof client === 'string') throw new Error(client);
      const short = await clientCredentials(`${sibling.listenUrl}/token`, client, a.audience, a.scopes);
      const waitMs = ((decodeJwt(short).exp ?? 0) + skew + 1) * 1000 - Date.now();
      await new Promise((r) => setTimeout(r, Math.max(0, waitMs)));
      const r = await mcpCall(ctx.urlOf(a), short);
      const reason = json<{ reason?: string }>(r)?.reason;
      return { ok: r.status === 401 && reason === 'token_expired', text: `${r.status} ${reason ?? ''} after waiting ${Math.round(waitMs / 1000)} s` };
    });
    ctx.record(this.title, detail.ok ? 'pass' : 'fail', detail.text);
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
