import { beforeEach, describe, expect, it } from 'vitest';
import { AUD } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';

// Review finding: a prompt or resource the policy denies is still the target of other methods that
// name it — `completion/complete` (params.ref.name / params.ref.uri) runs the denied prompt's or
// template's completer upstream, and `resources/subscribe` (params.uri) subscribes to a denied resource.
// Only tools/call, prompts/get and resources/read are judged by name (policy/jsonrpc.ts message()).
// Upstream: the real SDK server (TestUpstream /mcp: prompts summarize, secret_prompt; resource file:///etc/shadow).
const fx = useGatewayFixture({
  overrides: (url) => ({
    mcp: {
      target: `${url}/mcp`, default: 'allow',
      rules: [
        { method: 'prompts/get', prompt: 'secret_prompt', deny: true },
        { method: 'resources/read', resource: 'file:///etc/', deny: true },
      ],
    },
  }),
});
beforeEach(() => fx.upstream.reset());

async function post(body: unknown): Promise<Reply> {
  const token = await fx.idp.token(AUD);
  return sendExact(fx.port, 'POST', '/mcp', [
    ['Authorization', `Bearer ${token}`], ['Accept', 'application/json, text/event-stream'], ['Content-Type', 'application/json'],
  ], JSON.stringify(body));
}

describe('a denied prompt or resource cannot be reached through a method that names it', () => {
  it('the denied prompt is refused for prompts/get (control)', async () => {
    const reply = await post({ jsonrpc: '2.0', id: 1, method: 'prompts/get', params: { name: 'secret_prompt' } });
    expect(reply.status).toBe(403);
    expect(fx.upstream.bytes).toBe(0);
  });

  it('completion/complete with ref/prompt naming the denied prompt is refused, and the upstream receives nothing', async () => {
    const reply = await post({ jsonrpc: '2.0', id: 2, method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'secret_prompt' }, argument: { name: 'a', value: '' } } });
    expect(reply.status).toBe(403);
    expect(fx.upstream.bytes).toBe(0);
  });

  it('completion/complete with ref/resource under a denied resource prefix is refused, and the upstream receives nothing', async () => {
    const reply = await post({ jsonrpc: '2.0', id: 3, method: 'completion/complete', params: { ref: { type: 'ref/resource', uri: 'file:///etc/{name}' }, argument: { name: 'name', value: 'sh' } } });
    expect(reply.status).toBe(403);
    expect(fx.upstream.bytes).toBe(0);
  });

  it('resources/subscribe to a denied resource is refused, and the upstream receives nothing', async () => {
    const reply = await post({ jsonrpc: '2.0', id: 4, method: 'resources/subscribe', params: { uri: 'file:///etc/shadow' } });
    expect(reply.status).toBe(403);
    expect(fx.upstream.bytes).toBe(0);
  });
});
