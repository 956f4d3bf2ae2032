import { describe, expect, it } from 'vitest';
import type { UpstreamConfig } from '../../src/config/compile.ts';
import { learnTool, paramHeadersOf } from '../../src/policy/param-headers.ts';
import { decodeHeaderValue } from '../../src/policy/header-value.ts';

// The table is keyed by the compiled upstream object only; a stand-in object is enough here.
const upstream = (): UpstreamConfig => ({}) as UpstreamConfig;
const tool = (name: string, properties: Record<string, unknown>): Record<string, unknown> => ({ name, inputSchema: { type: 'object', properties } });

describe('x-mcp-header marks learned per upstream', () => {
  it('learns only marks reachable through properties, with a token name, case-insensitively unique', () => {
    const u = upstream();
    learnTool(u, tool('t', {
      a: { type: 'string', 'x-mcp-header': 'Region' },
      b: { type: 'string', 'x-mcp-header': 'REGION' },
      c: { type: 'object', properties: { d: { type: 'integer', 'x-mcp-header': 'Deep' } } },
      e: { type: 'array', items: { type: 'string', 'x-mcp-header': 'Item' } },
      f: { type: 'string', 'x-mcp-header': 'bad name' },
    }));
    expect(paramHeadersOf(u, 't')).toEqual([{ path: ['a'], header: 'mcp-param-region' }, { path: ['c', 'd'], header: 'mcp-param-deep' }]);
  });

  it('a tool listed again without marks is forgotten; another upstream has its own table', () => {
    const u = upstream();
    learnTool(u, tool('t', { a: { type: 'string', 'x-mcp-header': 'A' } }));
    expect(paramHeadersOf(upstream(), 't')).toBeUndefined();
    learnTool(u, tool('t', { a: { type: 'string' } }));
    expect(paramHeadersOf(u, 't')).toBeUndefined();
  });

  it('memory is bounded per upstream: the oldest tools are forgotten first', () => {
    const u = upstream();
    for (let i = 0; i < 5000; i++) learnTool(u, tool(`t${i}`, { a: { type: 'string', 'x-mcp-header': 'A' } }));
    expect(paramHeadersOf(u, 't0')).toBeUndefined();
    expect(paramHeadersOf(u, 't4999')).toBeDefined();
    let kept = 0;
    for (let i = 0; i < 5000; i++) if (paramHeadersOf(u, `t${i}`) !== undefined) kept++;
    expect(kept).toBeLessThanOrEqual(2048);
  });
});

describe('header value decoding (2026-07-28 transports "Value Encoding")', () => {
  it.each([
    ['us-west1', 'us-west1'],
    ['=?base64?SGVsbG8sIOS4lueVjA==?=', 'Hello, 世界'],
    ['=?base64?IHBhZGRlZCA=?=', ' padded '],
    ['=?base64?bGluZTEKbGluZTI=?=', 'line1\nline2'],
    ['=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=', '=?base64?literal?='],
    ['=?base64??=', ''],
  ])('%s stands for %j', (raw, value) => {
    expect(decodeHeaderValue(raw)).toBe(value);
  });

  it.each([
    ['=?base64?SGVsbG8?=', 'unpadded'],
    ['=?base64?QR==?=', 'stray bits'],
    ['=?base64?/w==?=', 'not UTF-8'],
    ['=?base64?a b?=', 'not Base64'],
    ['=?BASE64?SGk=?=', 'markers are case-sensitive: a plain value shaped almost like the sentinel is itself'],
    ['caf\u00e9', 'not visible ASCII'],
  ])('%s is invalid or plain (%s)', (raw, why) => {
    if (why.startsWith('markers')) expect(decodeHeaderValue(raw)).toBe(raw);
    else expect(decodeHeaderValue(raw)).toBeUndefined();
  });
});
