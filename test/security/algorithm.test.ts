import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { constants, createHmac, createPublicKey, generateKeyPairSync, KeyObject, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { decodeJwt, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { bearerProbe } from '../helpers/refused.ts';
import type { Reason } from '../../src/reasons.ts';

// security-cases.md, category algorithm (SC-019..032). The issuer allows RS256 and ES256 only
// (RFC 8725 §3.1). K1 = the IdP's RS256 key (kid k1); e1 = its ES256 key; the IdP also publishes an
// Ed25519 key (ed1) and RSA keys of 1024 and 512 bits, none of which the gateway may ever use.

/** The order of the P-256 group: r = s = n is as degenerate as r = s = 0. */
const P256_N = Buffer.from('FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551', 'hex');

let idp: TestIdp;
let upstream: TestUpstream;
let gw: StartedGateway;
let clock = Math.floor(Date.now() / 1000) * 1000;
const nowS = (): number => Math.floor(clock / 1000);
const weak = new Map<string, KeyObject>();
let ed1: KeyObject;

/** Publishes a key in the IdP's JWKS that jose would refuse to generate (RSA under 2048 bits). */
async function publishWeakRsa(kid: string, modulusLength: number): Promise<void> {
  const pair = generateKeyPairSync('rsa', { modulusLength });
  weak.set(kid, pair.privateKey);
  const privateKey = pair.privateKey.toCryptoKey({ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['sign']);
  idp.keys.set(kid, { kid, alg: 'RS256', privateKey, publicJwk: { ...(pair.publicKey.export({ format: 'jwk' }) as JWK), kid, alg: 'RS256', use: 'sig' } });
  idp.published.add(kid);
}

beforeAll(async () => {
  idp = await TestIdp.start();
  await idp.addKey('e1', 'ES256');
  ed1 = KeyObject.from((await idp.addKey('ed1', 'EdDSA')).privateKey);
  await publishWeakRsa('weak1024', 1024);
  await publishWeakRsa('weak512', 512);
  upstream = await TestUpstream.start();
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256', 'ES256'], jwks: { cooldownSeconds: 1 } }, upstream.url), { now: () => clock });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await idp?.close();
});
beforeEach(() => upstream.reset());

const b64 = (v: string | Buffer | object): string => Buffer.from(typeof v === 'string' || Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url');
const claims = (extra: JWTPayload = {}): JWTPayload =>
  ({ iss: idp.issuer, aud: AUD, sub: 'alice', client_id: 'test-client', scope: 'mcp:tools', iat: nowS(), exp: nowS() + 300, jti: `j-${Math.random()}`, ...extra });
const good = (extra: JWTPayload = {}): Promise<string> => idp.sign(claims(extra));
const privateOf = (kid: string): KeyObject => KeyObject.from((idp.keys.get(kid) as { privateKey: CryptoKey }).privateKey);
/** A compact JWS over exactly these header and claims, signed by `signer` over the real signing input. */
function jws(header: object | string, payload: object, signer: (input: Buffer) => Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signer(Buffer.from(input)).toString('base64url')}`;
}
const rs256 = (key: KeyObject) => (input: Buffer): Buffer => nodeSign('sha256', input, key);
/** Moves the clock past the refetch cooldown: any key lookup for an unknown kid would now fetch the JWKS. */
function armKeyLookup(): void {
  clock += 2_000;
}
const { post, expectRefused } = bearerProbe({
  get gw() {
    return gw;
  },
  get upstream() {
    return upstream;
  },
});

describe('algorithm (RFC 8725 §3.1: the issuer allow-list, never the token, picks the algorithm)', () => {
  it('SC-019 refuses alg:none with an empty signature (trailing dot), before any key lookup', async () => {
    armKeyLookup();
    const before = idp.jwksRequests;
    const token = `eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.${b64(claims({ sub: 'admin' }))}.`;
    expect(token.startsWith(b64('{"alg":"none","typ":"JWT"}'))).toBe(true);
    await expectRefused(token, 'token_malformed');
    await expectRefused(`${b64({ alg: 'none', typ: 'JWT', kid: 'probe-unknown' })}.${b64(claims({ sub: 'admin' }))}.`, 'token_malformed');
    expect(idp.jwksRequests).toBe(before);
  });

  it('SC-020 refuses every spelling of none (None, NONE, nOnE, "none "), with an empty or an arbitrary signature', async () => {
    armKeyLookup();
    const before = idp.jwksRequests;
    for (const alg of ['none', 'None', 'NONE', 'nOnE', 'none ', ' none']) {
      const unsigned = `${b64({ alg, kid: 'probe-unknown' })}.${b64(claims({ sub: 'admin' }))}`;
      await expectRefused(`${unsigned}.`, 'token_malformed');
      await expectRefused(`${unsigned}.${b64('arbitrary')}`, 'alg_not_allowed');
    }
    expect(idp.jwksRequests).toBe(before);
  });

  it('SC-021 refuses HS256 signed with the IdP public key (SPKI PEM from the JWKS, and its other spellings) as the HMAC secret', async () => {
    const served = ((await (await fetch(idp.jwksUri)).json()) as { keys: JWK[] }).keys.find((k) => k.kid === 'k1') as JWK;
    const publicKey = createPublicKey({ key: served as import('node:crypto').JsonWebKey, format: 'jwk' });
    const pem = String(publicKey.export({ type: 'spki', format: 'pem' }));
    expect(pem.startsWith('-----BEGIN PUBLIC KEY-----\n')).toBe(true);
    const secrets: (string | Buffer)[] = [
      pem, pem.trimEnd(), String(publicKey.export({ type: 'pkcs1', format: 'pem' })),
      publicKey.export({ type: 'spki', format: 'der' }), JSON.stringify(served), Buffer.from(served.n as string, 'base64url'),
    ];
    for (const secret of secrets) {
      for (const header of [{ alg: 'HS256', kid: 'k1' }, { alg: 'HS256', kid: 'k1', typ: 'JWT' }, { alg: 'HS512', kid: 'k1' }]) {
        const hash = header.alg === 'HS512' ? 'sha512' : 'sha256';
        await expectRefused(jws(header, claims({ sub: 'admin' }), (input) => createHmac(hash, secret).update(input).digest()), 'alg_not_allowed');
      }
    }
  });

  it('SC-023 refuses an ES256 "psychic signature" (r = s = 0, and r = s = n) for the published EC key', async () => {
    const zeros = `${b64({ alg: 'ES256', kid: 'e1' })}.${b64(claims({ sub: 'admin' }))}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`;
    expect(Buffer.from(zeros.split('.')[2] as string, 'base64url')).toEqual(Buffer.alloc(64));
    await expectRefused(zeros, 'signature_invalid');
    await expectRefused(jws({ alg: 'ES256', kid: 'e1' }, claims({ sub: 'admin' }), () => Buffer.concat([P256_N, P256_N])), 'signature_invalid');
    // DER-encoded r = s = 0 (30 06 02 01 00 02 01 00), the shape a Java verifier parsed.
    await expectRefused(jws({ alg: 'ES256', kid: 'e1' }, claims({ sub: 'admin' }), () => Buffer.from('3006020100020100', 'hex')), 'signature_invalid');
    // Control: the same claims genuinely signed by e1 pass, so the refusals are about the signature.
    const real = jws({ alg: 'ES256', kid: 'e1' }, claims(), (input) => nodeSign('sha256', input, { key: privateOf('e1'), dsaEncoding: 'ieee-p1363' }));
    expect((await post(real)).status).toBe(200);
    expect(upstream.received).toHaveLength(1);
  });

  it('SC-026 refuses a K1-signed token whose alg is missing, null, an array, a number or empty, never with a 500', async () => {
    const cases: [string, Reason][] = [
      ['{"kid":"k1"}', 'token_malformed'],
      ['{"alg":null,"kid":"k1"}', 'token_malformed'],
      ['{"alg":["RS256"],"kid":"k1"}', 'token_malformed'],
      ['{"alg":256,"kid":"k1"}', 'token_malformed'],
      ['{"alg":{"name":"RS256"},"kid":"k1"}', 'token_malformed'],
      ['{"alg":"","kid":"k1"}', 'alg_not_allowed'],
    ];
    for (const [header, reason] of cases) await expectRefused(jws(header, claims(), rs256(privateOf('k1'))), reason);
  });

  it('SC-027 refuses a GOOD token with its signature stripped (alg RS256, empty third segment)', async () => {
    const [h, p] = (await good()).split('.') as [string, string];
    await expectRefused(`${h}.${p}.`, 'token_malformed');
  });

  it('SC-028 refuses header and payload of token A (sub bob, scope admin) spliced onto the signature of GOOD token B', async () => {
    const [ha, pa] = (await good({ sub: 'bob', scope: 'mcp:tools admin' })).split('.') as [string, string];
    const [, , sb] = (await good()).split('.') as [string, string, string];
    await expectRefused(`${ha}.${pa}.${sb}`, 'signature_invalid');
  });

  it('SC-029 refuses a GOOD token whose payload was edited from sub alice to sub admin, signature kept', async () => {
    const token = await good();
    const [h, p, s] = token.split('.') as [string, string, string];
    const text = Buffer.from(p, 'base64url').toString('utf8');
    expect(text).toContain('"sub":"alice"');
    const edited = b64(text.replace('"sub":"alice"', '"sub":"admin"'));
    expect(decodeJwt(`${h}.${edited}.${s}`).sub).toBe('admin');
    await expectRefused(`${h}.${edited}.${s}`, 'signature_invalid');
  });

  it('SC-031 refuses RS256 tokens signed by 1024- and 512-bit RSA keys the IdP publishes as k-ids in its JWKS', async () => {
    const published = ((await (await fetch(idp.jwksUri)).json()) as { keys: JWK[] }).keys.map((k) => k.kid);
    expect(published).toEqual(expect.arrayContaining(['weak1024', 'weak512']));
    for (const [kid, key] of weak) {
      const token = jws({ alg: 'RS256', kid }, claims(), rs256(key));
      const [h, p, s] = token.split('.') as [string, string, string];
      // The signature is genuine: node:crypto verifies it with the public key the IdP publishes.
      const publicKey = createPublicKey({ key: idp.keys.get(kid)?.publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' });
      expect(nodeVerify('sha256', Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s, 'base64url'))).toBe(true);
      // signature_invalid, not key_unknown: the key was found and still not trusted for RS256.
      await expectRefused(token, 'signature_invalid');
    }
  });

  it('SC-032 refuses genuinely signed tokens in algorithms outside the allow-list (EdDSA, ES256K, HS256, PS256, RS384) before any key lookup', async () => {
    armKeyLookup();
    const before = idp.jwksRequests;
    const secp256k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey;
    const k1 = privateOf('k1');
    const tokens: string[] = [
      // ed1 is in the IdP's JWKS; the gateway filters it out, so looking it up would force a refetch.
      jws({ alg: 'EdDSA', kid: 'ed1' }, claims(), (input) => nodeSign(null, input, ed1)),
      jws({ alg: 'Ed25519', kid: 'ed1' }, claims(), (input) => nodeSign(null, input, ed1)),
      jws({ alg: 'ES256K', kid: 'probe-es256k' }, claims(), (input) => nodeSign('sha256', input, { key: secp256k1, dsaEncoding: 'ieee-p1363' })),
      jws({ alg: 'HS256', kid: 'k1' }, claims(), (input) => createHmac('sha256', 'secret').update(input).digest()),
      jws({ alg: 'PS256', kid: 'k1' }, claims(), (input) => nodeSign('sha256', input, { key: k1, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })),
      jws({ alg: 'RS384', kid: 'k1' }, claims(), (input) => nodeSign('sha384', input, k1)),
      await new SignJWT(claims()).setProtectedHeader({ alg: 'EdDSA', kid: 'k1' }).sign((await generateKeyPair('EdDSA')).privateKey),
    ];
    for (const token of tokens) await expectRefused(token, 'alg_not_allowed');
    expect(idp.jwksRequests).toBe(before);
  });
});
