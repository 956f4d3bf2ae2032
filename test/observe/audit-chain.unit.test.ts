import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observe/log.ts';
import { AuditChain, canonicalJson, ENVELOPE_KEYS, lineHash } from '../../src/observe/audit-chain.ts';
import { verifyAuditFile } from '../../src/observe/audit-verify.ts';
import { auditCommand } from '../../src/observe/audit-command.ts';
import { generateGatewayJwk, loadGatewayKeys, writeKeyFile, type GatewayKeys } from '../../src/identity/keys.ts';

let dir: string;
let keys: GatewayKeys;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-chain-'));
  await writeKeyFile(join(dir, 'k.jwk'), await generateGatewayJwk('ES256'));
  keys = await loadGatewayKeys(join(dir, 'k.jwk'), 'test');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function chainTo(level: string, settings: { checkpointLines: number; checkpointSeconds: number }): { chain: AuditChain; text: () => string } {
  let text = '';
  const logger = createLogger({ level, destination: new Writable({ write: (c: Buffer, _e, cb) => { text += c.toString(); cb(); } }) });
  return { chain: new AuditChain({ logger, now: Date.now, signer: () => keys.signer, settings: () => settings }), text: () => text };
}

function events(text: string): { event: string; seq: number }[] {
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event: string; seq: number });
}

describe('audit chain (unit, with a real ES256 gateway key)', () => {
  it('canonical JSON sorts members at every depth and drops undefined, as RFC 8785 does for these values', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x', null], c: true }, u: undefined, s: 'é"\n' })).toBe('{"a":{"c":true,"d":[1,"x",null]},"b":1,"s":"é\\"\\n"}');
  });

  it('the line hash is SHA-256 over the sorted JSON.stringify encoding of any JSON line, envelope left out, also when shapes repeat', () => {
    // The definition, written the plain way: every member through JSON.stringify, keys sorted at every depth.
    const plain = (v: unknown): string => {
      if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
      if (Array.isArray(v)) return `[${v.map((x: unknown) => plain(x === undefined ? null : x)).join(',')}]`;
      const o = v as Record<string, unknown>;
      return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${plain(o[k])}`).join(',')}}`;
    };
    const expected = (line: Record<string, unknown>): string => {
      const covered = Object.fromEntries(Object.entries(line).filter(([k]) => !ENVELOPE_KEYS.has(k)));
      return hash('sha256', plain(covered), 'base64url');
    };
    const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('a\nb', '"', '\\', '\ud800', '\udc00x', '😀', '\u001f'));
    const scalar = fc.oneof(text, fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined));
    const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.dictionary(text, scalar, { maxKeys: 3 }));
    const line = fc.dictionary(fc.oneof(text, fc.constantFrom('hash', 'level', 'msg', 'seq', 'a', 'a\nb')), value, { maxKeys: 8 });
    fc.assert(fc.property(line, (l) => {
      const json = l as Parameters<typeof lineHash>[0];
      expect(lineHash(json)).toBe(expected(l));
      expect(lineHash(json)).toBe(expected(l)); // again: now from the cached shape
    }), { numRuns: 2_000 });
    // Keys that join to the same text are different shapes.
    expect(lineHash({ a: 1, b: 2 })).toBe(expected({ a: 1, b: 2 }));
    expect(lineHash({ 'a\nb': 3 })).toBe(expected({ 'a\nb': 3 }));
  });

  it('lines appended while a checkpoint is being signed wait for it: the file order is the seq order, and it verifies', async () => {
    const { chain, text } = chainTo('info', { checkpointLines: 2, checkpointSeconds: 3600 });
    for (let i = 0; i < 9; i++) chain.append({ event: 'decision', n: i }, 'decision');
    await chain.seal();
    const lines = events(text());
    expect(lines.map((l) => l.seq)).toEqual(lines.map((_l, i) => i));
    expect(lines.filter((l) => l.event === 'audit_checkpoint').length).toBeGreaterThanOrEqual(4);
    const file = join(dir, 'burst.log');
    writeFileSync(file, text());
    const report = await verifyAuditFile(file, keys.publicJwks as Parameters<typeof verifyAuditFile>[1]);
    expect(report.findings).toEqual([]);
    expect(report.chains[0]?.sealed).toBe(true);
  });

  it('writes a checkpoint after checkpointSeconds when lines were written since the last one', async () => {
    const { chain, text } = chainTo('info', { checkpointLines: 1_000, checkpointSeconds: 1 });
    chain.append({ event: 'decision', n: 1 }, 'decision');
    const deadline = Date.now() + 5_000;
    while (!text().includes('"event":"audit_checkpoint"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(events(text()).map((l) => l.event)).toEqual(['audit_chain_start', 'decision', 'audit_checkpoint']);
    await chain.seal();
  });

  it('at warn nothing is written and nothing is chained', async () => {
    const { chain, text } = chainTo('warn', { checkpointLines: 1, checkpointSeconds: 1 });
    chain.append({ event: 'decision', n: 1 }, 'decision');
    await chain.seal();
    expect(text()).toBe('');
  });

  it('audit verify --jwks accepts the URL where the gateway serves its JWKS', async () => {
    const { chain, text } = chainTo('info', { checkpointLines: 3, checkpointSeconds: 3600 });
    for (let i = 0; i < 4; i++) chain.append({ event: 'decision', n: i }, 'decision');
    await chain.seal();
    const file = join(dir, 'url.log');
    writeFileSync(file, `not json\n${text()}{"level":30,"msg":"another pino line"}\n`);
    const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys.publicJwks)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      let out = '';
      const code = await auditCommand(['verify', file, '--jwks', `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`], (t) => (out += t), () => undefined);
      expect(out).toMatch(/, sealed\nok\n$/);
      expect(code).toBe(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
