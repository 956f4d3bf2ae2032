import { describe, expect, it } from 'vitest';
import { evictOldest } from '../../src/lib/evict.ts';
import { PairMap } from '../../src/lib/pair-map.ts';

describe('PairMap', () => {
  it('holds, replaces, deletes and evicts exactly as a Map keyed by "first|second" does', () => {
    const pairs = new PairMap<number>();
    const plain = new Map<string, number>();
    let seed = 7;
    const next = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 20_000; i++) {
      const first = `t${next(40)}`;
      const second = `u${next(3)}`;
      const op = next(10);
      if (op < 5) {
        pairs.set(first, second, i);
        plain.set(`${first}|${second}`, i);
      } else if (op < 7) {
        expect(pairs.delete(first, second)).toBe(plain.delete(`${first}|${second}`));
      } else if (op < 8) {
        pairs.evictOldest(30, 1);
        evictOldest(plain, 30, 1);
      }
      expect(pairs.get(first, second)).toBe(plain.get(`${first}|${second}`));
      expect(pairs.size).toBe(plain.size);
    }
    expect([...pairs.entries()].map(([a, b, v]) => `${a}|${b}=${v}`)).toEqual([...plain].map(([k, v]) => `${k}=${v}`));
  });

  it('lets the entry being visited be deleted while iterating', () => {
    const pairs = new PairMap<number>();
    for (let i = 0; i < 10; i++) pairs.set(`t${i % 4}`, `u${i}`, i);
    for (const [a, b, v] of pairs.entries()) if (v % 2 === 0) pairs.delete(a, b);
    expect([...pairs.entries()].map(([, , v]) => v)).toEqual([1, 3, 5, 7, 9]);
  });
});
