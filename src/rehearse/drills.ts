import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import type { Config, IssuerConfig, UpstreamConfig } from '../config/compile.ts';
import { startIssuer } from '../issuer/index.ts';
import { challenge, http, json, mcpCall } from './http.ts';
import { rateLimitDrill } from './limits.ts';
import { dpopDrill } from './dpop.ts';
import type { DrillResult } from './report.ts';
import { asMetadata, clientCredentials, register, type Client } from './tokens.ts';

export interface LiveOptions {
  /** Where the gateway is reached; default: the config's publicUrl. */
  readonly baseUrl: string;
  readonly client: Client | undefined;
  readonly rotate: (() => Promise<void>) | undefined;
  readonly directUrl: string | undefined;
}

type Record = (drill: string, status: DrillResult['status'], detail: string) => void;

type Metadata = NonNullable<Awaited<ReturnType<typeof asMetadata>>>;
type Token = (u: UpstreamConfig, scopes?: readonly string[]) => Promise<string>;

/** The drills that run against a live deployment: metadata, issuance, and every refusal that matters. */
export async function liveDrills(config: Config, options: LiveOptions, record: Record): Promise<void> {
  const a = config.upstreams[0] as UpstreamConfig;
  const urlOf = (u: UpstreamConfig): string => options.baseUrl + u.path;
  const issuer = a.issuers.find((i) => i.introspection === undefined) as IssuerConfig | undefined;
  await resourceMetadataDrills(config, options.baseUrl, record);
  if (issuer === undefined) {
    record('issuer metadata', 'skip', `upstream ${a.name} has no JWT issuer`);
    return;
  }
  const meta = await issuerMetadataDrill(issuer, record);
  const client = await registrationDrill(config, a, options.client, meta, record);
  if (client === undefined || meta?.token_endpoint === undefined) {
    record('issuance', 'skip', 'no client to obtain tokens with: token drills skipped');
    return;
  }
  const token: Token = async (u, scopes = u.scopes) => clientCredentials(meta.token_endpoint as string, client, u.audience, scopes);
  const good = await issuanceDrill(a, token, record);
  if (good === undefined) return;
  await refusalDrills(config, issuer, client, good, token, urlOf, record);
  await expiredDrill(config, issuer, a, urlOf(a), record);
  await rotationDrill(options, a, urlOf(a), () => token(a), record);
  if (options.directUrl !== undefined) {
    const direct = await mcpCall(options.directUrl, undefined);
    record('hygiene direct access', direct.status >= 200 && direct.status < 300 ? 'warn' : 'pass', `${options.directUrl} answered ${direct.status} without the gateway`);
  }
  await dpopDrill(config, options.baseUrl, client, issuer.issuer, record);
  await rateLimitDrill(config, urlOf, (u) => token(u), record);
}

/** RFC 9728 metadata for every upstream: its own resource, an authorization server, header tokens only. */
async function resourceMetadataDrills(config: Config, baseUrl: string, record: Record): Promise<void> {
  for (const u of config.upstreams) {
    const prm = await http(baseUrl + u.resourceMetadataPath);
    const doc = json<{ resource?: string; authorization_servers?: string[]; bearer_methods_supported?: string[] }>(prm);
    if (prm.status !== 200 || doc === undefined) record(`metadata ${u.name}`, 'fail', `protected resource metadata answered ${prm.status}`);
    else if (doc.resource !== u.audience) record(`metadata ${u.name}`, 'fail', `resource is ${doc.resource}, expected ${u.audience}`);
    else if ((doc.authorization_servers ?? []).length === 0 || JSON.stringify(doc.bearer_methods_supported) !== '["header"]') record(`metadata ${u.name}`, 'fail', 'authorization_servers or bearer_methods_supported missing');
    else record(`metadata ${u.name}`, 'pass', `resource ${doc.resource}`);
  }
}

/** The issuer's RFC 8414 metadata names exactly the configured issuer and publishes signing keys. */
async function issuerMetadataDrill(issuer: IssuerConfig, record: Record): Promise<Metadata | undefined> {
  const meta = await asMetadata(issuer.issuer);
  if (meta === undefined) record('issuer metadata', 'fail', `no RFC 8414 / OIDC metadata at ${issuer.issuer}`);
  else if (meta.issuer !== issuer.issuer) record('issuer metadata', 'fail', `metadata issuer ${meta.issuer} ≠ configured ${issuer.issuer}`);
  else {
    const jwks = json<{ keys?: unknown[] }>(await http(issuer.jwksUri ?? meta.jwks_uri ?? ''));
    record('issuer metadata', (jwks?.keys ?? []).length > 0 ? 'pass' : 'fail', `issuer matches; ${(jwks?.keys ?? []).length} signing key(s) published`);
  }
  return meta;
}

/** The given client, or one registered dynamically when the issuer offers registration. */
async function registrationDrill(config: Config, a: UpstreamConfig, given: Client | undefined, meta: Metadata | undefined, record: Record): Promise<Client | undefined> {
  if (given !== undefined || meta?.registration_endpoint === undefined) {
    record('registration', 'skip', given === undefined ? 'no registration endpoint; pass --client-id/--client-secret' : 'using the given client');
    return given;
  }
  const registered = await register(meta.registration_endpoint, a.allScopes, config.authorizationServer?.registration?.initialAccessToken);
  if (typeof registered === 'string') {
    record('registration', 'fail', registered);
    return undefined;
  }
  record('registration', 'pass', `registered client ${registered.clientId}`);
  return registered;
}

/** A token for the first upstream; its lifetime is reported (over an hour is a hygiene warning). */
async function issuanceDrill(a: UpstreamConfig, token: Token, record: Record): Promise<string | undefined> {
  try {
    const good = await token(a);
    const claims = decodeJwt(good);
    const lifetime = (claims.exp ?? 0) - (claims.iat ?? 0);
    record('issuance', 'pass', `token for ${a.audience}, ${lifetime} s lifetime`);
    if (lifetime > 3_600) record('hygiene token lifetime', 'warn', `tokens live ${lifetime} s (over an hour)`);
    return good;
  } catch (err) {
    record('issuance', 'fail', (err as Error).message);
    return undefined;
  }
}

/** A valid call passes; no token, another audience, a tampered or foreign signature, too few scopes do not. */
async function refusalDrills(config: Config, issuer: IssuerConfig, client: Client, good: string, token: Token, urlOf: (u: UpstreamConfig) => string, record: Record): Promise<void> {
  const a = config.upstreams[0] as UpstreamConfig;
  const b = config.upstreams[1];
  const expect401 = async (drill: string, reply: Promise<import('./http.ts').Reply>, withError: boolean): Promise<void> => {
    const r = await reply;
    const c = challenge(r);
    const ok = r.status === 401 && c.includes(`resource_metadata="`) && c.includes('error="invalid_token"') === withError;
    record(drill, ok ? 'pass' : 'fail', `${r.status} ${json<{ reason?: string }>(r)?.reason ?? ''}`.trim());
  };
  const valid = await mcpCall(urlOf(a), good);
  record('valid call', valid.status === 200 ? 'pass' : 'fail', `${valid.status} from ${a.name}`);
  await expect401('no token', mcpCall(urlOf(a), undefined), false);
  if (b === undefined) record('audience mismatch', 'skip', 'needs a second upstream');
  else await expect401('audience mismatch', mcpCall(urlOf(b), good), true);
  const [h, p, s] = good.split('.') as [string, string, string];
  const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
  await expect401('tampered signature', mcpCall(urlOf(a), `${h}.${p}.${flipped}`), true);
  const evil = await generateKeyPair('ES256');
  const forged = await new SignJWT({ sub: 'rehearse', scope: a.scopes.join(' '), client_id: client.clientId })
    .setProtectedHeader({ alg: 'ES256', kid: `rehearse-${randomUUID()}`, typ: 'at+jwt' })
    .setIssuer(issuer.issuer).setAudience(a.audience).setIssuedAt().setExpirationTime('5m').sign(evil.privateKey);
  await expect401('unknown signing key', mcpCall(urlOf(a), forged), true);
  if (a.scopes.length === 0) {
    record('insufficient scope', 'skip', `upstream ${a.name} requires no scope`);
    return;
  }
  const weak = await token(a, []).catch(() => undefined);
  const r = weak === undefined ? undefined : await mcpCall(urlOf(a), weak);
  record('insufficient scope', r?.status === 403 && challenge(r).includes('error="insufficient_scope"') ? 'pass' : 'fail', r === undefined ? 'could not obtain a token without scopes' : `${r.status} ${challenge(r)}`);
}

/**
 * A really expired token: the embedded issuer's keys sign a 1-second token in a sibling issuer
 * (same issuer URL, a copy of its keys file), which is then waited out past the clock skew.
 */
async function expiredDrill(config: Config, issuer: IssuerConfig, a: UpstreamConfig, url: string, record: Record): Promise<void> {
  const as = config.authorizationServer;
  if (as === undefined || as.issuer !== issuer.issuer) {
    record('expired token', 'skip', 'needs the embedded issuer: only its keys can sign a token that really expires');
    return;
  }
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
    record('expired token', 'fail', (err as Error).message);
    return;
  }
  try {
    const client = await register(`${sibling.listenUrl}/reg`, a.scopes, undefined);
    if (typeof client === 'string') throw new Error(client);
    const short = await clientCredentials(`${sibling.listenUrl}/token`, client, a.audience, a.scopes);
    const waitMs = ((decodeJwt(short).exp ?? 0) + issuer.clockSkewSeconds + 1) * 1000 - Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, waitMs)));
    const r = await mcpCall(url, short);
    record('expired token', r.status === 401 && json<{ reason?: string }>(r)?.reason === 'token_expired' ? 'pass' : 'fail', `${r.status} ${json<{ reason?: string }>(r)?.reason ?? ''} after waiting ${Math.round(waitMs / 1000)} s`);
  } catch (err) {
    record('expired token', 'fail', (err as Error).message);
  } finally {
    await sibling.close();
    removeCopy();
  }
}

/** Rotate the issuer's keys while calling continuously: no valid call may fail, the new key must verify. */
async function rotationDrill(options: LiveOptions, a: UpstreamConfig, url: string, fresh: () => Promise<string>, record: Record): Promise<void> {
  if (options.rotate === undefined) {
    record('key rotation', 'skip', 'needs the embedded issuer or --rotate-cmd');
    return;
  }
  const before = decodeProtectedHeader(await fresh()).kid;
  await options.rotate();
  const failures: string[] = [];
  let calls = 0;
  let after = before;
  const deadline = Date.now() + 90_000;
  while (after === before && Date.now() < deadline) {
    const t = await fresh();
    after = decodeProtectedHeader(t).kid;
    const r = await mcpCall(url, t);
    calls++;
    if (r.status !== 200) failures.push(`${r.status} (kid ${after})`);
    await new Promise((res) => setTimeout(res, 500));
  }
  if (after === before) record('key rotation', 'fail', `the issuer still signs with ${before} after 90 s`);
  else record('key rotation', failures.length === 0 ? 'pass' : 'fail', `${calls} calls during rotation ${before} → ${after}, ${failures.length} failed${failures.length > 0 ? `: ${failures.slice(0, 3).join(', ')}` : ''}; upstream ${a.name}`);
}
