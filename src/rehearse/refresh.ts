import { createHash, randomBytes } from 'node:crypto';
import { NHI } from './controls.ts';
import type { Drill } from './drill.ts';
import { http, json, mcpCall } from './http.ts';

// Never listened on: the drill reads the code from the redirect's Location header.
const REDIRECT_URI = 'http://127.0.0.1:53682/callback';
type Form = Record<string, string>;

async function postForm(url: string, form: Form): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await http(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
  return { status: r.status, body: json<Record<string, unknown>>(r) ?? {} };
}

/** Plays the browser through /auth (cookies, at most 10 redirects) up to the redirect URI; the code, or why not. */
async function authorize(start: URL): Promise<string | { readonly why: string }> {
  const jar = new Map<string, string>();
  let url = start;
  for (let hop = 0; hop < 10; hop++) {
    const r = await http(url.href, { headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    const cookies = r.headers['set-cookie'];
    for (const c of Array.isArray(cookies) ? cookies : cookies === undefined ? [] : [cookies]) {
      const pair = c.split(';')[0] ?? '';
      jar.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
    }
    const location = r.headers['location'];
    if (r.status < 300 || r.status > 399 || typeof location !== 'string') return { why: `authorization stopped with ${r.status} ${json<{ error?: string }>(r)?.error ?? ''}`.trim() };
    url = new URL(location, url);
    if (url.href.startsWith(REDIRECT_URI)) return url.searchParams.get('code') ?? { why: `authorization refused: ${url.searchParams.get('error') ?? 'no code'}` };
  }
  return { why: 'more than 10 redirects' };
}

/**
 * #18: a rotated refresh token replayed is refused (RFC 9700 §4.14.2), and the family is revoked:
 * the refresh token the rotation issued stops working too. Live, as an MCP client would (public
 * client, authorization code + PKCE); only an issuer that signs in without a person (the loopback
 * embedded one) lets a drill through its authorization step.
 */
export const refreshReplay: Drill = {
  id: 'refresh-replay', title: 'refresh token replay', controls: [NHI],
  async run(ctx) {
    const meta = await ctx.metadata();
    const a = ctx.upstream;
    if (meta?.authorization_endpoint === undefined || meta.registration_endpoint === undefined || meta.token_endpoint === undefined || !(meta.grant_types_supported ?? []).includes('refresh_token')) {
      return ctx.record(this.title, 'skip', 'not applicable: the issuer offers no registration, authorization code and refresh_token grant to drill with');
    }
    const reg = await http(meta.registration_endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({
      client_name: 'mcp-warden rehearse', application_type: 'native', redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'none', scope: a.scopes.join(' '),
    }) });
    const clientId = json<{ client_id?: string }>(reg)?.client_id;
    if (reg.status !== 201 || clientId === undefined) return ctx.record(this.title, 'fail', `registering a public MCP client answered ${reg.status}`);
    const verifier = randomBytes(32).toString('base64url');
    const start = new URL(meta.authorization_endpoint);
    start.search = new URLSearchParams({
      client_id: clientId, redirect_uri: REDIRECT_URI, response_type: 'code', state: randomBytes(8).toString('hex'), resource: a.audience, scope: a.scopes.join(' '),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    }).toString();
    const code = await authorize(start);
    if (typeof code !== 'string') return ctx.record(this.title, 'skip', `not applicable: ${code.why} (an issuer that needs a person cannot be drilled here)`);
    const token = meta.token_endpoint;
    const first = await postForm(token, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier, resource: a.audience, client_id: clientId });
    const r0 = first.body['refresh_token'];
    if (first.status !== 200 || typeof r0 !== 'string') return ctx.record(this.title, 'fail', `the code exchange answered ${first.status} ${String(first.body['error'] ?? 'without a refresh token')}`);
    const refresh = (t: string): ReturnType<typeof postForm> => postForm(token, { grant_type: 'refresh_token', refresh_token: t, client_id: clientId });
    const rotated = await refresh(r0);
    const r1 = rotated.body['refresh_token'];
    if (rotated.status !== 200 || typeof r1 !== 'string' || r1 === r0) return ctx.record(this.title, 'fail', `the first refresh answered ${rotated.status}${r1 === r0 ? ' with the same token: not rotated' : ''}`);
    const used = await mcpCall(ctx.urlOf(a), rotated.body['access_token'] as string);
    const replay = await refresh(r0);
    const family = await refresh(r1);
    const ok = used.status === 200 && replay.status === 400 && replay.body['error'] === 'invalid_grant' && family.status === 400 && family.body['error'] === 'invalid_grant';
    ctx.record(this.title, ok ? 'pass' : 'fail', `rotated (its access token: ${used.status} at ${a.name}); replay of the rotated token: ${replay.status} ${String(replay.body['error'] ?? '')}; the token the rotation issued: ${family.status} ${String(family.body['error'] ?? '')}`);
  },
};
