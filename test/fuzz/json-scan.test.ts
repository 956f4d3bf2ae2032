import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { scanJson } from '../../src/policy/json-scan.ts';
import { fold } from '../../src/policy/names.ts';
import { RUNS, TIMEOUT_MS } from './runs.ts';

const LONE = /\p{Cs}/u; // in u-mode only an unpaired surrogate is a Cs code point

/** Whether any key or string in the value holds a lone surrogate (the reference for the scanner). */
function hasLoneSurrogate(v: unknown): boolean {
  if (typeof v === 'string') return LONE.test(v);
  if (Array.isArray(v)) return v.some(hasLoneSurrogate);
  if (typeof v === 'object' && v !== null) return Object.entries(v).some(([k, x]) => LONE.test(k) || hasLoneSurrogate(x));
  return false;
}

/** Whether any key or string in the value holds U+0000 (which JSON.stringify writes as an escape). */
function hasNul(v: unknown): boolean {
  if (typeof v === 'string') return v.includes('\u0000');
  if (Array.isArray(v)) return v.some(hasNul);
  if (typeof v === 'object' && v !== null) return Object.entries(v).some(([k, x]) => k.includes('\u0000') || hasNul(x));
  return false;
}

/** Whether some object has an own key "__proto__" (JSON.parse makes one; the scanner refuses it). */
function hasProtoKey(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasProtoKey);
  if (typeof v !== 'object' || v === null) return false;
  return Object.prototype.hasOwnProperty.call(v, '__proto__') || Object.values(v).some(hasProtoKey);
}

/** Whether some object has two keys that are one key to a case-insensitive parser (the scanner folds keys). */
function hasFoldedPair(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasFoldedPair);
  if (typeof v !== 'object' || v === null) return false;
  const keys = Object.keys(v);
  return new Set(keys.map(fold)).size < keys.length || Object.values(v).some(hasFoldedPair);
}

/** A key spelt another way that decodes to the same string: every UTF-16 unit as a \u escape. */
function escaped(key: string): string {
  let out = '"';
  for (let i = 0; i < key.length; i++) out += `\\u${key.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out + '"';
}

/**
 * Serialises like JSON.stringify, but where `choices` say so an object repeats one of its keys (spelt
 * plainly or escaped, before or after the others). Reports whether it repeated any.
 */
function serialise(v: unknown, choices: readonly number[]): { text: string; repeated: boolean } {
  let at = 0;
  let repeated = false;
  const next = (): number => choices[at++ % choices.length] as number;
  const out = (x: unknown): string => {
    if (Array.isArray(x)) return `[${x.map(out).join(',')}]`;
    if (typeof x !== 'object' || x === null) return JSON.stringify(x);
    const entries = Object.entries(x).map(([k, y]) => `${JSON.stringify(k)}:${out(y)}`);
    const keys = Object.keys(x);
    if (keys.length > 0 && next() % 4 === 0) {
      repeated = true;
      const key = keys[next() % keys.length] as string;
      const spelt = next() % 2 === 0 ? JSON.stringify(key) : escaped(key);
      entries.splice(next() % (entries.length + 1), 0, `${spelt}:${out(null)}`);
    }
    return `{${entries.join(',')}}`;
  };
  const text = out(v);
  return { text, repeated };
}

describe('fuzz: duplicate-key and lone-surrogate scanner', () => {
  it('never flags what JSON.stringify wrote, except a lone surrogate or U+0000 it escaped, a "__proto__" key, or keys differing only in case', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 5, stringUnit: 'binary' }), (v) => {
      const kind = scanJson(JSON.stringify(v), 128)?.kind;
      // The first fault in the text is the one reported: any of those the value holds.
      const faults = new Set<string | undefined>();
      if (hasLoneSurrogate(v)) faults.add('lone_surrogate');
      if (hasFoldedPair(v)) faults.add('duplicate_key');
      if (hasNul(v)) faults.add('nul');
      if (hasProtoKey(v)) faults.add('proto_key');
      if (faults.size === 0) faults.add(undefined);
      expect(faults.has(kind), `${kind} not in ${[...faults].join(', ')}`).toBe(true);
    }), { numRuns: RUNS });
  }, TIMEOUT_MS);

  it('finds an escaped U+0000 in a key or a value, and not an escaped backslash before "u0000"', () => {
    for (const [text, kind] of [
      ['{"a":"\\u0000"}', 'nul'],
      ['{"a\\u0000":1}', 'nul'],
      ['["x","y\\n\\u0000z"]', 'nul'],
      ['{"a":"\\\\u0000"}', undefined],
      ['{"a":"\\u0001\\u0100"}', undefined],
    ] as const) {
      expect(scanJson(text, 128)?.kind, text).toBe(kind);
    }
  });

  it('finds a "__proto__" key however it is spelt, and no other key or value like it; keysOnly leaves it to the caller', () => {
    for (const [text, kind] of [
      ['{"__proto__":{}}', 'proto_key'],
      ['{"a":[{"b":{"__proto__":1}}]}', 'proto_key'],
      ['{"\\u005f_proto__":null}', 'proto_key'],
      ['{"a":"__proto__","__proto":1,"proto__":2,"constructor":{"prototype":{}}}', undefined],
      ['{"__PROTO__":1}', undefined],
    ] as const) {
      expect(scanJson(text, 128)?.kind, text).toBe(kind);
    }
    expect(scanJson('{"__proto__":1,"a\\u0000":2,"b":1,"b":2}', 128, true)).toEqual({ kind: 'duplicate_key', key: 'b' });
  });

  it('finds keys that differ only in case or compatibility form, at any depth', () => {
    for (const [text, key] of [
      ['{"method":"a","Method":"b"}', 'method'],
      ['{"params":{"name":"a","NAME":"b"}}', 'name'],
      ['{"a":[{"x":{"id":1,"ID":2}}]}', 'id'],
      ['{"kind":1,"\u212aind":2}', 'kind'], // KELVIN SIGN: Go folds it to k
      ['{"\uff4eame":1,"name":2}', 'name'], // fullwidth n
    ] as const) {
      expect(scanJson(text, 128), text).toEqual({ kind: 'duplicate_key', key });
    }
  });

  it('finds every repeated key, at any depth, however it is spelt, and nothing else', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 5 }), fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), (v, choices) => {
      const { text, repeated } = serialise(v, choices);
      expect(() => JSON.parse(text)).not.toThrow();
      expect(scanJson(text, 128, true)?.kind).toBe(repeated || hasFoldedPair(v) ? 'duplicate_key' : undefined);
    }), { numRuns: RUNS });
  }, TIMEOUT_MS);

  it('finds a repeated key among many keys of one object, nested or not, and stays linear in their number', () => {
    const keys = Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`);
    for (const [text, kind] of [
      [`{${keys.join(',')},"k3":0}`, 'duplicate_key'],
      [`{${keys.join(',')},"K39":0}`, 'duplicate_key'],
      [`{${keys.join(',')},"o":{${keys.join(',')}},"k0":0}`, 'duplicate_key'],
      [`{${keys.join(',')},"o":{${keys.join(',')},"k20":0}}`, 'duplicate_key'],
      [`{${keys.join(',')},"o":{${keys.join(',')}},"k40":0}`, undefined],
      [`[{${keys.join(',')}},{${keys.join(',')}}]`, undefined],
    ] as const) {
      expect(scanJson(text, 128)?.kind, text).toBe(kind);
    }
    const many = `{${Array.from({ length: 100_000 }, (_, i) => `"k${i}":0`).join(',')},"k99999":1}`;
    const started = performance.now();
    expect(scanJson(many, 128)).toEqual({ kind: 'duplicate_key', key: 'k99999' });
    expect(performance.now() - started).toBeLessThan(1_000); // linear: ~40 ms; a look through every key: seconds
  });

  it('bounds the nesting depth, and stays linear in escapes and in the number of strings', () => {
    expect(scanJson('['.repeat(129) + ']'.repeat(129), 128)).toEqual({ kind: 'too_deep' });
    expect(scanJson('['.repeat(128) + ']'.repeat(128), 128)).toBeUndefined();
    for (const text of [
      JSON.stringify({ a: 'x\n"'.repeat(300_000), b: '\ud83d\ude00'.repeat(100_000) }),
      // Many short strings and one backslash at the very end: a search for it per string would be quadratic.
      JSON.stringify({ a: Array.from({ length: 200_000 }, (_, i) => `v${i}`), z: '\n' }),
    ]) {
      const started = performance.now();
      expect(scanJson(text, 128)).toBeUndefined();
      expect(performance.now() - started).toBeLessThan(1_000); // linear: ~10 ms; a search per string: ~2 s
    }
  });
});
