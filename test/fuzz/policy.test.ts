import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { IncomingMessage } from 'node:http';
import type { UpstreamConfig } from '../../src/config/compile.ts';
import { decide, decideAll } from '../../src/policy/decide.ts';
import { inspect } from '../../src/policy/jsonrpc.ts';
import { filterMessage } from '../../src/policy/filter.ts';
import { SseEvents } from '../../src/policy/sse-filter.ts';
import { filterJsonText } from '../../src/policy/filter.ts';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { Principal } from '../../src/auth/principal.ts';
import { isDenial } from '../../src/reasons.ts';
import { RUNS, TIMEOUT_MS } from './runs.ts';
import { compileUpstreams } from '../helpers/policy.ts';

const upstream = compileUpstreams(`
  - name: mcp
    path: /mcp
    target: http://127.0.0.1:1/mcp
    issuers: [idp]
    default: deny
    tools: [{ name: search }, { name: "read_*" }, { name: "delete_*", scopes: [admin] }]
    rules: [{ method: tools/list }]
`)[0] as UpstreamConfig;
const principal: Principal = { issuerName: 'idp', iss: 'https://idp.test', sub: 's', clientId: 'c', scopes: new Set(), exp: 0, jti: undefined, tokenHash: 'h', claims: {} };
const toolName = fc.constantFrom('search', 'read_file', 'read_', 'delete_repo', 'admin_reset', 'Search', 'search ', 'x');
const allowed = (name: string): boolean => decide(principal, upstream, { kind: 'rpc', method: 'tools/call', name }).kind === 'allow';
const req = { headers: {}, rawHeaders: [] as string[] } as unknown as IncomingMessage;

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

/** The filter over the given byte splits; the client's view: an independent SSE parser of what came out. */
function throughFilter(input: Buffer, cuts: readonly number[]): { text: string; events: EventSourceMessage[] } {
  const filter = new SseEvents({ id: (id) => id, data: (data) => filterJsonText(data, principal, upstream) }, 1 << 20);
  let text = '';
  let at = 0;
  for (const c of cuts) {
    text += filter.push(input.subarray(at, Math.min(input.length, at + c)));
    at = Math.min(input.length, at + c);
  }
  text += filter.push(input.subarray(at));
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => events.push(e) });
  parser.feed(text);
  return { text, events };
}

describe('fuzz: SSE listing filter', () => {
  it('output equals input with the disallowed tools removed, whatever the chunking', () => {
    const event = fc.oneof(
      fc.tuple(fc.array(toolName, { maxLength: 6 }), fc.constantFrom(5, 6, '5')).map(([names, id]) => ({ kind: 'list' as const, id, names })),
      fc.stringMatching(/^[a-z0-9 ]{0,20}$/).map((text) => ({ kind: 'other' as const, text })),
    );
    fc.assert(fc.property(fc.array(event, { maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }), fc.constantFrom('\n\n', '\r\n\r\n', '\r\r'), (events, cuts, sep) => {
      const message = (e: { id: number | string; names: readonly string[] }): unknown => ({ jsonrpc: '2.0', id: e.id, result: { tools: e.names.map((name) => ({ name })) } });
      const input = events.map((e) => (e.kind === 'list' ? `id: ev${e.id}${sep.slice(0, sep.length / 2)}data: ${JSON.stringify(message(e))}` : `data: ${e.text}`) + sep).join('');
      // Expected: each event in canonical form, every listing filtered whatever its id (shape rule).
      const expected = events.map((e) => {
        if (e.kind === 'other') return `data: ${e.text}\n\n`;
        const filtered = filterMessage(message(e), principal, upstream) as { result: { tools: { name: string }[] } };
        expect(filtered.result.tools.map((t) => t.name)).toEqual(e.names.filter(allowed));
        return `id: ev${e.id}\ndata: ${JSON.stringify(filtered)}\n\n`;
      }).join('');
      expect(throughFilter(Buffer.from(input), cuts).text).toBe(expected);
    }), { numRuns: RUNS });
  }, TIMEOUT_MS);

  // Hidden names hold multi-byte characters, so byte splits fall inside them too.
  const hidden = ['delete_répo', 'admin_reset', 'drop_databasé'];
  const listedName = fc.constantFrom('search', 'read_fïle', ...hidden);
  const line = fc.oneof(
    fc.record({ kind: fc.constant('list' as const), names: fc.array(listedName, { minLength: 1, maxLength: 5 }), id: fc.constantFrom(1, '1', 7), pretty: fc.boolean(), batch: fc.boolean(), spaced: fc.boolean() }),
    fc.record({ kind: fc.constant('comment' as const), text: fc.constantFrom('', ' ping', 'delete_répo') }),
    fc.record({ kind: fc.constant('field' as const), text: fc.constantFrom('id: 9', 'retry: 100', 'event: message', 'x-unknown: admin_reset', 'data') }),
    fc.record({ kind: fc.constant('end' as const) }),
  );

  it('never lets a hidden name through: random line ends, BOM, multi-line data, comments, fields, byte splits, unterminated tail', () => {
    fc.assert(fc.property(
      fc.array(line, { maxLength: 14 }), fc.array(fc.constantFrom('\n', '\r', '\r\n'), { minLength: 1, maxLength: 8 }),
      fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 30 }), fc.boolean(),
      (items, eols, cuts, bom) => {
        const lines: string[] = [];
        for (const it of items) {
          if (it.kind === 'end') lines.push('');
          else if (it.kind === 'comment') lines.push(':' + it.text);
          else if (it.kind === 'field') lines.push(it.text);
          else {
            const one = { jsonrpc: '2.0', id: it.id, result: { tools: it.names.map((name) => ({ name, description: 'd' })) } };
            const json = JSON.stringify(it.batch ? [one] : one, null, it.pretty ? 1 : undefined);
            for (const l of json.split('\n')) lines.push((it.spaced ? 'data: ' : 'data:') + l);
          }
        }
        // The last event has hidden names and no blank line after it: the spec discards it.
        lines.push(`data: {"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"${hidden[0]}"}]}}`);
        let text = bom ? '\ufeff' : '';
        lines.forEach((l, i) => {
          let eol = eols[i % eols.length] as string;
          // A CR line end then an empty line ended by LF would read as one CRLF: keep the blank line.
          if (l === '' && text.endsWith('\r') && eol === '\n') eol = '\r\n';
          text += l + (i === lines.length - 1 ? '' : eol);
        });
        const out = throughFilter(Buffer.from(text, 'utf8'), cuts);
        for (const name of hidden) expect(out.text).not.toContain(name);
        for (const e of out.events) {
          if (e.data.trim() === '') continue; // an empty event (no message), e.g. from a bare `data` line
          const msg = JSON.parse(e.data) as unknown;
          for (const m of Array.isArray(msg) ? msg : [msg]) {
            for (const t of (m as { result: { tools: { name: string }[] } }).result.tools) expect(allowed(t.name)).toBe(true);
          }
        }
      },
    ), { numRuns: RUNS });
  }, TIMEOUT_MS);
});
