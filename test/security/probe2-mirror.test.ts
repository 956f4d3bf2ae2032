import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { StatelessUpstream } from '../helpers/stateless-upstream.ts';
import { AUD, AUD_OTHER, PUBLIC_URL, startGateway, type StartedGateway } from '../helpers/gateway.ts';

// Review probes (wip-review2): Mcp-Param-* headers that do not mirror the body, yet reach the upstream.
// README "Protocol eras": "Before 2026-07-28 the headers are optional, and checked when sent";
// a 2026-07-28 call whose Mcp-Param-* headers differ from its arguments must be refused (-32020).

const V = '2026-07-28';
let idp: TestIdp;
let up: StatelessUpstream;
let gw: StartedGateway;

beforeAll(async () => {
  idp = await TestIdp.start();
  up = await StatelessUpstream.start();
  const issuers = ['idp'];
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    publicUrl: PUBLIC_URL,
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], clockSkewSeconds: 0 }],
    upstreams: [
      // Filters listings (rules): learns the x-mcp-header marks.
      { name: 'mcp', path: '/mcp', target: up.url, issuers, scopes: ['mcp:tools'], default: 'deny', tools: [{ name: 'search' }], rules: [{ method: 'tools/list' }] },
      // A plain upstream: scopes only, default allow, no rules, no pinning.
      { name: 'open', path: '/other-mcp', target: up.url, issuers, scopes: ['mcp:tools'] },
    ],
    identity: { signingKeyFile: 'gateway.jwk' },
  });
});
afterAll(async () => {
  await gw?.close();
  await up?.close();
  await idp?.close();
});

const meta = (v: string): Record<string, unknown> => ({ 'io.modelcontextprotocol/protocolVersion': v, 'io.modelcontextprotocol/clientCapabilities': {} });

async function postRaw(path: string, token: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await request(gw.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, ...headers },
    body,
  });
  return { status: res.statusCode, text: await res.body.text() };
}
const list = async (path: string, aud: string): Promise<void> => {
  const a = await postRaw(path, await idp.token(aud), JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: meta(V) } }), { 'mcp-protocol-version': V, 'mcp-method': 'tools/list' });
  expect(a.status).toBe(200);
  expect(a.text).toContain('x-mcp-header');
};
const callBody = (id: number, args: string, v: string | undefined): string =>
  `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"search","arguments":${args}${v === undefined ? '' : `,"_meta":${JSON.stringify(meta(v))}`}}}`;

describe('probe2: Mcp-Param-* mirror escapes', () => {
  it('control: on the filtering upstream a 2026 call whose Mcp-Param-Region lies is refused, nothing forwarded', async () => {
    await list('/mcp', AUD);
    up.reset();
    const a = await postRaw('/mcp', await idp.token(AUD), callBody(5, '{"region":"us-west1"}', V), {
      'mcp-protocol-version': V, 'mcp-method': 'tools/call', 'mcp-name': 'search', 'mcp-param-region': 'eu-west1',
    });
    expect(a.status).toBe(400);
    expect(up.bytes).toBe(0);
  });

  // Not a refusal by design (issue 16): on an upstream whose listings the gateway never parses it
  // learns no x-mcp-header marks, and unknown annotations are forwarded and left to the upstream,
  // which the spec obliges to check them (README "Protocol eras").

  it('a 2025-11-25 call that sends Mcp-Param-Region unlike its argument is refused, not forwarded (headers are checked when sent)', async () => {
    await list('/mcp', AUD);
    up.reset();
    const a = await postRaw('/mcp', await idp.token(AUD), callBody(3, '{"region":"us-west1"}', undefined), {
      'mcp-protocol-version': '2025-11-25', 'mcp-param-region': 'eu-west1',
    });
    expect(up.bytes).toBe(0);
    expect(a.status).toBe(400);
  });

  it('a 2026 call whose integer argument is beyond 2^53 is not "mirrored" by a header naming another integer', async () => {
    await list('/mcp', AUD);
    up.reset();
    // 9007199254740993 and 9007199254740992 are one double: JSON.parse cannot tell them apart, an upstream with big ints can.
    const a = await postRaw('/mcp', await idp.token(AUD), callBody(4, '{"region":"us","limit":9007199254740993}', V), {
      'mcp-protocol-version': V, 'mcp-method': 'tools/call', 'mcp-name': 'search', 'mcp-param-region': 'us', 'mcp-param-limit': '9007199254740992',
    });
    expect(up.bytes).toBe(0);
    expect(a.status).toBe(400);
  });
});
