// What JSON.parse cannot say about a text it accepted: whether an object repeats a key (RFC 8259 §4:
// "names within an object SHOULD be unique", and parsers then disagree: first wins, last wins, error)
// and whether a string escapes a lone surrogate (RFC 8259 §8.2: the string is then not Unicode, and
// decoders replace, drop or keep it). One linear pass, no recursion, no regular expression.
import { fold } from './names.ts';

export type JsonFault =
  | { readonly kind: 'duplicate_key'; /** folded */ readonly key: string }
  | { readonly kind: 'lone_surrogate' }
  | { readonly kind: 'too_deep' };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LOWER_U = 0x75;
const STRUCTURAL = new Uint8Array(128);
for (const c of '"{}[],') STRUCTURAL[c.charCodeAt(0)] = 1;

/**
 * Scans a text that JSON.parse has already accepted. Returns the first fault, or undefined when every
 * object has distinct keys, every string is well-formed Unicode and no container nests deeper than
 * maxDepth. Keys are compared decoded ("\u006dethod" repeats "method") and folded (names.ts):
 * Go's encoding/json, and Jackson or System.Text.Json when so configured, match a struct field
 * case-insensitively, so "Method" beside "method" is a second method to them.
 */
export function scanJson(text: string, maxDepth: number): JsonFault | undefined {
  // One entry per open container: the keys of an object so far, or null for an array.
  const frames: (Set<string> | null)[] = [];
  const cursor: Cursor = { backslash: -1 };
  let expectKey = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    // Outside strings a valid text is ASCII; digits, literals, colons and white space need no look.
    if (STRUCTURAL[c] !== 1) {
      i++;
      continue;
    }
    if (c === QUOTE) {
      const end = stringEnd(text, i + 1, cursor);
      if (end < 0) return { kind: 'lone_surrogate' };
      if (expectKey) {
        const keys = frames[frames.length - 1] as Set<string>;
        const key = fold(keyText(text, i + 1, end));
        if (keys.has(key)) return { kind: 'duplicate_key', key };
        keys.add(key);
        expectKey = false;
      }
      i = end + 1;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (frames.length >= maxDepth) return { kind: 'too_deep' };
      frames.push(c === 0x7b ? new Set() : null);
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      const top = frames[frames.length - 1];
      expectKey = top !== undefined && top !== null;
    }
    i++;
  }
  return undefined;
}

/** A key's decoded value; escapes are rare in keys, so JSON.parse decodes only those that have one. */
function keyText(text: string, start: number, end: number): string {
  const raw = text.slice(start, end);
  return raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
}

/** The next backslash at or after the scan position, shared by every string of one scan. */
interface Cursor {
  backslash: number;
}

/**
 * Index of the quote closing the string that starts at `from`, or -1 when an escape leaves a lone
 * surrogate. Raw characters cannot be lone surrogates: the text came from a strict UTF-8 decoding,
 * so a high-surrogate escape must be followed at once by a low-surrogate escape. A string without a
 * backslash ends at the next quote (one native search); the next backslash is cached across strings,
 * so no search passes the same text twice: linear, whatever the number of strings and escapes.
 */
function stringEnd(text: string, from: number, cursor: Cursor): number {
  const quote = text.indexOf('"', from);
  if (cursor.backslash < from) {
    cursor.backslash = text.indexOf('\\', from);
    if (cursor.backslash < 0) cursor.backslash = Number.MAX_SAFE_INTEGER;
  }
  if (quote < 0) return -1; // unreachable for a text JSON.parse accepted; fail closed all the same
  if (cursor.backslash > quote) return quote;
  // An escaped string: walked unit by unit from its first backslash (escapes are dense where they occur).
  let i = cursor.backslash;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return i;
    if (c !== BACKSLASH) {
      if (i >= text.length) return -1;
      i++;
      continue;
    }
    if (text.charCodeAt(i + 1) !== LOWER_U) {
      i += 2;
      continue;
    }
    const unit = hex4(text, i + 2);
    if (unit >= 0xdc00 && unit <= 0xdfff) return -1; // a low surrogate with no high one before it
    i += 6;
    if (unit >= 0xd800 && unit <= 0xdbff) {
      if (text.charCodeAt(i) !== BACKSLASH || text.charCodeAt(i + 1) !== LOWER_U) return -1;
      const low = hex4(text, i + 2);
      if (low < 0xdc00 || low > 0xdfff) return -1;
      i += 6;
    }
  }
}

/** The code unit of four hex digits at `at`; -1 if they are not hex (never, after JSON.parse). */
function hex4(text: string, at: number): number {
  let v = 0;
  for (let k = at; k < at + 4; k++) {
    const d = hexDigit(text.charCodeAt(k));
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}
