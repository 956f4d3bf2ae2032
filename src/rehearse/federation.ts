import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import type { UpstreamConfig } from '../config/compile.ts';
import { IAM, NHI } from './controls.ts';
import type { Drill, DrillContext } from './drill.ts';
import { http, json, mcpCall } from './http.ts';
import { siblingUnavailable, withSibling } from './sibling.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const WORKLOAD = 'mcp-warden-rehearse-workload';
const SUBJECT = 'rehearse:workload';

interface Platform {
  readonly url: string;
  token(claims: JWTPayload): Promise<string>;
  close(): Promise<void>;
}

/** A drill-local workload platform: an ES256 key and a loopback JWKS, as a cluster's service-account issuer. */
async function startPlatform(): Promise<Platform> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = randomUUID();
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] });
  const server: Server = createServer((req, res) => void (req.url === '/jwks' ? res.writeHead(200, { 'content-type': 'application/json' }).end(jwks) : res.writeHead(404).end()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    token: (claims) => sign(privateKey, kid, { iss: url, sub: SUBJECT, ...claims }),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function sign(key: CryptoKey, kid: string, claims: JWTPayload): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, exp: now + 300, jti: randomUUID(), ...claims }).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).sign(key);
}

async function exchange(tokenEndpoint: string, u: UpstreamConfig, assertion: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const form = new URLSearchParams({ grant_type: JWT_BEARER, client_id: WORKLOAD, assertion, resource: u.audience, scope: u.scopes.join(' ') });
  const r = await http(tokenEndpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
  return { status: r.status, body: json<Record<string, unknown>>(r) ?? {} };
}

const refused = (r: { status: number; body: Record<string, unknown> }): boolean => r.status >= 400 && r.status < 500 && typeof r.body['error'] === 'string';
const said = (r: { status: number; body: Record<string, unknown> }): string => `${r.status} ${String(r.body['error'] ?? '')}`.trim();

/**
 * #18: RFC 7523 §2.1 workload tokens. A sibling of the embedded issuer trusts a drill-local platform
 * for one rule; a valid platform token is exchanged (the control) and its access token works through
 * the gateway; then a token from an untrusted issuer, one for another audience and the control's
 * token again (replayed jti) must each be refused. When the deployment's issuer advertises the grant,
 * an untrusted issuer's token is also sent to it live.
 */
export const federation: Drill = {
  id: 'federation', title: 'federation', controls: [NHI, IAM],
  async run(ctx) {
    const na = siblingUnavailable(ctx);
    if (na !== undefined) return ctx.record('federation', 'skip', na);
    const a = ctx.upstream;
    const platform = await startPlatform();
    const stranger = await generateKeyPair('ES256');
    const untrusted = (aud: string): Promise<string> => sign(stranger.privateKey, randomUUID(), { iss: `${platform.url}/untrusted`, sub: SUBJECT, aud });
    try {
      const issuerUrl = (ctx.issuer as NonNullable<DrillContext['issuer']>).issuer;
      const trust = [{ name: 'rehearse', issuer: platform.url, jwksUri: `${platform.url}/jwks`, algorithms: ['ES256'], rules: [{ subject: SUBJECT, clientId: WORKLOAD, scopes: [...a.scopes], resources: [a.audience] }] }];
      await withSibling(ctx, { federation: { trust } }, async (sibling) => {
        const endpoint = `${sibling.listenUrl}/token`;
        const valid = await platform.token({ aud: issuerUrl });
        const control = await exchange(endpoint, a, valid);
        const access = control.body['access_token'];
        const used = typeof access === 'string' ? (await mcpCall(ctx.urlOf(a), access)).status : 0;
        if (control.status !== 200 || used !== 200) {
          for (const what of ['untrusted issuer', 'wrong audience', 'replayed jti']) ctx.record(`federation ${what}`, 'fail', `a valid platform token was not exchanged and used (${said(control)}, gateway ${used}): the refusals would prove nothing`);
          return;
        }
        const cases: [string, Promise<string>][] = [['untrusted issuer', untrusted(issuerUrl)], ['wrong audience', platform.token({ aud: `${issuerUrl}/not-this-issuer` })], ['replayed jti', Promise.resolve(valid)]];
        for (const [what, assertion] of cases) {
          const r = await exchange(endpoint, a, await assertion);
          ctx.record(`federation ${what}`, refused(r) ? 'pass' : 'fail', `${said(r)}; a valid platform token was exchanged (200) and its token used at ${a.name} (200)`);
        }
      });
      await liveUntrusted(ctx, untrusted(issuerUrl));
    } finally {
      await platform.close();
    }
  },
};

async function liveUntrusted(ctx: DrillContext, assertion: Promise<string>): Promise<void> {
  const meta = await ctx.metadata();
  if (meta?.token_endpoint === undefined || !(meta.grant_types_supported ?? []).includes(JWT_BEARER)) return;
  const r = await exchange(meta.token_endpoint, ctx.upstream, await assertion);
  ctx.record('federation untrusted issuer (live)', refused(r) ? 'pass' : 'fail', `${said(r)} from ${meta.token_endpoint}`);
}
