import { createHash, randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { Config, UpstreamConfig } from '../config/compile.ts';
import { http, json, type Reply } from './http.ts';
import type { DrillResult } from './report.ts';
import { asMetadata, type Client } from './tokens.ts';
import { IAM, NHI } from './controls.ts';
import type { Drill } from './drill.ts';

type Record = (drill: string, status: DrillResult['status'], detail: string) => void;

const DRILL = 'dpop';
const LIST = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const MAX_RETRY_AFTER_SECONDS = 5;

/** A client's DPoP key (RFC 9449 §4.2): proofs are signed with it and carry its public JWK. */
interface ProofKey {
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function proofKey(): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { privateKey, jwk: await exportJWK(publicKey) };
}

function proof(key: ProofKey, htm: string, htu: string, extra: { token?: string; nonce?: string } = {}): Promise<string> {
  return new SignJWT({
    htm,
    htu,
    iat: Math.floor(Date.now() / 1000),
    jti: randomUUID(),
    ...(extra.token === undefined ? {} : { ath: createHash('sha256').update(extra.token).digest('base64url') }),
    ...(extra.nonce === undefined ? {} : { nonce: extra.nonce }),
  }).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk }).sign(key.privateKey);
}

/** A DPoP-bound token by client_credentials with a proof at the token endpoint (RFC 9449 §5); why not, else. */
async function boundToken(tokenEndpoint: string, client: Client, key: ProofKey, u: UpstreamConfig): Promise<string | { notApplicable: string }> {
  const basic = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64');
  const form = new URLSearchParams({ grant_type: 'client_credentials', resource: u.audience });
  if (u.scopes.length > 0) form.set('scope', u.scopes.join(' '));
  const send = async (nonce?: string): Promise<Reply> => http(tokenEndpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', dpop: await proof(key, 'POST', tokenEndpoint, nonce === undefined ? {} : { nonce }) },
    body: form.toString(),
  });
  let reply = await send();
  // §8: an authorization server may ask for its nonce first.
  const asNonce = header(reply, 'dpop-nonce');
  if (reply.status === 400 && json<{ error?: string }>(reply)?.error === 'use_dpop_nonce' && asNonce !== undefined) reply = await send(asNonce);
  const body = json<{ access_token?: string; token_type?: string }>(reply);
  if (reply.status !== 200 || body?.access_token === undefined) return { notApplicable: `the token endpoint answered ${reply.status} to a request with a DPoP proof` };
  const cnf = safeClaims(body.access_token)?.['cnf'] as { jkt?: unknown } | undefined;
  if (body.token_type?.toLowerCase() !== 'dpop' || typeof cnf?.jkt !== 'string') return { notApplicable: 'the issuer ignored the DPoP proof (no DPoP-bound token)' };
  return body.access_token;
}

function safeClaims(token: string): Readonly<globalThis.Record<string, unknown>> | undefined {
  try {
    return decodeJwt(token);
  } catch {
    return undefined;
  }
}

function header(reply: Reply, name: string): string | undefined {
  const v = reply.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Issue 20 point 5: a DPoP-bound token replayed without its key, with another key, with a reused proof
 * and with a proof for another URL is refused (401, nothing forwarded); with a valid proof, 200. The
 * token comes from the deployment's issuer by client_credentials with a DPoP proof; an issuer that does
 * not advertise DPoP makes the drill not applicable.
 */
export async function dpopDrill(config: Config, baseUrl: string, client: Client, issuer: string, record: Record): Promise<void> {
  const meta = (await asMetadata(issuer)) as { token_endpoint?: string; dpop_signing_alg_values_supported?: unknown } | undefined;
  const tokenEndpoint = meta?.token_endpoint;
  const algs = meta?.dpop_signing_alg_values_supported;
  if (tokenEndpoint === undefined || !Array.isArray(algs) || !algs.includes('ES256')) {
    record(DRILL, 'skip', 'not applicable: the issuer advertises no ES256 DPoP (dpop_signing_alg_values_supported)');
    return;
  }
  // Where DPoP is required if anywhere, else the first upstream: a cnf-bound token is checked on every one.
  const u = config.upstreams.find((x) => x.dpopRequired) ?? (config.upstreams[0] as UpstreamConfig);
  const key = await proofKey();
  const token = await boundToken(tokenEndpoint, client, key, u);
  if (typeof token !== 'string') {
    record(DRILL, 'skip', `not applicable: ${token.notApplicable}`);
    return;
  }
  const url = baseUrl + u.path;
  // §4.3 check 9: htu is the public URL, whatever address the drill reaches the gateway at.
  const htu = config.publicUrl.origin + u.path;
  let nonce: string | undefined;
  const call = (headers: globalThis.Record<string, string>): Promise<Reply> => http(url, { method: 'POST', headers: { ...MCP_HEADERS, ...headers }, body: LIST });
  const withProof = async (p: string): Promise<Reply> => call({ authorization: `DPoP ${token}`, dpop: p });
  const valid = await validCall(withProof, () => proof(key, 'POST', htu, { token, ...(nonce === undefined ? {} : { nonce }) }), (n) => (nonce = n));
  if (valid.reply.status !== 200) {
    record(DRILL, 'fail', `a valid proof was answered ${valid.reply.status} ${reasonOf(valid.reply)}`.trim());
    return;
  }
  const other = await proofKey();
  const withNonce = nonce === undefined ? {} : { nonce };
  const refusals: readonly (readonly [string, () => Promise<Reply>])[] = [
    ['without the key (Bearer)', () => call({ authorization: `Bearer ${token}` })],
    ['without a proof', () => call({ authorization: `DPoP ${token}` })],
    ['another key', async () => withProof(await proof(other, 'POST', htu, { token, ...withNonce }))],
    ['reused proof', () => withProof(valid.proof)],
    ['another URL', async () => withProof(await proof(key, 'POST', `${config.publicUrl.origin}/not${u.path}`, { token, ...withNonce }))],
  ];
  const outcomes: string[] = [];
  let failed = false;
  for (const [what, send] of refusals) {
    const r = await send();
    if (r.status !== 401) failed = true;
    outcomes.push(`${what} ${r.status} ${reasonOf(r)}`.trim());
  }
  record(DRILL, failed ? 'fail' : 'pass', `valid proof 200 on ${u.name}; ${outcomes.join(', ')}`);
}

/** The one call that must pass: asks for the gateway's nonce (§8) or waits out a short rate limit once. */
async function validCall(send: (p: string) => Promise<Reply>, make: () => Promise<string>, setNonce: (n: string) => void): Promise<{ reply: Reply; proof: string }> {
  let p = await make();
  let reply = await send(p);
  for (let attempt = 0; attempt < 2 && reply.status !== 200; attempt++) {
    const nonce = header(reply, 'dpop-nonce');
    const wait = Number(header(reply, 'retry-after'));
    if (reply.status === 401 && nonce !== undefined) setNonce(nonce);
    else if (reply.status === 429 && Number.isFinite(wait) && wait <= MAX_RETRY_AFTER_SECONDS) await new Promise((r) => setTimeout(r, wait * 1000));
    else break;
    p = await make();
    reply = await send(p);
  }
  return { reply, proof: p };
}

function reasonOf(r: Reply): string {
  return json<{ reason?: string }>(r)?.reason ?? '';
}

/** The registry's entry for the drill above: it needs the deployment's issuer and a client of it. */
export const dpop: Drill = {
  id: 'dpop', title: DRILL, controls: [NHI, IAM],
  async run(ctx) {
    if (ctx.issuer === undefined) return ctx.record(this.title, 'skip', `upstream ${ctx.upstream.name} has no JWT issuer`);
    const { client, detail } = await ctx.client();
    if (client === undefined) return ctx.record(this.title, 'skip', `no client: ${detail}`);
    await dpopDrill(ctx.config, ctx.target.baseUrl, client, ctx.issuer.issuer, ctx.record);
  },
};
