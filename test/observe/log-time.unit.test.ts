import { afterEach, describe, expect, it, vi } from 'vitest';
import { isoTime } from '../../src/observe/log.ts';

// The log time is built from a per-second prefix (issue 25): it must be pino's isoTime text exactly.
describe('isoTime', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes the same ISO 8601 text as Date#toISOString, across seconds and for every millisecond width', () => {
    const base = Date.UTC(2026, 11, 2, 3, 59, 59);
    for (const ms of [base, base + 7, base + 42, base + 999, base + 1000, base + 1001, base + 61_010, 0, 999]) {
      vi.spyOn(Date, 'now').mockReturnValue(ms);
      expect(isoTime()).toBe(`,"time":"${new Date(ms).toISOString()}"`);
    }
  });
});
