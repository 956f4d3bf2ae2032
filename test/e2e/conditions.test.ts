import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, PUBLIC_URL, startGateway, type StartedGateway } from '../helpers/gateway.ts';

let idp: TestIdp;
let upstream: TestUpstream;
let gw: StartedGateway;

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start({ jsonResponse: true });
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    publicUrl: PUBLIC_URL,
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], clockSkewSeconds: 0 }],
    upstreams: [{
      name: 'mcp', path: '/mcp', target: `${upstream.url}/mcp`, issuers: ['idp'], scopes: ['mcp:tools'], default: 'deny',
      rules: [
        { method: 'tools/list' },
        { method: 'tools/call', tool: 'read_file', when: 'args.path.startsWith("/docs/") && "readers" in claims.groups' },
      ],
    }],
    identity: { signingKeyFile: 'gateway.jwk' },
  });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await idp?.close();
});

async function read(token: string, id: number, args: unknown): Promise<{ status: number; body: unknown }> {
  const res = await request(`${gw.url}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'read_file', arguments: args } }),
  });
  return { status: res.statusCode, body: await res.body.json() };
}

const decisions = (): Record<string, unknown>[] =>
  gw.logs.flatMap((l) => l.split('\n')).filter((l) => l.includes('"event":"decision"')).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('CEL conditions through the gateway', () => {
  it('forwards a call whose arguments and claims meet the condition, and audits the rule and expression id', async () => {
    const token = await idp.token(AUD, { scope: 'mcp:tools', groups: ['readers'] });
    upstream.reset();
    const ok = await read(token, 1, { path: '/docs/readme.md' });
    expect(ok.status).toBe(200);
    expect(JSON.stringify(ok.body)).toContain('contents of /docs/readme.md');
    expect(upstream.calls()).toEqual(['tools/call:read_file']);
    const line = decisions().at(-1);
    expect(line).toMatchObject({ decision: 'allow', rule: 'rules[1]', target: 'read_file' });
    expect(line?.['condition']).toMatch(/^cel:[0-9a-f]{12}$/);
    expect(JSON.stringify(line)).not.toContain('/docs/readme.md');
  });

  it('refuses a call whose argument falls outside the condition; the upstream receives nothing', async () => {
    const token = await idp.token(AUD, { scope: 'mcp:tools', groups: ['readers'] });
    upstream.reset();
    const denied = await read(token, 2, { path: '/etc/shadow' });
    expect(denied.status).toBe(403);
    expect(denied.body).toEqual({ jsonrpc: '2.0', id: 2, error: { code: -32003, message: 'the policy does not allow this call', data: { reason: 'policy_denied' } } });
    expect(upstream.received).toEqual([]);
  });

  it('refuses a caller whose claims fall outside the condition', async () => {
    const token = await idp.token(AUD, { scope: 'mcp:tools', groups: ['writers'] });
    upstream.reset();
    expect((await read(token, 3, { path: '/docs/readme.md' })).status).toBe(403);
    expect(upstream.received).toEqual([]);
  });

  it('fails closed when the condition errors (a missing argument), logging the fault, never the arguments', async () => {
    const token = await idp.token(AUD, { scope: 'mcp:tools', groups: ['readers'] });
    upstream.reset();
    const denied = await read(token, 4, { file: '/docs/very-secret-name' });
    expect(denied.status).toBe(403);
    expect(denied.body).toEqual({ jsonrpc: '2.0', id: 4, error: { code: -32003, message: 'the policy could not evaluate a condition for this call', data: { reason: 'condition_error' } } });
    expect(upstream.received).toEqual([]);
    const line = decisions().at(-1);
    expect(line).toMatchObject({ decision: 'deny', reason: 'condition_error', rule: 'rules[1]', conditionFault: 'no_such_field at column 5' });
    expect(gw.logs.join('')).not.toContain('very-secret-name');
  });
});
