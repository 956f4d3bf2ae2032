import { readFileSync } from 'node:fs';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PUBLIC_URL, startGateway } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { expectRefusedReply } from '../helpers/refused.ts';
import { dpopKey, proofFor, type DpopKey } from '../helpers/dpop.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';
import { reasons } from '../../src/reasons.ts';

// RFC 9449 §8 / §9 server nonces: dpop.nonce configured, so every proof must carry the nonce the gateway
// handed out (current or previous period). The gateway's clock is moved to cross rotations.

const PATH = '/dpop-mcp';
const HTU = `${PUBLIC_URL}${PATH}`;
const ROTATION_S = 60;
let offsetMs = 0;
const clock = (): number => Date.now() + offsetMs;

const fx = useGatewayFixture({
  config: (config, _idp, upstream) => {
    (config['upstreams'] as unknown[]).push({ name: 'dpop', path: PATH, target: `${upstream.url}/echo/dpop`, issuers: ['idp'], scopes: ['mcp:tools'], senderConstraint: 'dpop' });
    return { ...config, dpop: { nonce: { rotationSeconds: ROTATION_S } } };
  },
  now: clock,
});
beforeEach(() => {
  fx.upstream.reset();
  offsetMs = 0;
});

let key: DpopKey;
beforeAll(async () => {
  key = await dpopKey('EdDSA');
});

const NONCE_CHALLENGE = `DPoP resource_metadata="${PUBLIC_URL}/.well-known/oauth-protected-resource${PATH}", error="use_dpop_nonce", error_description="${reasons.dpop_nonce_required.description}", scope="mcp:tools", algs="ES256 EdDSA PS256 RS256"`;

async function send(token: string, nonce: string | undefined): Promise<Reply> {
  const proof = await proofFor(key, { htm: 'POST', htu: HTU, token, iat: Math.floor(clock() / 1000), ...(nonce === undefined ? {} : { nonce }) });
  return sendExact(fx.port, 'POST', PATH, [...Object.entries(MCP_POST_HEADERS), ['Authorization', `DPoP ${token}`], ['DPoP', proof]], RPC);
}

function expectNonceRefusal(reply: Reply): string {
  expectRefusedReply(fx.upstream, reply, 401, 'dpop_nonce_required', NONCE_CHALLENGE);
  const nonce = reply.headers['dpop-nonce'];
  expect(nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
  return nonce as string;
}

describe('DPoP server nonces (RFC 9449 §8)', () => {
  it('asks for a nonce, accepts it on the retry, and refuses a made-up one', async () => {
    const token = await fx.idp.token(HTU, { cnf: { jkt: key.jkt } });
    const nonce = expectNonceRefusal(await send(token, undefined));
    const ok = await send(token, nonce);
    expect(ok.status, ok.text).toBe(200);
    expect(fx.upstream.received).toHaveLength(1);
    fx.upstream.reset();
    expect(expectNonceRefusal(await send(token, 'A'.repeat(22)))).toBe(nonce);
  });

  it('accepts the previous period’s nonce after one rotation and hands out a new one after two', async () => {
    const token = await fx.idp.token(HTU, { cnf: { jkt: key.jkt } });
    const nonce = expectNonceRefusal(await send(token, undefined));
    offsetMs = ROTATION_S * 1000;
    expect((await send(token, nonce)).status).toBe(200);
    fx.upstream.reset();
    offsetMs = 2 * ROTATION_S * 1000;
    const fresh = expectNonceRefusal(await send(token, nonce));
    expect(fresh).not.toBe(nonce);
    expect((await send(token, fresh)).status).toBe(200);
  });

  it('lets a browser client send DPoP and read DPoP-Nonce (CORS preflight and refusal)', async () => {
    const preflight = await sendExact(fx.port, 'OPTIONS', PATH, [['Origin', PUBLIC_URL], ['Access-Control-Request-Method', 'POST'], ['Access-Control-Request-Headers', 'authorization, dpop, content-type']]);
    expect(String(preflight.headers['access-control-allow-headers']).split(', ')).toContain('dpop');
    const token = await fx.idp.token(HTU, { cnf: { jkt: key.jkt } });
    const proof = await proofFor(key, { htm: 'POST', htu: HTU, token, iat: Math.floor(clock() / 1000) });
    const reply = await sendExact(fx.port, 'POST', PATH, [['Origin', PUBLIC_URL], ...Object.entries(MCP_POST_HEADERS), ['Authorization', `DPoP ${token}`], ['DPoP', proof]], RPC);
    expectNonceRefusal(reply);
    expect(String(reply.headers['access-control-expose-headers']).split(', ')).toEqual(expect.arrayContaining(['www-authenticate', 'dpop-nonce']));
  });

  it('gives the same nonce from a second gateway sharing the key file (stateless, replicas agree)', async () => {
    const token = await fx.idp.token(HTU, { cnf: { jkt: key.jkt } });
    const nonce = expectNonceRefusal(await send(token, undefined));
    const config = parse(readFileSync(fx.gw.configFile, 'utf8')) as Record<string, unknown>;
    const twin = await startGateway(config, { now: clock });
    try {
      const proof = await proofFor(key, { htm: 'POST', htu: HTU, token, nonce });
      const reply = await sendExact(Number(new URL(twin.url).port), 'POST', PATH, [...Object.entries(MCP_POST_HEADERS), ['Authorization', `DPoP ${token}`], ['DPoP', proof]], RPC);
      expect(reply.status, reply.text).toBe(200);
    } finally {
      await twin.close();
    }
  });
});
