import { describe, expect, it } from 'vitest';
import { boundedMemo } from '../../src/lib/bounded-memo.ts';

describe('boundedMemo', () => {
  it('computes a key once while within its bounds, and every time past them', () => {
    const calls: string[] = [];
    const lower = boundedMemo(2, 5, (k) => (calls.push(k), k.toLowerCase()));
    expect([lower('Ab'), lower('Ab'), lower('Cd'), lower('Cd')]).toEqual(['ab', 'ab', 'cd', 'cd']);
    expect(calls).toEqual(['Ab', 'Cd']);
    // Full: a third key is computed on each call and not held.
    expect([lower('Ef'), lower('Ef')]).toEqual(['ef', 'ef']);
    // Too long to be held, even with room.
    const long = boundedMemo(10, 3, (k) => (calls.push(k), k.length));
    expect([long('abcd'), long('abcd')]).toEqual([4, 4]);
    expect(calls).toEqual(['Ab', 'Cd', 'Ef', 'Ef', 'abcd', 'abcd']);
  });
});
