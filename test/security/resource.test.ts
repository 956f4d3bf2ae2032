import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { AUD, PUBLIC_URL, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { RPC } from '../helpers/rpc.ts';
import { rawExchange, type RawReply } from '../helpers/wire.ts';
import { challengeOf, postTo } from '../helpers/http.ts';

// Cheap refusals for expensive inputs: huge tokens and bodies, slow clients, unknown-kid floods, deep
// JSON. Each must be refused without work proportional to the input and without reaching the upstream.

const PRM = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp`;
const challenge = (error: string, description: string): string =>
  `Bearer resource_metadata="${PRM}", error="${error}", error_description="${description}", scope="mcp:tools"`;

let evilKey: CryptoKey;
const extraGateways: StartedGateway[] = [];

// unknownKidIntervalMs 200: the flood below spans a few intervals, not twenty seconds of them.
const fx = useGatewayFixture({ issuer: { jwks: { unknownKidIntervalMs: 200 } } });
beforeAll(async () => {
  evilKey = (await generateKeyPair('RS256')).privateKey;
});
afterAll(async () => {
  for (const g of extraGateways) await g.close();
});

const raw = (toPort: number, head: string, options: { bodyBytes?: number; maxMs?: number } = {}): Promise<RawReply> =>
  rawExchange(toPort, head, options.maxMs, options.bodyBytes);

async function post(token: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown; ms: number; challenge: string | null }> {
  const started = Date.now();
  const res = await postTo(fx.gw.url + '/mcp', token, { headers, body });
  return { status: res.status, json: JSON.parse(res.text) as unknown, ms: Date.now() - started, challenge: challengeOf(res) };
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('resource exhaustion', () => {
  it('SC-150 refuses a 100 KB bearer token at the parser, and a 12 KB one as too large, without a JWKS fetch', async () => {
    const jwksBefore = fx.idp.jwksRequests;
    fx.upstream.reset();
    const huge = await raw(fx.port, `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${randomBytes(75 * 1024).toString('base64url')}\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n`);
    // Node's header limit (16 KB) answers before any of our code runs: 431, or 400 from our clientError handler.
    expect([400, 431]).toContain(huge.status);
    expect(huge.closedByServer).toBe(true);
    expect(huge.ms).toBeLessThan(1_000);

    // Under the parser's limit but over limits.maxTokenBytes (8 KB): refused on length alone, JWT-shaped or not.
    const header = b64url({ alg: 'RS256', kid: 'k1' });
    const payload = b64url({ iss: fx.idp.issuer, aud: AUD, sub: 'alice', exp: Math.floor(Date.now() / 1000) + 300 });
    for (const token of [randomBytes(9 * 1024).toString('base64url'), `${header}.${payload}.${randomBytes(9 * 1024).toString('base64url')}`]) {
      const reply = await raw(fx.port, `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n`);
      expect(reply.status).toBe(400);
      expect(reply.headers.get('www-authenticate')).toEqual([challenge('invalid_request', 'the bearer token is too large')]);
      expect(JSON.parse(reply.body)).toMatchObject({ reason: 'token_too_large' });
    }
    expect(fx.idp.jwksRequests).toBe(jwksBefore);
    expect(fx.upstream.bytes).toBe(0);
  });

  it('SC-152 refuses a 12 KB signature before any crypto, and a 4 KB one (under the token cap) fast, with no key work beyond k1', async () => {
    const jwksBefore = fx.idp.jwksRequests;
    const good = await fx.idp.token(AUD);
    const [h, p] = good.split('.') as [string, string];
    fx.upstream.reset();
    const twelve = await raw(fx.port, `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${h}.${p}.${randomBytes(12 * 1024).toString('base64url')}\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n`);
    expect([400, 431]).toContain(twelve.status);
    expect(twelve.ms).toBeLessThan(1_000);

    const four = await post(`${h}.${p}.${randomBytes(4 * 1024).toString('base64url')}`, RPC);
    expect(four.status).toBe(401);
    expect(four.json).toMatchObject({ error: 'invalid_token', reason: 'signature_invalid' });
    expect(four.ms).toBeLessThan(1_000);
    expect(fx.idp.jwksRequests).toBe(jwksBefore);
    expect(fx.upstream.bytes).toBe(0);
  });

  it('SC-154 answers an invalid or missing token with 401 and closes the connection without reading a 1 GB body', async () => {
    const invalid = await new SignJWT({ iss: fx.idp.issuer, aud: AUD, sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 300 }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(evilKey);
    const declared = 1024 * 1024 * 1024;
    for (const [auth, reason] of [[`Authorization: Bearer ${invalid}\r\n`, 'signature_invalid'], ['', 'token_missing']] as const) {
      fx.upstream.reset();
      // The client offers up to 256 MB of the declared 1 GB; the server must close long before taking it all.
      const reply = await raw(fx.port, `POST /mcp HTTP/1.1\r\nHost: gw.test\r\n${auth}Content-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`, { bodyBytes: 256 * 1024 * 1024, maxMs: 5_000 });
      expect(reply.status).toBe(401);
      expect(JSON.parse(reply.body)).toMatchObject({ reason });
      expect(reply.headers.get('connection')).toEqual(['close']);
      expect(reply.closedByServer).toBe(true);
      expect(reply.ms).toBeLessThan(3_000);
      expect(reply.bodyBytesWritten).toBeLessThan(256 * 1024 * 1024);
      expect(fx.upstream.bytes).toBe(0);
    }
  });

  it('SC-156 closes a slowloris connection (1 byte every 200 ms) soon after limits.headersTimeoutMs, before any upstream contact', async () => {
    const headersTimeoutMs = 1_000;
    // Started here so that the connection-check timer's phase is the same on every run.
    const slow = await startGateway(twoUpstreamConfig({ issuer: fx.idp.issuer, jwksUri: fx.idp.jwksUri }, fx.upstream.url, {
      root: { limits: { headersTimeoutMs, requestTimeoutMs: 2_000 } },
    }));
    extraGateways.push(slow);
    const good = await fx.idp.token(AUD);
    const request = `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${good}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`;
    fx.upstream.reset();
    const bound = headersTimeoutMs + 3_000;
    const outcome = await new Promise<{ closedAfterMs: number | undefined; answer: string }>((resolve) => {
      const socket = connect(Number(new URL(slow.url).port), '127.0.0.1');
      const started = Date.now();
      let sent = 0;
      let answer = '';
      const drip = setInterval(() => {
        if (sent < request.length && !socket.destroyed) socket.write(request[sent++] as string);
      }, 200);
      const giveUp = setTimeout(() => {
        clearInterval(drip);
        socket.destroy();
        resolve({ closedAfterMs: undefined, answer });
      }, bound + 2_000);
      socket.on('data', (d: Buffer) => {
        answer += d.toString('latin1');
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(drip);
        clearTimeout(giveUp);
        resolve({ closedAfterMs: Date.now() - started, answer });
      });
    });
    expect(outcome.closedAfterMs, 'the gateway kept the slowloris connection open').toBeDefined();
    expect(outcome.closedAfterMs as number).toBeLessThan(bound);
    expect(outcome.answer === '' || /^HTTP\/1\.1 (400|408) /.test(outcome.answer)).toBe(true);
    expect(fx.upstream.bytes).toBe(0);
  }, 30_000);

  it('SC-157 refuses 1,000 tokens with distinct random kids signed by EVIL, with at most one JWKS refetch per unknownKidIntervalMs', async () => {
    const jwksBefore = fx.idp.jwksRequests;
    const started = Date.now();
    const now = Math.floor(Date.now() / 1000);
    const outcomes = new Map<string, number>();
    fx.upstream.reset();
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(Array.from({ length: 50 }, async () => {
        const token = await new SignJWT({ iss: fx.idp.issuer, aud: AUD, sub: 'mallory', scope: 'mcp:tools', iat: now, exp: now + 300 })
          .setProtectedHeader({ alg: 'RS256', kid: `kid-${randomUUID()}` })
          .sign(evilKey);
        const reply = await post(token, RPC);
        const key = `${reply.status} ${(reply.json as { reason?: string }).reason} ${reply.challenge}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }));
    }
    expect(Object.fromEntries(outcomes)).toEqual({ [`401 key_unknown ${challenge('invalid_token', 'the token signing key is not known')}`]: 1_000 });
    // Issue 17 §1: one per interval whatever the kids (was one per cooldown, which starved new keys).
    expect(fx.idp.jwksRequests - jwksBefore).toBeLessThanOrEqual(Math.ceil((Date.now() - started) / 200) + 1);
    expect(fx.upstream.bytes).toBe(0);
    // The flood did not spoil the key cache: a GOOD token still passes.
    expect((await post(await fx.idp.token(AUD), RPC)).status).toBe(200);
  }, 60_000);

  it('SC-159 refuses a 100,000-element batch and 100,000-deep nesting quickly with 400, and keeps serving', async () => {
    const good = await fx.idp.token(AUD);
    const bodies = [
      '[' + Array.from({ length: 100_000 }, () => '1').join(',') + ']',
      '['.repeat(100_000) + ']'.repeat(100_000),
      '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000),
    ];
    for (const body of bodies) {
      for (const version of [undefined, '2025-06-18']) {
        fx.upstream.reset();
        const reply = await post(good, body, version === undefined ? {} : { 'mcp-protocol-version': version });
        expect(reply.status).toBe(400);
        expect(reply.json).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600 } });
        expect((reply.json as { error: { data: { reason: string } } }).error.data.reason).toMatch(/^(rpc_invalid|batch_not_allowed)$/);
        expect(reply.ms).toBeLessThan(2_000);
        expect(fx.upstream.bytes).toBe(0);
      }
    }
    expect((await post(good, RPC)).status).toBe(200);
  });
});
