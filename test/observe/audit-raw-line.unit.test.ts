import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observe/log.ts';
import { AuditChain, lineHash } from '../../src/observe/audit-chain.ts';

// Issue 25: the chain writes its hashed canonical text itself instead of pino serialising the line a
// second time. The line must be the one pino would have written, and any logger setting that would
// change the line (redaction, mixin, formatters) must send it through pino instead.

function sink(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  let text = '';
  const stream = new Writable({ write: (c: Buffer, _e, cb) => { text += c.toString(); cb(); } });
  return { stream, lines: () => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const settings = () => ({ checkpointLines: 1_000, checkpointSeconds: 3_600 });
const decision = { event: 'decision', requestId: 'r-1', upstream: 'files', rpcMethod: 'tools/call', target: 'se"arch\u2028', decision: 'allow', reason: undefined, status: 200, sub: 'alice', durationMs: 1.25 };

function decisionLine(logger: pino.Logger, lines: () => Record<string, unknown>[]): Record<string, unknown> {
  new AuditChain({ logger, now: () => 1_700_000_000_000, signer: () => undefined, settings, id: 'c-1' }).append({ ...decision }, 'decision');
  const found = lines().find((l) => l['event'] === 'decision');
  if (found === undefined) throw new Error('no decision line');
  return found;
}

describe('audit lines written as their canonical text', () => {
  it('equal what pino writes for the same members, and verify by their hash', () => {
    const raw = sink();
    const line = decisionLine(createLogger({ destination: raw.stream }), raw.lines);
    const viaPino = sink();
    const { hash, time: _t, ...members } = line;
    createLogger({ destination: viaPino.stream }).info({ ...members, hash }, 'decision');
    const { time: _t2, ...expected } = viaPino.lines()[0] as Record<string, unknown>;
    expect({ ...line, time: undefined }).toEqual({ ...expected, time: undefined });
    expect(typeof line['time']).toBe('string');
    // Written by the chain itself: its members in canonical (sorted) order between pino's envelope and msg.
    const keys = Object.keys(line);
    expect(keys.slice(0, 3)).toEqual(['level', 'time', 'service']);
    expect(keys.slice(3, -2)).toEqual([...keys.slice(3, -2)].sort());
    expect(keys.slice(-2)).toEqual(['hash', 'msg']);
    expect(line['target']).toBe('se"arch\u2028');
    const { level: _l, msg: _m, service: _s, time: _t3, hash: digest, ...covered } = line;
    expect(lineHash(covered as Parameters<typeof lineHash>[0])).toBe(digest);
  });

  it('go through pino when the logger would redact or add to them', () => {
    const redacted = sink();
    const r = decisionLine(pino({ redact: { paths: ['sub'], censor: '[redacted]' } }, redacted.stream), redacted.lines);
    expect(r['sub']).toBe('[redacted]');
    const mixed = sink();
    const m = decisionLine(pino({ mixin: () => ({ zone: 'eu' }) }, mixed.stream), mixed.lines);
    expect(m['zone']).toBe('eu');
    const formatted = sink();
    const f = decisionLine(pino({ formatters: { log: (o) => ({ ...o, formatted: true }) } }, formatted.stream), formatted.lines);
    expect(f['formatted']).toBe(true);
  });
});
