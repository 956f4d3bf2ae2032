import { hash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { SignJWT, type CryptoKey } from 'jose';
import { rawLineWriter, type Logger } from './log.ts';

// Tamper-evident audit (issue 24 §5). Every audit line carries `chain` (this process's chain id),
// `seq` (0, 1, 2 … within the chain), `prev` (the `hash` of the line before it; null on the chain's
// start line, which links to nothing) and `hash`: SHA-256 over the line's canonical encoding with
// `prev` included. Every N lines, every T seconds and at shutdown a checkpoint line carries a compact
// JWS, signed with the gateway's identity-assertion key, over the chain id, its seq and the chain head.

/** Fields pino adds around ours: not covered by the hash (the covered time is our `ts`). */
export const ENVELOPE_KEYS: ReadonlySet<string> = new Set(['hash', 'level', 'time', 'msg', 'service', 'pid', 'hostname']);
export const CHECKPOINT_TYP = 'mcp-warden-audit-checkpoint+jwt';
export type AuditEvent = 'audit_chain_start' | 'decision' | 'audit_checkpoint';
export const AUDIT_EVENTS: ReadonlySet<string> = new Set<AuditEvent>(['audit_chain_start', 'decision', 'audit_checkpoint']);

type Json = string | number | boolean | null | undefined | readonly Json[] | { readonly [key: string]: Json };

// JSON.stringify escapes these in a string (RFC 8259 §7, and lone surrogates since ES2019); a string
// without any of them serialises as itself between quotes.
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/** JSON.stringify's output for a scalar, without its call for the common strings and numbers. */
function scalarJson(value: string | number | boolean | null): string {
  if (typeof value === 'string') return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  return value === null ? 'null' : value ? 'true' : 'false';
}

/**
 * RFC 8785 (JCS) for the values audit lines hold: members sorted by key, no white space, strings and
 * numbers as ECMAScript serialises them; undefined members are dropped, as JSON.stringify drops them.
 */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== 'object') return value === undefined ? 'null' : scalarJson(value);
  if (Array.isArray(value)) return `[${value.map((v: Json) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as { readonly [key: string]: Json };
  const parts: string[] = [];
  for (const key of Object.keys(obj).sort()) {
    const v = obj[key];
    if (v !== undefined) parts.push(`${JSON.stringify(key)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** A line's own keys in order, and what the hash covers of them: sorted, each with its `"key":` text. */
interface Shape {
  readonly own: readonly string[];
  readonly covered: readonly string[];
  readonly prefixes: readonly string[];
}

// Audit lines come in a handful of shapes (a decision line always has the same keys in the same order):
// sorting and quoting the keys once per shape, not per line, is most of the hash's cost (issue 25).
const MAX_SHAPES = 256;
const shapes = new Map<string, Shape>();

// Consecutive lines mostly share one shape: the last one is tried before the map (no key text joined).
let lastShape: Shape | undefined;

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function shapeOf(line: { readonly [key: string]: Json }): Shape {
  const own = Object.keys(line);
  if (lastShape !== undefined && sameKeys(lastShape.own, own)) return lastShape;
  const signature = own.join('\n');
  const known = shapes.get(signature);
  // A key may itself hold the separator: the cached shape counts only if its keys are exactly these.
  if (known !== undefined && sameKeys(known.own, own)) return (lastShape = known);
  const covered = own.filter((k) => !ENVELOPE_KEYS.has(k)).sort();
  const shape: Shape = { own, covered, prefixes: covered.map((k) => `${JSON.stringify(k)}:`) };
  if (known === undefined && shapes.size < MAX_SHAPES) shapes.set(signature, shape);
  return (lastShape = shape);
}

/** The line's canonical encoding without its braces: the covered members, sorted. */
function canonicalMembers(line: { readonly [key: string]: Json }): { readonly text: string; readonly shape: Shape } {
  const shape = shapeOf(line);
  const { covered, prefixes } = shape;
  let text = '';
  for (let i = 0; i < covered.length; i++) {
    const v = line[covered[i] as string];
    if (v === undefined) continue;
    text += `${text === '' ? '' : ','}${prefixes[i] as string}${typeof v === 'object' && v !== null ? canonicalJson(v) : scalarJson(v)}`;
  }
  return { text, shape };
}

/** The line's hash: SHA-256 (base64url) over its canonical encoding without the envelope keys. */
export function lineHash(line: { readonly [key: string]: Json }): string {
  return membersHash(canonicalMembers(line).text);
}

/** The hash of canonical members: the one formula both the writer and the verifier (lineHash) use. */
function membersHash(members: string): string {
  // One-shot hash: no Hash object per line (the audit line is on every request's close path).
  return hash('sha256', `{${members}}`, 'base64url');
}

export interface AuditSigner {
  readonly key: CryptoKey;
  readonly kid: string;
  readonly alg: string;
}

export interface AuditChainOptions {
  readonly logger: Logger;
  readonly now: () => number;
  /** The key signing identity assertions now (it follows key promotion at reload). */
  readonly signer: () => AuditSigner | undefined;
  /** Checkpoint settings now serving (a reload may change them). */
  readonly settings: () => { readonly checkpointLines: number; readonly checkpointSeconds: number };
  /** Chain id; random per start by default, so replicas sharing a log never share a chain. */
  readonly id?: string;
}

type Fields = Record<string, Json>;
type AuditLevel = 'info' | 'warn';

/** One process's audit chain: appends are synchronous; checkpoints sign asynchronously, lines wait meanwhile. */
export class AuditChain {
  readonly id: string;
  readonly #o: AuditChainOptions;
  #seq = 0;
  #prev: string | null = null;
  #sinceCheckpoint = 0;
  #lastCheckpointAt = performance.now();
  #signing = false;
  readonly #waiting: { readonly fields: Fields; readonly msg: string; readonly level: AuditLevel }[] = [];
  #timer: NodeJS.Timeout | undefined;
  // The hashed text is the line's own members: written as it is, not serialised a second time by pino.
  readonly #raw: ReturnType<typeof rawLineWriter>;
  readonly #rawShapes = new WeakMap<Shape, boolean>();

  constructor(options: AuditChainOptions) {
    this.#o = options;
    this.id = options.id ?? randomUUID();
    this.#raw = rawLineWriter(options.logger);
  }

  /**
   * Writes one audit line (at info, or warn for lines an operator must see; nothing is computed when
   * that level is off: a chain kept at warn holds only the warnings, and verifies as such).
   */
  append(fields: Fields, msg: string, level: AuditLevel = 'info'): void {
    if (!this.#o.logger.isLevelEnabled(level)) return;
    if (this.#seq === 0) this.#start();
    if (this.#signing) {
      this.#waiting.push({ fields, msg, level });
      return;
    }
    this.#write(fields, msg, level);
    if (this.#sinceCheckpoint >= this.#o.settings().checkpointLines) void this.#checkpoint(false);
  }

  /** Shutdown: a final checkpoint, so a verifier can tell a complete chain from a truncated one. */
  async seal(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    while (this.#signing) await new Promise((resolve) => setTimeout(resolve, 1));
    if (this.#seq === 0) return;
    await this.#checkpoint(true);
  }

  #start(): void {
    this.#write({ event: 'audit_chain_start', instance: hostname(), pid: process.pid }, 'audit chain start', this.#ownLevel() ?? 'warn');
    // A 1 s tick checks the time bound, so a reload that changes checkpointSeconds takes effect at once.
    this.#timer = setInterval(() => {
      const due = performance.now() - this.#lastCheckpointAt >= this.#o.settings().checkpointSeconds * 1000;
      if (due && this.#sinceCheckpoint > 0 && !this.#signing) void this.#checkpoint(false);
    }, 1000);
    this.#timer.unref();
  }

  /**
   * The level of the chain's own lines (start, checkpoints): info, or warn when only warnings are
   * written (break-glass lines are), since a line the logger drops would still take a seq and leave a
   * gap the verifier must call a removal. undefined: not even warnings are written.
   */
  #ownLevel(): AuditLevel | undefined {
    if (this.#o.logger.isLevelEnabled('info')) return 'info';
    return this.#o.logger.isLevelEnabled('warn') ? 'warn' : undefined;
  }

  #write(fields: Fields, msg: string, level: AuditLevel = 'info'): void {
    const line: Fields = { ...fields, chain: this.id, seq: this.#seq, prev: this.#prev, ts: this.#o.now() };
    const { text, shape } = canonicalMembers(line);
    const digest = membersHash(text);
    if (this.#writesRaw(shape)) this.#raw?.write(level, `${text},"hash":"${digest}"`, msg);
    else this.#o.logger[level]({ ...line, hash: digest }, msg);
    this.#prev = digest;
    this.#seq += 1;
    this.#sinceCheckpoint += 1;
  }

  /** Whether pino would write this shape's members exactly as their canonical text (no redaction, no serializer). */
  #writesRaw(shape: Shape): boolean {
    const raw = this.#raw;
    if (raw === undefined) return false;
    let ok = this.#rawShapes.get(shape);
    if (ok === undefined) {
      // An envelope key among the fields (the start line's pid) is not in the canonical text: pino writes that line.
      ok = raw.handles('hash') && shape.own.every((key) => !ENVELOPE_KEYS.has(key) && raw.handles(key));
      this.#rawShapes.set(shape, ok);
    }
    return ok;
  }

  async #checkpoint(final: boolean): Promise<void> {
    const signer = this.#o.signer();
    const level = this.#ownLevel();
    if (signer === undefined || level === undefined) return;
    this.#signing = true;
    const seq = this.#seq;
    const head = this.#prev;
    try {
      const jws = await new SignJWT({ chain: this.id, seq, head, ...(final ? { final: true } : {}) })
        .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: CHECKPOINT_TYP })
        .setIssuedAt(Math.floor(this.#o.now() / 1000))
        .sign(signer.key);
      this.#write({ event: 'audit_checkpoint', kid: signer.kid, jws, ...(final ? { final: true } : {}) }, 'audit checkpoint', level);
      this.#sinceCheckpoint = 0;
      this.#lastCheckpointAt = performance.now();
    } catch {
      this.#o.logger.error({ event: 'audit_checkpoint_failed', chain: this.id, seq }, 'audit checkpoint could not be signed');
    } finally {
      this.#signing = false;
    }
    this.#drain();
  }

  #drain(): void {
    while (this.#waiting.length > 0 && !this.#signing) {
      const next = this.#waiting.shift() as { readonly fields: Fields; readonly msg: string; readonly level: AuditLevel };
      this.#write(next.fields, next.msg, next.level);
      if (this.#sinceCheckpoint >= this.#o.settings().checkpointLines) void this.#checkpoint(false);
    }
  }
}
