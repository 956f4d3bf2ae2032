import { describe, expect, it } from 'vitest';
import { SseTail } from '../../src/proxy/stream.ts';

// The shutdown/expiry final event is only added at an event boundary of what the client already got.
describe('SseTail', () => {
  const after = (...chunks: (string | Buffer)[]): boolean => {
    const t = new SseTail();
    for (const c of chunks) t.saw(c);
    return t.atBoundary;
  };

  it('starts at a boundary and follows LF, CRLF and CR event ends, across chunk splits', () => {
    expect(after()).toBe(true);
    expect(after('data: a\n\n')).toBe(true);
    expect(after('data: a\n')).toBe(false);
    expect(after('data: a\n', '\n')).toBe(true);
    expect(after('data: a\r\n\r', '\n')).toBe(true);
    expect(after('data: a\r', '\r')).toBe(true);
    expect(after(Buffer.from('event: x\ndata: {"a":1}\n\n'), Buffer.from('data: half'))).toBe(false);
    expect(after('data: a\n\n', 'data: b\n', '\n')).toBe(true);
    expect(after('\n', '\n', 'd')).toBe(false);
    expect(after('data: a\r\n\r\n')).toBe(true);
    expect(after('data: a\r\n', '\r', '\n')).toBe(true);
    expect(after('data: a\r\n\r\nx')).toBe(false);
    expect(after('data: a\n\nd', 'ata: b')).toBe(false);
    expect(after(Buffer.from('data: é\n\n'))).toBe(true);
    expect(after(Buffer.from('data: é\n'), Buffer.from('é'))).toBe(false);
    // Only the last four characters count: a long chunk after a boundary leaves it.
    expect(after('data: a\n\n', 'x'.repeat(1000))).toBe(false);
  });
});
