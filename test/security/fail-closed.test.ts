import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { postTo } from '../helpers/http.ts';
import type { Reply } from '../helpers/wire.ts';

let idp: TestIdp;
let upstream: TestUpstream;
beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
});
afterAll(async () => {
  await upstream?.close();
  await idp?.close();
});

const post = (g: StartedGateway, token: string | undefined, path = '/mcp'): Promise<Reply> => postTo(g.url + path, token);

describe('fail closed', () => {
  it('SC-177 a JWK that cannot be imported refuses the token (401), the process stays up, a good key still works', async () => {
    const bad = await TestIdp.start();
    try {
      // k1 is published with a broken modulus; k2 is sound.
      const k1 = bad.keys.get('k1');
      if (k1 !== undefined) (k1.publicJwk as { n?: string }).n = '!!!';
      await bad.addKey('k2', 'ES256');
      const gw = await startGateway(twoUpstreamConfig({ issuer: bad.issuer, jwksUri: bad.jwksUri }, upstream.url));
      try {
        upstream.reset();
        const refused = await post(gw, await bad.token(AUD, {}, { kid: 'k1' }));
        expect(refused.status).toBe(401);
        expect(JSON.parse(refused.text)).toMatchObject({ error: 'invalid_token' });
        expect(upstream.bytes).toBe(0);
        expect((await post(gw, await bad.token(AUD, {}, { kid: 'k2' }))).status).toBe(200);
      } finally {
        await gw.close();
      }
    } finally {
      await bad.close();
    }
  });

  it('SC-178 upstream refusing connections → 502, hanging → 504; never retried elsewhere, nothing internal leaked', async () => {
    // A port that was just free: connection refused.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const deadPort = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, {
      mcp: { target: `http://127.0.0.1:${deadPort}/mcp` },
      other: { target: `${upstream.url}/slow`, timeoutMs: 300 },
    }));
    try {
      upstream.reset();
      const down = await post(gw, await idp.token(AUD));
      expect(down.status).toBe(502);
      expect(JSON.parse(down.text)).toEqual({ error: 'bad_gateway', error_description: 'the upstream server is unavailable', reason: 'upstream_unavailable' });
      expect(down.text).not.toContain(String(deadPort));
      expect(down.text).not.toContain('127.0.0.1');
      expect(upstream.received).toHaveLength(0); // not retried against another upstream

      upstream.slowMs = 5_000;
      const slow = await post(gw, await idp.token(`https://gw.test/other-mcp`), '/other-mcp');
      expect(slow.status).toBe(504);
      expect(JSON.parse(slow.text).reason).toBe('upstream_timeout');
      expect(slow.text).not.toMatch(/x-mcp-identity|eyJ/i);
    } finally {
      await gw.close();
    }
  });

  it('SC-179 no refusal leaks the token, key material, a stack trace or the upstream URL', async () => {
    const gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url));
    try {
      const good = await idp.token(AUD);
      const cases = [
        await post(gw, undefined),
        await post(gw, 'garbage.garbage.garbage'),
        await post(gw, await idp.token('https://gw.test/elsewhere')),
        await post(gw, await idp.token(AUD, { scope: 'nothing' })),
        await post(gw, good + 'x'),
      ];
      for (const c of cases) {
        expect([401, 403]).toContain(c.status);
        const everything = c.text + JSON.stringify(c.headers);
        expect(everything).not.toContain(good.slice(0, 40));
        expect(everything).not.toContain(upstream.url);
        expect(everything).not.toMatch(/\bat .*\.ts:\d+|Error:|"n":|"kty"/);
      }
      for (const line of gw.logs) expect(line).not.toContain(good.split('.')[2] as string);
    } finally {
      await gw.close();
    }
  });
});
