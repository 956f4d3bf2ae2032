import { beforeEach, describe, expect, it } from 'vitest';
import { KeyObject, sign as nodeSign } from 'node:crypto';
import { generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { RPC } from '../helpers/rpc.ts';
import { rawRequest } from '../helpers/raw.ts';
import { AUD, PUBLIC_URL } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { bearerProbe, expectNothingForwarded, invalidTokenChallenge } from '../helpers/refused.ts';
import { reasons } from '../../src/reasons.ts';

// security-cases.md, category token-format (SC-001..018): what a bearer value must look like before any
// key is touched. K1 = the IdP's RS256 key (kid k1). Every hostile token that carries a signature is
// genuinely signed by K1, so the only thing wrong with it is the property under test.

const PRM = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp`;
const INITIALIZE = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sc","version":"1"}}}';
/** A kid the IdP does not publish: resolving it would force a JWKS refetch, so "no fetch" proves "no key lookup". */
const PROBE_KID = 'probe-unknown-kid';

let clock = Math.floor(Date.now() / 1000) * 1000;
const nowS = (): number => Math.floor(clock / 1000);

// cooldownSeconds 1: an unknown kid may force a refetch after every armKeyLookup().
const fx = useGatewayFixture({ issuer: { jwks: { cooldownSeconds: 1 } }, now: () => clock });
beforeEach(() => fx.upstream.reset());

const b64 = (v: string | Buffer): string => Buffer.from(v).toString('base64url');
const claims = (extra: JWTPayload = {}): JWTPayload =>
  ({ iss: fx.idp.issuer, aud: AUD, sub: 'alice', client_id: 'test-client', scope: 'mcp:tools', iat: nowS(), exp: nowS() + 300, jti: `j-${Math.random()}`, ...extra });
const good = (extra: JWTPayload = {}): Promise<string> => fx.idp.sign(claims(extra));
const k1 = (): KeyObject => KeyObject.from((fx.idp.keys.get('k1') as { privateKey: CryptoKey }).privateKey);
/** RS256 over exactly these header and payload bytes, with K1: a genuine signature on a hostile shape. */
function signRaw(headerJson: string, payload: string | Buffer): string {
  const input = `${b64(headerJson)}.${b64(payload)}`;
  return `${input}.${nodeSign('sha256', Buffer.from(input), k1()).toString('base64url')}`;
}
/** Moves the clock past the refetch cooldown: any key lookup for an unknown kid would now fetch the JWKS. */
function armKeyLookup(): void {
  clock += 2_000;
}
const { post, expectRefused, expectForwarded } = bearerProbe(fx, { now: () => clock });

interface RawReply { readonly status: number; readonly headers: ReadonlyMap<string, string>; readonly body: string }
async function rawPost(headerLines: string, body = RPC): Promise<RawReply> {
  const port = Number(new URL(fx.gw.url).port);
  const text = await rawRequest(port, `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n${headerLines}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  const [head = '', ...rest] = text.split('\r\n\r\n');
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n').slice(1)) headers.set(line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim());
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), headers, body: rest.join('\r\n\r\n') };
}

describe('token format (RFC 6750 §2.1, RFC 7515 §7.1, RFC 7519 §7.2)', () => {
  it('SC-001 answers a request without Authorization with 401, resource_metadata and no error code; nothing forwarded', async () => {
    const before = fx.idp.jwksRequests;
    const r = await post(undefined, '/mcp', INITIALIZE);
    expect(r.status).toBe(401);
    expect(r.challenge).toBe(`Bearer resource_metadata="${PRM}", scope="mcp:tools"`);
    expect(r.body).toEqual({ error: 'unauthorized', error_description: reasons.token_missing.description, reason: 'token_missing' });
    expectNothingForwarded(fx.upstream);
    expect(fx.idp.jwksRequests).toBe(before);
  });

  it('SC-002 refuses "Bearer" with no token, and with only a trailing space, before any key lookup', async () => {
    armKeyLookup();
    const before = fx.idp.jwksRequests;
    for (const line of ['Authorization: Bearer\r\n', 'Authorization: Bearer \r\n', 'Authorization: Bearer  \r\n']) {
      const r = await rawPost(line);
      expect(r.status, line).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe(invalidTokenChallenge('token_malformed'));
      expect((JSON.parse(r.body) as { reason: string }).reason).toBe('token_malformed');
    }
    expect(fx.upstream.bytes).toBe(0);
    expect(fx.idp.jwksRequests).toBe(before);
  });

  it('SC-003 refuses "Bearer not-a-jwt" without a JWKS fetch', async () => {
    armKeyLookup();
    const before = fx.idp.jwksRequests;
    await expectRefused('not-a-jwt', 'token_malformed');
    expect(fx.idp.jwksRequests).toBe(before);
  });

  it('SC-004 refuses a two-segment token (no signature segment) without a key lookup', async () => {
    armKeyLookup();
    const before = fx.idp.jwksRequests;
    await expectRefused(`${b64(`{"alg":"RS256","kid":"${PROBE_KID}"}`)}.${b64(JSON.stringify(claims()))}`, 'token_malformed');
    await expectRefused(`${b64('{"alg":"RS256","kid":"k1"}')}.${b64(JSON.stringify(claims()))}`, 'token_malformed');
    expect(fx.idp.jwksRequests).toBe(before);
    // Control: the same header with a signature segment does look the kid up (one refetch), so the
    // unchanged count above means the two-segment form never reached key selection.
    await expectRefused(signRaw(`{"alg":"RS256","kid":"${PROBE_KID}"}`, JSON.stringify(claims())), 'key_unknown');
    expect(fx.idp.jwksRequests).toBe(before + 1);
  });

  it('SC-005 refuses a four-segment token, even when its first three segments are a valid token', async () => {
    armKeyLookup();
    const before = fx.idp.jwksRequests;
    const valid = await good();
    const [, , sig] = valid.split('.') as [string, string, string];
    await expectRefused(`${valid}.${sig}`, 'token_malformed');
    await expectRefused(`${signRaw(`{"alg":"RS256","kid":"${PROBE_KID}"}`, JSON.stringify(claims()))}.e30`, 'token_malformed');
    expect(fx.idp.jwksRequests).toBe(before);
  });

  it('SC-006 refuses the JWS JSON serialisation of a valid token, raw and base64url-encoded', async () => {
    armKeyLookup();
    const before = fx.idp.jwksRequests;
    const [h, p, s] = (await good()).split('.') as [string, string, string];
    const flattened = JSON.stringify({ protected: h, payload: p, signature: s });
    const general = JSON.stringify({ payload: p, signatures: [{ protected: h, signature: s }] });
    for (const carried of [flattened, general, b64(flattened), b64(general)]) await expectRefused(carried, 'token_malformed');
    expect(fx.idp.jwksRequests).toBe(before);
  });

  it('SC-007 refuses a valid token re-spelt with padding or the standard base64 alphabet', async () => {
    // A token whose payload and signature both contain base64url-only characters, so each can be re-spelt
    // ("~~~" in a claim always yields one "-" or "_"; a 256-byte signature almost always has one).
    let valid = await good({ note: '~~~' });
    for (let i = 0; i < 20 && !/[-_]/.test(valid.split('.')[2] as string); i++) valid = await good({ note: '~~~' });
    const [h, p, s] = valid.split('.') as [string, string, string];
    expect(h).toBe('eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0');
    expect(p).toMatch(/[-_]/);
    expect(s).toMatch(/[-_]/);
    const std = (seg: string): string => seg.replace(/-/g, '+').replace(/_/g, '/');
    await expectForwarded(valid);
    fx.upstream.reset();
    for (const respelt of [`${h}=.${p}.${s}`, `${h}.${p}==.${s}`, `${h}.${p}.${s}=`, `${h}.${std(p)}.${s}`, `${h}.${p}.${std(s)}`, `${h}.${std(p)}.${std(s)}`]) {
      await expectRefused(respelt, 'token_malformed');
    }
    // RFC 4648 §3.5: the last character of a 256-byte signature carries 4 unused bits. Setting one gives a
    // second spelling of the same signature bytes; only the canonical one is accepted.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const loose = s.slice(0, -1) + alphabet[alphabet.indexOf(s.slice(-1)) | 1];
    expect(loose).not.toBe(s);
    expect(Buffer.from(loose, 'base64url')).toEqual(Buffer.from(s, 'base64url'));
    await expectRefused(`${h}.${p}.${loose}`, 'token_malformed');
  });

  it('SC-008 refuses a K1-signed payload that is JSON but not an object ("admin", [], null, 123)', async () => {
    for (const payload of ['"admin"', '[]', 'null', '123', 'true', `[${JSON.stringify(claims())}]`]) {
      await expectRefused(signRaw('{"alg":"RS256","kid":"k1"}', payload), 'token_malformed');
    }
  });

  it('SC-009 refuses a K1-signed payload that is not UTF-8 or not JSON, without a 500, and keeps serving', async () => {
    // A well-formed claims object whose sub holds the invalid sequence: a lenient decoder would turn it into
    // U+FFFD, so different byte strings would name the same subject.
    const [before, after] = JSON.stringify(claims({ sub: 'HOLE' })).split('HOLE') as [string, string];
    const utf8Hole = Buffer.concat([Buffer.from(before), Buffer.from([0xc3, 0x28]), Buffer.from(after)]);
    for (const payload of [Buffer.from([0xc3, 0x28]), Buffer.from('{"sub":"alice"'), Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), utf8Hole]) {
      await expectRefused(signRaw('{"alg":"RS256","kid":"k1"}', payload), 'token_malformed');
    }
    // A header that is not UTF-8 either.
    await expectRefused(`${b64(Buffer.concat([Buffer.from('{"alg":"RS256","kid":"k1'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]))}.${b64(JSON.stringify(claims()))}.${b64('sig')}`, 'token_malformed');
    await expectForwarded(await good());
  });

  it('SC-010 refuses a K1-signed token whose crit names an extension the gateway does not understand', async () => {
    const payload = JSON.stringify(claims({ sub: 'admin' }));
    for (const header of [
      '{"alg":"RS256","kid":"k1","crit":["x-bork"],"x-bork":1}',
      '{"alg":"RS256","kid":"k1","crit":["x-bork"]}', // listed but absent
      '{"alg":"RS256","kid":"k1","crit":[]}', // RFC 7515 §4.1.11: MUST NOT be empty
      '{"alg":"RS256","kid":"k1","crit":["kid"]}', // nor name a registered parameter
      '{"alg":"RS256","kid":"k1","crit":"x-bork","x-bork":1}', // nor be anything but an array
    ]) {
      await expectRefused(signRaw(header, payload), 'token_malformed');
    }
  });

  it('SC-011 refuses an unencoded-payload JWS (b64:false), however its payload is spelt', async () => {
    const header = '{"alg":"RS256","kid":"k1","b64":false,"crit":["b64"]}';
    const encodedPayload = b64(JSON.stringify(claims({ sub: 'admin' })));
    // RFC 7797 §3: the signing input is the payload as sent. Here that text is also the base64url of valid
    // claims, so this one signature is valid under both readings: a verifier that honours b64:false and
    // then decodes the claims the usual way would accept it.
    const input = `${b64(header)}.${encodedPayload}`;
    await expectRefused(`${input}.${nodeSign('sha256', Buffer.from(input), k1()).toString('base64url')}`, 'token_malformed');
    // The raw JSON payload in the compact form (RFC 7797 §5.2) is not even a compact JWT.
    const rawInput = `${b64(header)}.${JSON.stringify(claims())}`;
    await expectRefused(`${rawInput}.${nodeSign('sha256', Buffer.from(rawInput), k1()).toString('base64url')}`, 'token_malformed');
  });

  it('SC-012 never unwraps a nested JWT: a K1-signed outer token carrying an EVIL-signed inner one is refused', async () => {
    const evil = await generateKeyPair('RS256');
    const inner = await new SignJWT(claims({ sub: 'admin', scope: 'mcp:tools admin' })).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(evil.privateKey);
    await expectRefused(signRaw('{"alg":"RS256","kid":"k1","cty":"JWT"}', inner), 'token_malformed');
    await expectRefused(signRaw('{"alg":"RS256","kid":"k1","cty":"JWT"}', JSON.stringify(inner)), 'token_malformed');
    // Even an inner token signed by K1 itself is not unwrapped: the outer claims set is what counts.
    const innerK1 = await good({ sub: 'admin' });
    await expectRefused(signRaw('{"alg":"RS256","kid":"k1","cty":"JWT"}', innerK1), 'token_malformed');
  });

  it('SC-015 refuses duplicate header keys whose last value is alg:none, signed or not', async () => {
    const header = '{"alg":"RS256","kid":"k1","alg":"none"}';
    const payload = JSON.stringify(claims({ sub: 'admin' }));
    await expectRefused(`${b64(header)}.${b64(payload)}.`, 'token_malformed');
    // With a genuine K1 RS256 signature: the lexically last alg (RFC 7515 §4) is none, never allowed.
    await expectRefused(signRaw(header, payload), 'alg_not_allowed');
  });

  it('SC-018 refuses a bearer header folded onto a second line that forges an identity header (400 from the parser)', async () => {
    const token = await good();
    for (const fold of [
      `Authorization: Bearer ${token}\r\n X-Identity-Assertion: forged\r\n`,
      `Authorization: Bearer ${token}\r\n\tX-MCP-Identity: forged\r\n`,
      `Authorization: Bearer ${token}\r\n X-MCP-Identity: forged\r\n`,
    ]) {
      const r = await rawPost(fold);
      expect(r.status).toBe(400);
      expect(r.headers.get('connection')).toBe('close');
    }
    expectNothingForwarded(fx.upstream);
    // The same token on one line is accepted: the fold alone caused the refusal.
    await expectForwarded(token);
  });
});
