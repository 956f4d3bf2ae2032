import { randomUUID } from 'node:crypto';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import { AGENTIC, IAM, NHI } from './controls.ts';
import { isLive, type Drill, type DrillContext, type Live } from './drill.ts';
import { challenge, http, json, mcpCall, type Reply } from './http.ts';

/** The token source, or a SKIP line naming why this drill cannot run. */
export async function liveOrSkip(ctx: DrillContext, name: string): Promise<Live | undefined> {
  const live = await ctx.live();
  if (isLive(live)) return live;
  ctx.record(name, 'skip', `no token: ${live.reason}`);
  return undefined;
}

/** RFC 9728 metadata for every upstream: its own resource, an authorization server, header tokens only. */
export const resourceMetadata: Drill = {
  id: 'resource-metadata', title: 'metadata', controls: [IAM],
  async run(ctx) {
    for (const u of ctx.config.upstreams) {
      const prm = await http(ctx.target.baseUrl + u.resourceMetadataPath);
      const doc = json<{ resource?: string; authorization_servers?: string[]; bearer_methods_supported?: string[] }>(prm);
      const name = `metadata ${u.name}`;
      if (prm.status !== 200 || doc === undefined) ctx.record(name, 'fail', `protected resource metadata answered ${prm.status}`);
      else if (doc.resource !== u.audience) ctx.record(name, 'fail', `resource is ${doc.resource}, expected ${u.audience}`);
      else if ((doc.authorization_servers ?? []).length === 0 || JSON.stringify(doc.bearer_methods_supported) !== '["header"]') ctx.record(name, 'fail', 'authorization_servers or bearer_methods_supported missing');
      else ctx.record(name, 'pass', `resource ${doc.resource}`);
    }
  },
};

/** The issuer's RFC 8414 metadata names exactly the configured issuer and publishes signing keys. */
export const issuerMetadata: Drill = {
  id: 'issuer-metadata', title: 'issuer metadata', controls: [IAM],
  async run(ctx) {
    const issuer = ctx.issuer;
    if (issuer === undefined) return ctx.record(this.title, 'skip', `upstream ${ctx.upstream.name} has no JWT issuer`);
    const meta = await ctx.metadata();
    if (meta === undefined) return ctx.record(this.title, 'fail', `no RFC 8414 / OIDC metadata at ${issuer.issuer}`);
    if (meta.issuer !== issuer.issuer) return ctx.record(this.title, 'fail', `metadata issuer ${meta.issuer} ≠ configured ${issuer.issuer}`);
    const keys = json<{ keys?: unknown[] }>(await http(issuer.jwksUri ?? meta.jwks_uri ?? ''))?.keys ?? [];
    ctx.record(this.title, keys.length > 0 ? 'pass' : 'fail', `issuer matches; ${keys.length} signing key(s) published`);
  },
};

/** The given client, or one registered dynamically (RFC 7591) when the issuer offers registration. */
export const registration: Drill = {
  id: 'registration', title: 'registration', controls: [NHI],
  async run(ctx) {
    if (ctx.issuer === undefined) return ctx.record(this.title, 'skip', `upstream ${ctx.upstream.name} has no JWT issuer`);
    const { status, detail } = await ctx.client();
    ctx.record(this.title, status, detail);
  },
};

/** A token for the first upstream; its lifetime is reported (over an hour is a hygiene warning). */
export const issuance: Drill = {
  id: 'issuance', title: 'issuance', controls: [NHI],
  async run(ctx) {
    const live = await ctx.live();
    if (!isLive(live)) return ctx.record(this.title, live.status, live.status === 'skip' ? `${live.reason}: token drills skipped` : live.reason);
    const claims = decodeJwt(live.good);
    const lifetime = (claims.exp ?? 0) - (claims.iat ?? 0);
    ctx.record(this.title, 'pass', `token for ${ctx.upstream.audience}, ${lifetime} s lifetime`);
    if (lifetime > 3_600) ctx.record('hygiene token lifetime', 'warn', `tokens live ${lifetime} s (over an hour)`);
  },
};

export const validCall: Drill = {
  id: 'valid-call', title: 'valid call', controls: [IAM],
  async run(ctx) {
    const live = await liveOrSkip(ctx, this.title);
    if (live === undefined) return;
    const r = await mcpCall(ctx.urlOf(ctx.upstream), live.good);
    ctx.record(this.title, r.status === 200 ? 'pass' : 'fail', `${r.status} from ${ctx.upstream.name}`);
  },
};

/** 401 with the RFC 9728 resource_metadata pointer; error="invalid_token" only when a token was sent (RFC 6750 §3.1). */
async function expect401(ctx: DrillContext, name: string, reply: Promise<Reply>, withError: boolean): Promise<void> {
  const r = await reply;
  const c = challenge(r);
  const ok = r.status === 401 && c.includes('resource_metadata="') && c.includes('error="invalid_token"') === withError;
  ctx.record(name, ok ? 'pass' : 'fail', `${r.status} ${json<{ reason?: string }>(r)?.reason ?? ''}`.trim());
}

export const noToken: Drill = {
  id: 'no-token', title: 'no token', controls: [IAM, AGENTIC],
  async run(ctx) {
    await expect401(ctx, this.title, mcpCall(ctx.urlOf(ctx.upstream), undefined), false);
  },
};

export const audienceMismatch: Drill = {
  id: 'audience-mismatch', title: 'audience mismatch', controls: [AGENTIC, IAM],
  async run(ctx) {
    const b = ctx.config.upstreams[1];
    if (b === undefined) return ctx.record(this.title, 'skip', 'needs a second upstream');
    const live = await liveOrSkip(ctx, this.title);
    if (live !== undefined) await expect401(ctx, this.title, mcpCall(ctx.urlOf(b), live.good), true);
  },
};

export const tamperedSignature: Drill = {
  id: 'tampered-signature', title: 'tampered signature', controls: [IAM],
  async run(ctx) {
    const live = await liveOrSkip(ctx, this.title);
    if (live === undefined) return;
    const [h, p, s] = live.good.split('.') as [string, string, string];
    const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
    await expect401(ctx, this.title, mcpCall(ctx.urlOf(ctx.upstream), `${h}.${p}.${flipped}`), true);
  },
};

export const unknownSigningKey: Drill = {
  id: 'unknown-signing-key', title: 'unknown signing key', controls: [IAM],
  async run(ctx) {
    const live = await liveOrSkip(ctx, this.title);
    if (live === undefined || ctx.issuer === undefined) return;
    const a = ctx.upstream;
    const evil = await generateKeyPair('ES256');
    const forged = await new SignJWT({ sub: 'rehearse', scope: a.scopes.join(' '), client_id: live.client.clientId })
      .setProtectedHeader({ alg: 'ES256', kid: `rehearse-${randomUUID()}`, typ: 'at+jwt' })
      .setIssuer(ctx.issuer.issuer).setAudience(a.audience).setIssuedAt().setExpirationTime('5m').sign(evil.privateKey);
    await expect401(ctx, this.title, mcpCall(ctx.urlOf(a), forged), true);
  },
};

export const insufficientScope: Drill = {
  id: 'insufficient-scope', title: 'insufficient scope', controls: [AGENTIC],
  async run(ctx) {
    const a = ctx.upstream;
    if (a.scopes.length === 0) return ctx.record(this.title, 'skip', `upstream ${a.name} requires no scope`);
    const live = await liveOrSkip(ctx, this.title);
    if (live === undefined) return;
    const weak = await live.token(a, []).catch(() => undefined);
    const r = weak === undefined ? undefined : await mcpCall(ctx.urlOf(a), weak);
    ctx.record(this.title, r?.status === 403 && challenge(r).includes('error="insufficient_scope"') ? 'pass' : 'fail', r === undefined ? 'could not obtain a token without scopes' : `${r.status} ${challenge(r)}`);
  },
};
