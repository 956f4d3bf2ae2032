import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, type StartedGateway } from '../helpers/gateway.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';
import { client, PUSH_SECRET, SESSION_REVOKED, TestTransmitter, startRevocationFixture, type RevocationFixture } from '../helpers/transmitter.ts';

// Issue 21 §2 attacked: the push secret leaked, the operator rotates its file and reloads. The YAML is
// unchanged, so the reload must still read the secret again: the leaked one may not keep working.

let idp: TestIdp;
let upstream: TestUpstream;
let tx: TestTransmitter;
let gw: StartedGateway;
let dir: string;
let fixture: RevocationFixture | undefined;

beforeAll(async () => {
  fixture = await startRevocationFixture('mcp-warden-secret-rotation-');
  ({ idp, upstream, tx, gw, dir } = fixture);
});
afterAll(() => fixture?.close());

async function push(token: string, secret: string): Promise<number> {
  const res = await request(`${gw.adminUrl}/ssf/push/idp`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/secevent+jwt' }, body: token });
  await res.body.dump();
  return res.statusCode;
}

async function call(token: string): Promise<number> {
  const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${token}` }, body: RPC });
  await res.body.dump();
  return res.statusCode;
}

describe('rotating the push secret file', () => {
  it('a reload with the same YAML refuses the old secret (401, nothing applied) and accepts the new one', async () => {
    const rotated = 'rotated-push-secret-of-at-least-thirty-two';
    writeFileSync(join(dir, 'push.secret'), `${rotated}\n`);
    expect(await gw.gateway.reloadFromFile()).toBe(true);
    const token = await idp.token(AUD, { sub: 'agent-9', client_id: 'leaky-agent' });
    expect(await call(token)).toBe(200);
    const leaked = await tx.set(SESSION_REVOKED, { subject: client('leaky-agent'), event_timestamp: Math.floor(Date.now() / 1000) });
    expect(await push(leaked.token, PUSH_SECRET)).toBe(401);
    expect(await call(token)).toBe(200);
    expect(await push(leaked.token, rotated)).toBe(202);
    expect(await call(token)).toBe(401);
    expect(upstream.received).toHaveLength(2);
  });
});
