import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { V2Upstream } from '../helpers/sdk-v2.ts';
import { MCP_POST_HEADERS } from '../helpers/rpc.ts';
import { startGatewayStack, type GatewayStack } from '../conformance/stack.ts';
import { startTestDemo } from './demo-stack.ts';
import { McpRemote, type RpcAnswer } from './mcp-remote-session.ts';
import { tempDir } from './support.ts';

/** The one token file mcp-remote keeps under its config directory. */
function storedTokens(dir: string): { access_token: string; scope?: string } {
  const walk = (at: string): string[] => readdirSync(at, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(at, e.name)) : [join(at, e.name)]));
  const files = walk(dir).filter((f) => f.endsWith('_tokens.json'));
  expect(files).toHaveLength(1);
  return JSON.parse(readFileSync(files[0] as string, 'utf8')) as { access_token: string; scope?: string };
}

function text(answer: RpcAnswer): string {
  expect(answer.error, JSON.stringify(answer.error)).toBeUndefined();
  return ((answer.result?.['content'] ?? []) as { text: string }[])[0]?.text ?? '';
}

describe('mcp-remote step-up against the demo: from 403 insufficient_scope to a successful admin call', () => {
  let demo: Awaited<ReturnType<typeof startTestDemo>>;
  let config: Awaited<ReturnType<typeof tempDir>>;
  let url: string;

  beforeAll(async () => {
    demo = await startTestDemo();
    config = await tempDir();
    url = demo.stack.config.upstreams[0]?.audience as string;
  });
  afterAll(async () => {
    await demo?.close();
    await config?.remove();
  });

  it('signs in again on the 403 but with its old scope, so the call stays refused; restarted with the scope pinned it gets the admin call through', async () => {
    const first = await McpRemote.start(url, config.dir);
    let again: URL[] = [];
    try {
      expect((await first.initialize()).result?.['serverInfo']).toMatchObject({ name: 'mcp-warden-demo' });
      expect(first.authorizations[0]?.searchParams.get('scope')).toBe('mcp:demo');
      expect(text(await first.request('tools/call', { name: 'whoami', arguments: {} }))).toContain('demo-user');
      // mcp-remote 0.15.1's limitation: its SDK answers the 403 by re-authorizing with the union of
      // its scope and the challenge's ("mcp:demo mcp:demo:admin"), but mcp-remote's applyScope then
      // takes that union for a scope it supplied itself, because it equals the resource's
      // scopes_supported, and replaces it with its own effective scope "mcp:demo". Every sign-in
      // after the 403 asks for mcp:demo again; after its step-up retry limit the stdio client gets -32001.
      const refused = await first.request('tools/call', { name: 'admin_reset', arguments: {} }, 90_000);
      expect(refused.error).toEqual({ code: -32001, message: 'mcp-remote: Unauthorized' });
      again = first.authorizations.slice(1);
      expect(again.length).toBeGreaterThan(0);
      for (const a of again) expect(a.searchParams.get('scope')).toBe('mcp:demo');
    } finally {
      await first.close();
    }

    // What the gateway answered: the token mcp-remote holds gets 403 naming the admin scope, and the
    // admin scope is among the resource's scopes_supported (which is what trips mcp-remote above).
    const held = storedTokens(config.dir);
    expect(decodeJwt(held.access_token)['scope']).toBe('mcp:demo');
    const probe = await fetch(url, {
      method: 'POST',
      headers: { ...MCP_POST_HEADERS, 'mcp-protocol-version': '2025-11-25', authorization: `Bearer ${held.access_token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'admin_reset', arguments: {} } }),
    });
    expect(probe.status).toBe(403);
    const challenge = probe.headers.get('www-authenticate') ?? '';
    expect(challenge).toContain('error="insufficient_scope"');
    expect(/scope="([^"]*)"/.exec(challenge)?.[1]?.split(' ')).toContain('mcp:demo:admin');
    const metadata = (await (await fetch(new URL(`/.well-known/oauth-protected-resource${new URL(url).pathname}`, url))).json()) as { scopes_supported: string[] };
    expect(metadata.scopes_supported).toEqual(['mcp:demo', 'mcp:demo:admin']);

    // The workaround mcp-remote offers: pin the scope. A user-pinned scope wins over its own choice;
    // on start it sees the scope changed, signs in again and the call passes.
    const pinned = await McpRemote.start(url, config.dir, ['--static-oauth-client-metadata', JSON.stringify({ scope: 'mcp:demo mcp:demo:admin' })]);
    try {
      await pinned.initialize();
      expect(pinned.authorizations.map((a) => a.searchParams.get('scope'))).toEqual(['mcp:demo mcp:demo:admin']);
      expect(text(await pinned.request('tools/call', { name: 'admin_reset', arguments: {} }))).toBe('reset requested by demo-user');
    } finally {
      await pinned.close();
    }
    expect(decodeJwt(storedTokens(config.dir).access_token)['scope']).toBe('mcp:demo mcp:demo:admin');
  }, 180_000);
});

describe('mcp-remote --protocol auto through the gateway: the 2026-07-28 era', () => {
  let upstream: V2Upstream;
  let stack: GatewayStack;
  let config: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    upstream = await V2Upstream.start();
    stack = await startGatewayStack(upstream.url, { path: '/tools/mcp', scope: 'mcp:tools' });
    config = await tempDir();
  });
  afterAll(async () => {
    await stack?.close();
    await upstream?.close();
    await config?.remove();
  });

  /** One mcp-remote session: initialize, list, and three calls; the answers without their ids. */
  async function session(url: string, dir: string): Promise<{ remote: McpRemote; answers: Omit<RpcAnswer, 'id'>[] }> {
    const remote = await McpRemote.start(url, dir, ['--protocol', 'auto']);
    try {
      const answers = [
        await remote.initialize(),
        await remote.request('tools/list'),
        // Mcp-Name must be Base64 here (2026-07-28 §Value Encoding).
        await remote.request('tools/call', { name: 'grüße', arguments: {} }),
        await remote.request('tools/call', { name: 'delete_repo', arguments: {} }),
        // `region` is marked x-mcp-header: Region.
        await remote.request('tools/call', { name: 'search', arguments: { region: 'eu', q: 'gateways' } }),
      ];
      return { remote, answers: answers.map(({ id: _id, ...rest }) => rest) };
    } finally {
      await remote.close();
    }
  }

  it('signs in with its default OAuth, speaks 2026-07-28 to the server, and gets the answers it gets direct', async () => {
    const direct = await session(upstream.url, `${config.dir}/direct`);
    upstream.received.length = 0;
    const through = await session(stack.url, `${config.dir}/gateway`);
    expect(through.answers).toEqual(direct.answers);
    expect(through.remote.authorizations[0]?.searchParams.get('resource')).toBe(stack.url);
    expect(direct.remote.authorizations).toEqual([]);

    const [init, listed, greeted, deleted, searched] = through.answers;
    // mcp-remote answers the 2025 stdio client's initialize itself once server/discover succeeded.
    expect(init?.result?.['serverInfo']).toMatchObject({ name: 'v2-upstream' });
    expect(((listed?.result?.['tools'] ?? []) as { name: string }[]).map((t) => t.name)).toEqual(expect.arrayContaining(['search', 'grüße', 'delete_repo']));
    expect(text({ id: 0, ...greeted })).toBe('hallo');
    expect(text({ id: 0, ...deleted })).toBe('deleted');
    // mcp-remote 0.15.1 does not mirror x-mcp-header parameters into Mcp-Param-* headers, so the
    // server refuses the call (-32020), direct and through the gateway alike. This upstream has no
    // tool policy, so the gateway does not parse its listings and leaves the check to the upstream
    // (docs/mcp-2026-07-28.md row 14).
    expect(searched?.error).toMatchObject({ code: -32020, data: { mismatch: { header: 'Mcp-Param-Region' } } });

    expect(upstream.received.some((r) => r.body.includes('"initialize"'))).toBe(false);
    const methods = upstream.received.map((r) => r.headers.get('mcp-method')?.[0]);
    expect(methods).toEqual(expect.arrayContaining(['server/discover', 'tools/list', 'tools/call']));
    const greet = upstream.received.find((r) => r.body.includes('"grüße"'));
    expect(greet?.headers.get('mcp-protocol-version')).toEqual(['2026-07-28']);
    expect(greet?.headers.get('mcp-name')).toEqual(['=?base64?Z3LDvMOfZQ==?=']);
    for (const r of upstream.received.filter((x) => x.method === 'POST')) {
      expect(r.headers.has('authorization')).toBe(false);
      expect(r.headers.has('mcp-session-id')).toBe(false);
      expect(r.headers.get('x-mcp-identity')).toHaveLength(1);
    }
  }, 120_000);
});
