import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { IncomingMessage } from 'node:http';
import { loadConfigText, type UpstreamConfig } from '../../src/config/compile.ts';
import { decide, decideAll } from '../../src/policy/decide.ts';
import { inspect } from '../../src/policy/jsonrpc.ts';
import { createSseFilter, filterMessage } from '../../src/policy/filter.ts';
import type { Principal } from '../../src/auth/principal.ts';
import { isDenial } from '../../src/reasons.ts';
import { RUNS, TIMEOUT_MS } from './runs.ts';

const upstream = loadConfigText(`
publicUrl: https://gw.test
issuers: [{ name: idp, issuer: https://idp.test, algorithms: [ES256] }]
upstreams:
  - name: mcp
    path: /mcp
    target: http://127.0.0.1:1/mcp
    issuers: [idp]
    default: deny
    tools: [{ name: search }, { name: "read_*" }, { name: "delete_*", scopes: [admin] }]
    rules: [{ method: tools/list }]
identity: { signingKeyFile: /dev/null }
`).upstreams[0] as UpstreamConfig;
const principal: Principal = { issuerName: 'idp', iss: 'https://idp.test', sub: 's', clientId: 'c', scopes: new Set(), exp: 0, jti: undefined, tokenHash: 'h', claims: {} };
const toolName = fc.constantFrom('search', 'read_file', 'read_', 'delete_repo', 'admin_reset', 'Search', 'search ', 'x');
const allowed = (name: string): boolean => decide(principal, upstream, { kind: 'rpc', method: 'tools/call', name }).kind === 'allow';
const req = { headers: {} } as IncomingMessage;

describe('fuzz: JSON-RPC body inspector and policy', () => {
  it('never lets a batch through that contains a denied call', () => {
    const message = fc.oneof(
      fc.tuple(fc.integer(), toolName).map(([id, name]) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } })),
      fc.integer().map((id) => ({ jsonrpc: '2.0', id, method: 'tools/list' })),
      fc.constant({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      fc.integer().map((id) => ({ jsonrpc: '2.0', id, method: 'resources/read', params: { uri: 'file:///x' } })),
    );
    fc.assert(fc.property(fc.array(message, { minLength: 1, maxLength: 8 }), (batch) => {
      const inspected = inspect(Buffer.from(JSON.stringify(batch)), '2025-03-26', req, 100);
      if (isDenial(inspected)) return;
      const verdict = decideAll(principal, upstream, inspected.messages);
      const anyDenied = batch.some((m) =>
        (m.method === 'tools/call' && !allowed((m as { params: { name: string } }).params.name)) || m.method === 'resources/read');
      expect('denial' in verdict).toBe(anyDenied);
      // The forwarded bytes are the client's bytes, unchanged.
      expect(inspected.body.toString()).toBe(JSON.stringify(batch));
    }), { numRuns: RUNS });
  }, TIMEOUT_MS);

  it('never throws on arbitrary bytes, and refuses what is not JSON-RPC', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.json({ maxDepth: 4 })), fc.constantFrom('2025-03-26', '2025-06-18'), (text, version) => {
      const result = inspect(Buffer.from(text), version, req, 100);
      if (isDenial(result)) expect(['body_invalid', 'body_encoding_invalid', 'json_duplicate_key', 'rpc_invalid', 'method_invalid', 'name_invalid', 'batch_not_allowed']).toContain(result.reason);
      else expect(result.messages.length).toBeGreaterThan(0);
    }), { numRuns: RUNS });
  }, TIMEOUT_MS);
});

describe('fuzz: SSE listing filter', () => {
  it('output equals input with the disallowed tools removed, whatever the chunking', async () => {
    const event = fc.oneof(
      fc.tuple(fc.array(toolName, { maxLength: 6 }), fc.constantFrom(5, 6)).map(([names, id]) => ({ kind: 'list' as const, id, names })),
      fc.stringMatching(/^[a-z0-9 ]{0,20}$/).map((text) => ({ kind: 'other' as const, text })),
    );
    await fc.assert(fc.asyncProperty(fc.array(event, { maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }), fc.constantFrom('\n\n', '\r\n\r\n'), async (events, cuts, sep) => {
      const requests = new Map<string | number, string>([[5, 'tools/list']]);
      const serialise = (e: (typeof events)[number]): string => e.kind === 'list'
        ? `id: ev${e.id}${sep === '\n\n' ? '\n' : '\r\n'}data: ${JSON.stringify({ jsonrpc: '2.0', id: e.id, result: { tools: e.names.map((name) => ({ name })) } })}`
        : `data: ${e.text}`;
      const input = events.map((e) => serialise(e) + sep).join('');
      // Expected: each event on its own, filtered as a whole message.
      const expected = events.map((e) => {
        if (e.kind !== 'list' || e.id !== 5) return serialise(e) + sep;
        const filtered = filterMessage({ jsonrpc: '2.0', id: 5, result: { tools: e.names.map((name) => ({ name })) } }, requests, principal, upstream) as { result: { tools: { name: string }[] } };
        // Exactly the allowed tools remain, in order.
        expect(filtered.result.tools.map((t) => t.name)).toEqual(e.names.filter(allowed));
        return `id: ev5\ndata: ${JSON.stringify(filtered)}${sep}`;
      }).join('');
      const filter = createSseFilter(requests, principal, upstream, 1 << 20);
      const out: string[] = [];
      filter.on('data', (d: Buffer | string) => out.push(String(d)));
      const done = new Promise((r) => filter.on('end', r));
      let at = 0;
      for (const c of cuts) {
        filter.write(Buffer.from(input.slice(at, at + c)));
        at += c;
      }
      filter.end(Buffer.from(input.slice(at)));
      await done;
      expect(out.join('')).toBe(expected);
    }), { numRuns: RUNS });
  }, TIMEOUT_MS);
});
