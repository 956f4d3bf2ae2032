import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { importJWK, type CryptoKey, type JWK } from 'jose';
import { stringify } from 'yaml';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, PUBLIC_URL, startGateway, twoUpstreamConfig, type IssuerSpec, type StartedGateway } from '../helpers/gateway.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';
import { generateGatewayJwk, writeKeyFile } from '../../src/identity/keys.ts';
import { loadConfigText } from '../../src/config/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';

// Issue 15 point 14: the gateway's signing key never doubles as a trusted issuer's key. Were it in an
// issuer's JWKS, anything the gateway signs (or anyone holding a copy of its key file) would mint
// access tokens for that issuer. Keys are compared by RFC 7638 thumbprint, so another kid changes nothing.

let idp: TestIdp | undefined;
let other: TestIdp | undefined;
let upstream: TestUpstream | undefined;
let gw: StartedGateway | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await gw?.close();
  await upstream?.close();
  await idp?.close();
  await other?.close();
  gw = undefined;
  other = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Publishes `privateJwk`'s public half in the IdP's JWKS under `kid`; returns its private key for signing. */
async function publishCopy(at: TestIdp, privateJwk: JWK, kid: string): Promise<CryptoKey> {
  const { d: _d, ...pub } = privateJwk;
  const privateKey = (await importJWK(privateJwk, 'EdDSA')) as CryptoKey;
  at.keys.set(kid, { kid, alg: 'EdDSA', privateKey, publicJwk: { ...pub, kid, alg: 'EdDSA', use: 'sig' } });
  at.published.add(kid);
  return privateKey;
}

/** A token for /mcp claiming `at`'s issuer, signed with the given key under `kid`. */
function forged(at: TestIdp, key: CryptoKey, kid: string): Promise<string> {
  const s = Math.floor(Date.now() / 1000);
  return at.sign({ iss: at.issuer, aud: AUD, sub: 'mallory', client_id: 'test-client', scope: 'mcp:tools', iat: s, exp: s + 300 }, { kid, alg: 'EdDSA', key });
}

async function call(url: string, token: string): Promise<{ status: number; reason: string | undefined }> {
  const res = await fetch(url + '/mcp', { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${token}` }, body: RPC });
  const body = (await res.json()) as { reason?: string };
  return { status: res.status, reason: body.reason };
}

const issuerFor = (at: TestIdp, name = 'idp'): IssuerSpec => ({ name, issuer: at.issuer, jwksUri: at.jwksUri, algorithms: ['RS256', 'EdDSA'] });

describe('the gateway signing key is never an issuer key', () => {
  it('refuses to start when a trusted issuer publishes the gateway\'s public key under another kid, and says why', async () => {
    idp = await TestIdp.start();
    const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-gwkey-'));
    dirs.push(dir);
    const keyFile = join(dir, 'gateway.jwk');
    const jwk = await generateGatewayJwk();
    await writeKeyFile(keyFile, jwk);
    await publishCopy(idp, jwk, 'innocent-looking');
    let error: unknown;
    try {
      gw = await startGateway(twoUpstreamConfig(issuerFor(idp), 'http://127.0.0.1:9', { root: { identity: { signingKeyFile: keyFile } } }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problem = (error as ConfigError).problems[0];
    expect(problem?.key).toBe('issuers.0');
    expect(problem?.file).toMatch(/config\.yaml$/);
    expect(problem?.message).toMatch(/issuer "idp" publishes the gateway's own signing key \(kid innocent-looking\)/);
    expect(idp.jwksRequests).toBe(1);
  });

  it('at runtime, a key set that starts publishing the gateway\'s key never verifies with it; the issuer\'s other keys keep working; logged', async () => {
    idp = await TestIdp.start();
    upstream = await TestUpstream.start();
    gw = await startGateway(twoUpstreamConfig(issuerFor(idp), upstream.url));
    expect((await call(gw.url, await idp.token(AUD))).status).toBe(200);
    const gatewayJwk = JSON.parse(readFileSync(join(dirname(gw.configFile), 'gateway.jwk'), 'utf8')) as JWK;
    const gatewayKey = await publishCopy(idp, gatewayJwk, 'copied');
    upstream.reset();
    const before = idp.jwksRequests;
    // The unknown kid makes the gateway refetch; the set it gets now holds the gateway's key.
    expect(await call(gw.url, await forged(idp, gatewayKey, 'copied'))).toEqual({ status: 401, reason: 'key_unknown' });
    expect(idp.jwksRequests).toBe(before + 1);
    expect(await call(gw.url, await forged(idp, gatewayKey, gatewayJwk.kid as string))).toEqual({ status: 401, reason: 'key_unknown' });
    expect(upstream.received).toHaveLength(0);
    expect(upstream.bytes).toBe(0);
    const logged = gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['event'] === 'jwks_gateway_key');
    expect(logged).toMatchObject({ issuer: 'idp', kids: ['copied'] });
    expect(JSON.stringify(gw.logs)).not.toContain(gatewayJwk.d as string);
    expect((await call(gw.url, await idp.token(AUD))).status).toBe(200);
  });

  it('a reload adding an issuer that publishes the gateway\'s key is refused; the running configuration keeps serving', async () => {
    idp = await TestIdp.start();
    other = await TestIdp.start();
    upstream = await TestUpstream.start();
    const config = twoUpstreamConfig(issuerFor(idp), upstream.url);
    gw = await startGateway(config);
    const keyFile = join(dirname(gw.configFile), 'gateway.jwk');
    await publishCopy(other, JSON.parse(readFileSync(keyFile, 'utf8')) as JWK, 'copied');
    const upstreams = config['upstreams'] as Record<string, unknown>[];
    const next = { ...config, issuers: [issuerFor(idp), issuerFor(other, 'second')], identity: { signingKeyFile: keyFile }, upstreams: [upstreams[0], { ...upstreams[1], issuers: ['second'] }] };
    writeFileSync(gw.configFile, stringify(next));
    expect(await gw.gateway.reloadFromFile()).toBe(false);
    expect(gw.gateway.config.issuers.map((i) => i.name)).toEqual(['idp']);
    expect(gw.logs.join('')).toContain('publishes the gateway');
    expect(other.jwksRequests).toBe(1);
    expect((await call(gw.url, await idp.token(AUD))).status).toBe(200);
  });

  it('validate refuses an issuer whose jwksUri is the gateway\'s own /.well-known/jwks.json', () => {
    const text = stringify({ ...twoUpstreamConfig({ issuer: 'https://idp.test', jwksUri: `${PUBLIC_URL}/.well-known/jwks.json` }, 'http://127.0.0.1:9'), identity: { signingKeyFile: './gateway.jwk' } });
    expect(() => loadConfigText(text)).toThrow(/issuers\.0\.jwksUri: is the gateway's own key set/);
  });
});
