// What JSON.parse cannot say about a text it accepted: whether an object repeats a key (RFC 8259 §4:
// "names within an object SHOULD be unique", and parsers then disagree: first wins, last wins, error),
// whether a string escapes a lone surrogate (RFC 8259 §8.2: the string is then not Unicode, and
// decoders replace, drop or keep it), and whether one escapes U+0000 (a parser on C strings ends the
// string there: "name\u0000" becomes a second "name", "/etc/passwd\u0000.txt" a file a rule on ".txt"
// never judged), and whether an object has a "__proto__" key (see scanJson). One linear pass, no
// recursion, no regular expression.
import { fold } from './names.ts';

export type JsonFault =
  | { readonly kind: 'duplicate_key'; /** folded */ readonly key: string }
  | { readonly kind: 'lone_surrogate' }
  | { readonly kind: 'nul' }
  | { readonly kind: 'proto_key' }
  | { readonly kind: 'too_deep' };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LOWER_U = 0x75;
const STRUCTURAL = new Uint8Array(128);
for (const c of '"{}[],') STRUCTURAL[c.charCodeAt(0)] = 1;

/**
 * Scans a text that JSON.parse has already accepted. Returns the first fault, or undefined when every
 * object has distinct keys, every string is well-formed Unicode without U+0000 and no container nests
 * deeper than maxDepth. Keys are compared decoded ("\u006dethod" repeats "method") and folded (names.ts):
 * Go's encoding/json, and Jackson or System.Text.Json when so configured, match a struct field
 * case-insensitively, so "Method" beside "method" is a second method to them. A key "__proto__" is a
 * fault too: JSON.parse keeps it as a plain key, but an upstream that copies the parsed object with
 * Object.assign or a deep merge sets the copy's prototype from it, so members the gateway never saw
 * (`arguments.path`) are read through it. With `keysOnly` only repeated keys and depth are judged, so
 * no other fault earlier in the text can hide a repeated key after it (the audit verifier's question).
 */
export function scanJson(text: string, maxDepth: number, keysOnly = false): JsonFault | undefined {
  const open = new OpenObjects();
  let expectKey = false;
  // The next backslash at or after the scan position, shared by every string of one scan (stringEnd).
  let backslash = -1;
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
      if (backslash <= i) {
        backslash = text.indexOf('\\', i + 1);
        if (backslash < 0) backslash = Number.MAX_SAFE_INTEGER;
      }
      const end = stringEnd(text, i + 1, backslash, !keysOnly);
      if (end === NUL_ESCAPE) return { kind: 'nul' };
      if (end < 0) return { kind: 'lone_surrogate' };
      if (expectKey) {
        const decoded = backslash < end ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        if (decoded === '__proto__' && !keysOnly) return { kind: 'proto_key' };
        const key = fold(decoded);
        if (!open.add(key)) return { kind: 'duplicate_key', key };
        expectKey = false;
      }
      i = end + 1;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (open.depth >= maxDepth) return { kind: 'too_deep' };
      open.enter(c === 0x7b);
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      open.leave();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = open.inObject();
    }
    i++;
  }
  return undefined;
}

const SMALL = 16;

/**
 * The open containers of one scan and the keys of each open object so far, in one flat list: no Set
 * or array per object. Objects are small, and a look through a few keys costs less than hashing them;
 * an object past SMALL keys moves its keys into a Set, so a long object is still scanned in linear time.
 */
class OpenObjects {
  /** The keys of every open object (that has no Set), the innermost last: the first #count entries. */
  readonly #keys: string[] = [];
  #count = 0;
  /** Per open container, outermost first: where its keys start in #keys, or -1 for an array. */
  readonly #starts: number[] = [];
  /** Per depth, the keys of an open object past SMALL keys. */
  #large: (Set<string> | undefined)[] | undefined;

  get depth(): number {
    return this.#starts.length;
  }

  enter(object: boolean): void {
    this.#starts.push(object ? this.#count : -1);
  }

  leave(): void {
    const start = this.#starts.pop();
    if (start === undefined || start < 0) return;
    this.#count = start;
    if (this.#large !== undefined) this.#large[this.#starts.length] = undefined;
  }

  inObject(): boolean {
    const top = this.#starts[this.#starts.length - 1];
    return top !== undefined && top >= 0;
  }

  /** Adds a key to the innermost object; false when it is already there. */
  add(key: string): boolean {
    const depth = this.#starts.length - 1;
    const large = this.#large?.[depth];
    if (large !== undefined) {
      if (large.has(key)) return false;
      large.add(key);
      return true;
    }
    const keys = this.#keys;
    const start = this.#starts[depth] as number;
    const count = this.#count;
    for (let k = start; k < count; k++) if (keys[k] === key) return false;
    if (count - start < SMALL) {
      keys[count] = key;
      this.#count = count + 1;
    } else {
      (this.#large ??= [])[depth] = new Set(keys.slice(start, count)).add(key);
      this.#count = start;
    }
    return true;
  }
}

/** stringEnd's answer for a string that escapes U+0000 (a raw one is not JSON: JSON.parse refused it). */
const NUL_ESCAPE = -2;

/**
 * Index of the quote closing the string that starts at `from`, -1 when an escape leaves a lone
 * surrogate, NUL_ESCAPE when one is U+0000 (both only when `judge`); `backslash` is the first
 * backslash at or after `from`. Raw characters cannot be lone surrogates: the text came from a strict
 * UTF-8 decoding, so a high-surrogate escape must be followed at once by a low-surrogate escape. A
 * string without a backslash ends at the next quote (one native search); the next backslash is cached
 * across strings, so no search passes the same text twice: linear, whatever the number of strings and
 * escapes.
 */
function stringEnd(text: string, from: number, backslash: number, judge: boolean): number {
  const quote = text.indexOf('"', from);
  if (quote < 0) return -1; // unreachable for a text JSON.parse accepted; fail closed all the same
  if (backslash > quote) return quote;
  // An escaped string: walked unit by unit from its first backslash (escapes are dense where they occur).
  let i = backslash;
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
    i += 6;
    if (!judge) continue;
    if (unit === 0) return NUL_ESCAPE;
    if (unit >= 0xdc00 && unit <= 0xdfff) return -1; // a low surrogate with no high one before it
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
