import { beforeEach, describe, expect, it } from 'vitest';
import { AUD_OTHER } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';

// Review finding: json-scan.ts folds keys so that "Method" beside "method" is a duplicate (Go's
// encoding/json matches struct fields case-insensitively), but a LONE "Method" is not refused. The
// gateway's JSON.parse then sees no `method`: with `result` or `error` present the message is judged
// as a client response (housekeeping, allowed even on `default: deny`) and forwarded byte for byte. A
// Go upstream (encoding/json into a struct tagged `json:"method"`, `json:"params"`, as the Go MCP SDK's
// jsonrpc2 wire message and mcp-go decode) reads Method = "tools/call", Params = {"name":"delete_repo"}
// and, where a method makes the message a request, runs a tool no rule allowed.
// `/other-mcp`: default deny, allows read_* only.
const fx = useGatewayFixture({ overrides: () => ({ other: { default: 'deny', tools: [{ name: 'read_*' }] } }) });
beforeEach(() => fx.upstream.reset());

async function post(body: string): Promise<Reply> {
  const token = await fx.idp.token(AUD_OTHER);
  return sendExact(fx.port, 'POST', '/other-mcp', [
    ['Authorization', `Bearer ${token}`], ['Accept', 'application/json, text/event-stream'], ['Content-Type', 'application/json'],
  ], body);
}

/** What Go's encoding/json puts in a field tagged `json:"<tag>"`: exact key first, else a case-insensitive one. */
function goField(obj: Record<string, unknown>, tag: string): unknown {
  if (Object.hasOwn(obj, tag)) return obj[tag];
  const key = Object.keys(obj).find((k) => k.toLowerCase() === tag);
  return key === undefined ? undefined : obj[key];
}

describe('a member name that only a case-insensitive parser reads as a JSON-RPC member is refused', () => {
  it.each([
    '{"jsonrpc":"2.0","id":1,"Method":"tools/call","Params":{"name":"delete_repo"},"result":{}}',
    '{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","params":{"name":"delete_repo"},"error":{"code":1,"message":"x"}}',
    '{"jsonrpc":"2.0","id":1,"mEthod":"tools/call","pArams":{"name":"delete_repo"},"result":null}',
  ])('%s → 400 before any byte reaches the upstream', async (body) => {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    // The premise: a Go struct decode sees a tools/call of delete_repo, which /other-mcp denies.
    expect(goField(parsed, 'method')).toBe('tools/call');
    expect(goField(goField(parsed, 'params') as Record<string, unknown>, 'name')).toBe('delete_repo');
    const reply = await post(body);
    expect(reply.status).toBe(400);
    expect(fx.upstream.bytes).toBe(0);
  });
});
