import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, sign as nodeSign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import { Recorder } from '../helpers/idp.ts';
import { AUD } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { bearerProbe } from '../helpers/refused.ts';
import type { Reason } from '../../src/reasons.ts';

// security-cases.md, category key-selection (SC-033..039): the key comes from the issuer's JWKS by kid,
// and from nowhere else (RFC 8725 §3.10). K1 = the IdP's RS256 key (kid k1); EVIL = an RSA key with a
// self-signed certificate, made here and never published by the IdP.

const COOLDOWN = 30; // the issuer's jwks.cooldownSeconds (the default, stated explicitly)

let attacker: Recorder;
let dir: string;
let evil: KeyObject;
let evilCertDer: string;
let clock = Math.floor(Date.now() / 1000) * 1000;
const nowS = (): number => Math.floor(clock / 1000);

const INTERVAL_MS = 200; // jwks.unknownKidIntervalMs: the gap between two unknown-kid refetches
const fx = useGatewayFixture({ issuer: { jwks: { cooldownSeconds: COOLDOWN, unknownKidIntervalMs: INTERVAL_MS } }, now: () => clock });
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-keysel-'));
  // EVIL: an RSA key and a self-signed certificate naming the IdP, as an attacker would present in x5c.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'evil.key'), '-out', join(dir, 'evil.crt'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  evil = createPrivateKey(readFileSync(join(dir, 'evil.key')));
  evilCertDer = new X509Certificate(readFileSync(join(dir, 'evil.crt'))).raw.toString('base64');
  attacker = await Recorder.start();
});
afterAll(async () => {
  await attacker?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => fx.upstream.reset());

const b64 = (v: string | Buffer | object): string => Buffer.from(typeof v === 'string' || Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url');
const claims = (extra: JWTPayload = {}): JWTPayload =>
  ({ iss: fx.idp.issuer, aud: AUD, sub: 'admin', client_id: 'test-client', scope: 'mcp:tools', iat: nowS(), exp: nowS() + 300, jti: `j-${Math.random()}`, ...extra });
const k1 = (): KeyObject => KeyObject.from((fx.idp.keys.get('k1') as { privateKey: CryptoKey }).privateKey);
/** RS256 over exactly this header and claims with `key`. */
function rs256(header: object, key: KeyObject, payload: JWTPayload = claims()): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${nodeSign('sha256', Buffer.from(input), key).toString('base64url')}`;
}
function hs256(header: object, secret: string | Buffer): string {
  const input = `${b64(header)}.${b64(claims())}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
/** Past the refetch cooldown: the next unknown kid may fetch the JWKS once. */
function passCooldown(): void {
  clock += (COOLDOWN + 1) * 1000;
}
const { post, expectRefused } = bearerProbe(fx);

/**
 * strace on this very process (the gateway runs in it), when the platform allows attaching. Attached once
 * the log shows our own poll opening the log file.
 */
async function traceFiles(log: string): Promise<{ stop(): Promise<string> } | undefined> {
  const child = spawn('strace', ['-f', '-qq', '-e', 'trace=%file', '-o', log, '-p', String(process.pid)], { stdio: 'ignore' });
  const attached = await new Promise<boolean>((resolve) => {
    const finish = (ok: boolean): void => {
      clearInterval(poll);
      clearTimeout(timer);
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), 5_000);
    child.once('error', () => finish(false));
    child.once('exit', () => finish(false));
    const poll = setInterval(() => {
      try {
        if (readFileSync(log, 'utf8').length > 0) finish(true);
      } catch { /* not created yet */ }
    }, 50);
  });
  if (!attached) {
    child.kill('SIGKILL');
    return undefined;
  }
  return {
    async stop() {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGINT');
      await exited;
      return readFileSync(log, 'utf8');
    },
  };
}

describe('key selection (RFC 8725 §3.10: keys from the issuer JWKS by kid, never from the token)', () => {
  it('SC-033 ignores a key embedded in the header (jwk): an EVIL-signed token carrying EVIL\'s public key is refused', async () => {
    const jwk = { ...(createPublicKey(evil).export({ format: 'jwk' }) as JWK), alg: 'RS256', use: 'sig' };
    expect(Object.keys(jwk)).toEqual(expect.arrayContaining(['kty', 'n', 'e']));
    // No kid: the issuer's only RSA key (K1) is the one tried, and EVIL's signature does not verify with it.
    await expectRefused(rs256({ alg: 'RS256', jwk }, evil), 'signature_invalid');
    await expectRefused(rs256({ alg: 'RS256', kid: 'k1', jwk: { ...jwk, kid: 'k1' } }, evil), 'signature_invalid');
    await expectRefused(rs256({ alg: 'RS256', kid: 'evil', jwk: { ...jwk, kid: 'evil' } }, evil), 'key_unknown');
  });

  it('SC-034 never fetches a jku: an EVIL-signed token naming the attacker\'s JWKS is refused and the attacker host gets 0 requests', async () => {
    passCooldown();
    const jku = `${attacker.url}/jwks.json`;
    await expectRefused(rs256({ alg: 'RS256', kid: 'k1', jku }, evil), 'signature_invalid');
    // An unknown kid makes the gateway refetch its own issuer's JWKS, never the jku.
    const before = fx.idp.jwksRequests;
    await expectRefused(rs256({ alg: 'RS256', kid: 'attacker-kid', jku }, evil), 'key_unknown');
    expect(fx.idp.jwksRequests).toBe(before + 1);
    expect(attacker.requests).toBe(0);
  });

  it('SC-035 never fetches an x5u nor trusts an x5c: EVIL-signed tokens with either are refused, 0 outbound requests', async () => {
    // The metadata address of the case (169.254.169.254) is replaced by a loopback recorder: tests never leave 127.0.0.1.
    const x5u = `${attacker.url}/latest/meta-data/`;
    await expectRefused(rs256({ alg: 'RS256', x5u }, evil), 'signature_invalid');
    await expectRefused(rs256({ alg: 'RS256', kid: 'k1', x5u }, evil), 'signature_invalid');
    await expectRefused(rs256({ alg: 'RS256', x5c: [evilCertDer] }, evil), 'signature_invalid');
    await expectRefused(rs256({ alg: 'RS256', kid: 'k1', x5c: [evilCertDer], x5u }, evil), 'signature_invalid');
    expect(attacker.requests).toBe(0);
  });

  it('SC-036 treats path-traversal kids as opaque: nothing named by the kid is read, even where reading it would validate the token', async () => {
    // Canary files that would make each token valid if the gateway used the kid as a path to key material.
    const secret = 's3cret-read-from-a-file';
    writeFileSync(join(dir, 'hmac.key'), secret);
    writeFileSync(join(dir, 'evil.pub.pem'), String(createPublicKey(evil).export({ type: 'spki', format: 'pem' })));
    const environ = readFileSync('/proc/self/environ'); // the gateway runs in this process: same bytes
    const up = (p: string): string => `../../../../../../../..${p}`;
    const traversal = (name: string): string => relative(process.cwd(), join(dir, name));
    const tokens: [string, Reason][] = [
      [hs256({ alg: 'HS256', kid: '../../../../../../dev/null' }, ''), 'alg_not_allowed'],
      [hs256({ alg: 'HS256', kid: '/proc/self/environ' }, environ), 'alg_not_allowed'],
      [hs256({ alg: 'HS256', kid: join(dir, 'hmac.key') }, secret), 'alg_not_allowed'],
      [hs256({ alg: 'HS256', kid: traversal('hmac.key') }, secret), 'alg_not_allowed'],
      // RS256 is allowed, so these reach key selection: the kid is looked up in the JWKS and nowhere else.
      [rs256({ alg: 'RS256', kid: join(dir, 'evil.pub.pem') }, evil), 'key_unknown'],
      [rs256({ alg: 'RS256', kid: up(join(dir, 'evil.pub.pem')) }, evil), 'key_unknown'],
      [rs256({ alg: 'RS256', kid: traversal('evil.pub.pem') }, evil), 'key_unknown'],
      [rs256({ alg: 'RS256', kid: `file://${join(dir, 'evil.pub.pem')}` }, evil), 'key_unknown'],
      [rs256({ alg: 'RS256', kid: '../../../../../../dev/null' }, evil), 'key_unknown'],
      [rs256({ alg: 'RS256', kid: '/proc/self/environ' }, evil), 'key_unknown'],
    ];
    const marker = join(dir, 'strace-marker');
    writeFileSync(marker, 'x');
    const trace = await traceFiles(join(dir, 'strace.log'));
    passCooldown();
    for (const [token, reason] of tokens) await expectRefused(token, reason);
    if (trace !== undefined) {
      readFileSync(marker); // proves the trace sees this process's file opens
      const lines = (await trace.stop()).split('\n');
      expect(lines.some((l) => l.includes(marker))).toBe(true);
      const suspicious = lines.filter((l) => l.includes('hmac.key') || l.includes('evil.pub.pem') || l.includes('environ') || l.includes('dev/null') || l.includes('../'));
      expect(suspicious).toEqual([]);
    } else {
      console.warn('SC-036: strace cannot attach here; the canary tokens above are the proof that no file is read');
    }
  });

  it('SC-037 treats injection kids as opaque unknown kids, even when the token is genuinely signed by K1', async () => {
    // Signed with K1 itself: any fuzzy, wildcard or query-like match of these kids to k1 would let it through.
    for (const kid of ["x' UNION SELECT 'secret' --", 'k1" OR "1"="1', '$(id)', '*', 'K1', 'k1 ', 'k1\u0000', '%6b1', '.*']) {
      await expectRefused(rs256({ alg: 'RS256', kid }, k1()), 'key_unknown');
    }
    // Structured kids (NoSQL-style operators, numbers) and an overlong kid are not kids at all.
    for (const kid of [{ $ne: null }, { $regex: '.*' }, ['k1'], 1, 'k'.repeat(1_000)]) {
      await expectRefused(rs256({ alg: 'RS256', kid }, k1()), 'token_malformed');
    }
  });

  it('SC-038 refuses an unknown kid signed by EVIL: one refetch per kid per cooldown, a burst of new kids shares one', async () => {
    passCooldown();
    const before = fx.idp.jwksRequests;
    for (let i = 0; i < 5; i++) await expectRefused(rs256({ alg: 'RS256', kid: 'nope' }, evil), 'key_unknown');
    expect(fx.idp.jwksRequests - before).toBe(1); // the kid is remembered as unknown
    const burst = (): Promise<void[]> => Promise.all(Array.from({ length: 10 }, (_, i) => expectRefused(rs256({ alg: 'RS256', kid: `burst-${i}` }, evil), 'key_unknown')));
    await burst(); // waits out the interval, then one refetch for all ten
    expect(fx.idp.jwksRequests - before).toBe(2);
    clock += (COOLDOWN - 2) * 1000; // inside every kid's cooldown: refused without a fetch
    await expectRefused(rs256({ alg: 'RS256', kid: 'nope' }, evil), 'key_unknown');
    await burst();
    expect(fx.idp.jwksRequests - before).toBe(2);
    clock += 3_000; // the cooldown of `nope` has passed: one more refetch (key rotation must still work)
    await expectRefused(rs256({ alg: 'RS256', kid: 'nope' }, evil), 'key_unknown');
    expect(fx.idp.jwksRequests - before).toBe(3);
  });

  it('SC-039 refuses a token naming the known kid k1 but signed by EVIL, without refetching the JWKS', async () => {
    passCooldown();
    const before = fx.idp.jwksRequests;
    await expectRefused(rs256({ alg: 'RS256', kid: 'k1' }, evil), 'signature_invalid');
    expect(fx.idp.jwksRequests).toBe(before);
    // k1 named with an algorithm of another family (ES256, EVIL's EC key): k1 is an RSA key, so no key matches.
    const evilEc = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const input = `${b64({ alg: 'ES256', kid: 'k1' })}.${b64(claims())}`;
    await expectRefused(`${input}.${nodeSign('sha256', Buffer.from(input), { key: evilEc, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`, 'key_unknown');
    // Control: the same header and claims signed by K1 pass.
    const r = await post(rs256({ alg: 'RS256', kid: 'k1' }, k1(), claims({ sub: 'alice' })));
    expect(r.status).toBe(200);
    expect(fx.upstream.received[0]?.headers.get('x-mcp-identity')).toHaveLength(1);
    expect(fx.upstream.received[0]?.headers.has('authorization')).toBe(false);
  });
});
