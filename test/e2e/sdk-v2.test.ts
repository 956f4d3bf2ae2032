import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { TestIdp } from '../helpers/idp.ts';
import { V2Upstream } from '../helpers/sdk-v2.ts';
import { AUD, PUBLIC_URL, startGateway, type StartedGateway } from '../helpers/gateway.ts';

// The MCP TypeScript SDK v2 (the packages real 2026-07-28 clients are built on) on both ends: the same
// calls made direct and through the gateway, pinned to 2026-07-28 and to the 2025-11-25 era.

let idp: TestIdp;
let up: V2Upstream;
let gw: StartedGateway;

beforeAll(async () => {
  // The SDK warns (console) about the non-ASCII tool name this suite needs on purpose.
  vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  idp = await TestIdp.start();
  up = await V2Upstream.start();
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    publicUrl: PUBLIC_URL,
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], clockSkewSeconds: 0 }],
    upstreams: [{
      name: 'mcp', path: '/mcp', target: up.url, issuers: ['idp'], scopes: ['mcp:tools'], default: 'deny',
      tools: [{ name: 'search' }, { name: 'gr*' }, { name: 'confirm_*' }, { name: 'slow_*' }],
      rules: [{ method: 'tools/list' }, { method: 'resources/list' }, { method: 'resources/read', resource: 'file:///docs/' }],
    }],
    identity: { signingKeyFile: 'gateway.jwk' },
  });
});
afterAll(async () => {
  await gw?.close();
  await up?.close();
  await idp?.close();
});

type Era = '2026-07-28' | 'legacy';
async function connect(url: string, token: string | undefined, pin: Era): Promise<Client> {
  const client = new Client({ name: 'era-test', version: '1.0.0' }, {
    capabilities: { elicitation: {} },
    ...(pin === 'legacy' ? {} : { versionNegotiation: { mode: { pin } } }),
  });
  client.setRequestHandler('elicitation/create', () => ({ action: 'accept', content: { confirm: true } }));
  const transport = new StreamableHTTPClientTransport(new URL(url), token === undefined ? {} : { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return client;
}

describe('SDK v2 client pinned to 2026-07-28', () => {
  it('discovers, lists and calls the same way direct and through the gateway (filtered there)', async () => {
    const direct = await connect(up.url, undefined, '2026-07-28');
    const through = await connect(`${gw.url}/mcp`, await idp.token(AUD), '2026-07-28');
    try {
      const d = await direct.listTools();
      const t = await through.listTools();
      expect(d.tools.map((x) => x.name).sort()).toEqual(['confirm_reset', 'delete_repo', 'grüße', 'search', 'slow_count']);
      expect(t.tools.map((x) => x.name).sort()).toEqual(['confirm_reset', 'grüße', 'search', 'slow_count']);
      for (const c of [direct, through]) {
        expect(await c.callTool({ name: 'search', arguments: { region: 'Zürich', q: 'x' } })).toMatchObject({ content: [{ text: 'results for x in Zürich' }] });
        expect(await c.callTool({ name: 'grüße', arguments: {} })).toMatchObject({ content: [{ text: 'hallo' }] });
      }
      const calls = up.received.filter((r) => r.body.includes('"tools/call"'));
      // What the client sent through the gateway arrived as sent: the encoded name, the mirrored parameter.
      expect(calls.at(-1)?.headers.get('mcp-name')).toEqual([`=?base64?${Buffer.from('grüße').toString('base64')}?=`]);
      expect(calls.at(-2)?.headers.get('mcp-param-region')).toEqual([`=?base64?${Buffer.from('Zürich').toString('base64')}?=`]);
    } finally {
      await direct.close();
      await through.close();
    }
  });
});

describe.each(['2026-07-28', 'legacy'] as const)('SDK v2 client (%s era): the same calls direct and through the gateway', (era) => {
  async function both<T>(run: (c: Client) => Promise<T>): Promise<[T, T]> {
    const direct = await connect(up.url, undefined, era);
    const through = await connect(`${gw.url}/mcp`, await idp.token(AUD), era);
    try {
      return [await run(direct), await run(through)];
    } finally {
      await direct.close();
      await through.close();
    }
  }

  it('a tool that needs the user\'s input (multi round-trip on 2026-07-28, elicitation before) completes alike', async () => {
    const [d, t] = await both((c) => c.callTool({ name: 'confirm_reset', arguments: {} }));
    // The SDK's stateless 2025 serving cannot send the elicitation request: the tool's error, alike.
    if (era === '2026-07-28') expect(d).toMatchObject({ content: [{ text: 'reset confirmed' }] });
    else expect(d).toMatchObject({ isError: true });
    expect(t).toEqual(d);
  });

  it('progress notifications reach the caller alike', async () => {
    const [d, t] = await both(async (c) => {
      const seen: number[] = [];
      const result = await c.callTool({ name: 'slow_count', arguments: {} }, { onprogress: (p) => seen.push(p.progress) });
      return { result, seen };
    });
    expect(d.seen).toEqual([1, 2, 3]);
    expect(t).toEqual(d);
    // The era is the one pinned: what the upstream was told on the last call.
    expect(up.received.at(-1)?.headers.get('mcp-protocol-version')).toEqual([era === 'legacy' ? '2025-11-25' : '2026-07-28']);
  });

  it('a filtered list is the caller\'s view; reading a hidden resource is refused only through the gateway', async () => {
    const [d, t] = await both(async (c) => (await c.listResources()).resources.map((r) => r.uri));
    expect(d.sort()).toEqual(['file:///docs/readme.md', 'file:///etc/shadow']);
    expect(t).toEqual(['file:///docs/readme.md']);
    const through = await connect(`${gw.url}/mcp`, await idp.token(AUD), era);
    try {
      await expect(through.readResource({ uri: 'file:///etc/shadow' })).rejects.toThrow();
      expect(await through.readResource({ uri: 'file:///docs/readme.md' })).toMatchObject({ contents: [{ text: 'readme' }] });
    } finally {
      await through.close();
    }
  });
});

describe('SDK v2 client pinned to 2026-07-28: subscriptions/listen', () => {
  type Seen = { tools: number; updated: string[] };
  async function listening(url: string, token: string | undefined): Promise<{ client: Client; seen: Seen; close: () => Promise<void>; closed: Promise<string> }> {
    const client = await connect(url, token, '2026-07-28');
    const seen: Seen = { tools: 0, updated: [] };
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      seen.tools++;
    });
    client.setNotificationHandler('notifications/resources/updated', (n) => {
      seen.updated.push(n.params.uri);
    });
    const sub = await client.listen({ toolsListChanged: true, resourceSubscriptions: ['file:///docs/readme.md', 'file:///etc/shadow'] });
    return { client, seen, closed: sub.closed, close: async () => {
      await sub.close();
      await client.close();
    } };
  }
  const settle = async (cond: () => boolean): Promise<void> => {
    for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  };

  it('list-changed notifications reach both; an update of a resource the caller may not read reaches only the direct client', async () => {
    const direct = await listening(up.url, undefined);
    const through = await listening(`${gw.url}/mcp`, await idp.token(AUD));
    try {
      up.handler.notify.resourceUpdated('file:///etc/shadow');
      up.handler.notify.resourceUpdated('file:///docs/readme.md');
      up.handler.notify.toolsChanged();
      await settle(() => direct.seen.tools === 1 && through.seen.tools === 1);
      expect(direct.seen).toEqual({ tools: 1, updated: ['file:///etc/shadow', 'file:///docs/readme.md'] });
      expect(through.seen).toEqual({ tools: 1, updated: ['file:///docs/readme.md'] });
    } finally {
      await direct.close();
      await through.close();
    }
  });

  it('the listen stream through the gateway ends when the token that opened it expires', async () => {
    const now = Math.floor(Date.now() / 1000);
    const through = await listening(`${gw.url}/mcp`, await idp.token(AUD, { iat: now, exp: now + 2 }));
    try {
      const how = await Promise.race([through.closed, new Promise((r) => setTimeout(() => r('still open'), 5_000))]);
      expect(how).toBe('remote');
    } finally {
      await through.close();
    }
  });
});
