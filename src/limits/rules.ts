import { globMatcher, type JudgedName } from '../policy/compile.ts';
import type { LimitParams } from './bucket.ts';

// rateLimits entries → immutable rules, compiled once per config (STYLE rule 2).

export interface LimitRule {
  /** The configured name: the metric label and the audit line's `rule`. */
  readonly name: string;
  /**
   * Does this JSON-RPC message count against the rule? A limit restricts, so, like a restricting
   * policy rule, it applies when the literal name or its normalised form matches (policy/names.ts).
   */
  readonly counts: (method: JudgedName, name: JudgedName | undefined) => boolean;
  /** undefined = the identity (iss + sub + client_id); else a verified claim, e.g. a tenant. */
  readonly claim: string | undefined;
  readonly params: LimitParams;
}

export interface RawLimit {
  readonly name: string;
  readonly method: string;
  readonly tool?: string | undefined;
  readonly claim?: string | undefined;
  readonly rate?: number | undefined;
  readonly perSeconds: number;
  readonly burst?: number | undefined;
  readonly quota?: number | undefined;
  readonly windowSeconds?: number | undefined;
}

/** The schema guarantees exactly one of rate (bucket) or quota (window) per entry. */
export function compileLimits(raw: readonly RawLimit[]): readonly LimitRule[] {
  return Object.freeze(raw.map((l): LimitRule => {
    const method = globMatcher(l.method);
    const tool = l.tool === undefined ? undefined : globMatcher(l.tool);
    const params: LimitParams = l.rate !== undefined
      ? Object.freeze({ kind: 'bucket', burst: l.burst ?? l.rate, refillPerMs: l.rate / (l.perSeconds * 1000) })
      : Object.freeze({ kind: 'window', limit: l.quota ?? 0, windowMs: (l.windowSeconds ?? 0) * 1000 });
    return Object.freeze({
      name: l.name,
      // A tool glob names tools/call by its params.name, as the policy's `tools` entries do.
      counts: tool === undefined
        ? (m: JudgedName) => method(m) !== 'none'
        : (m: JudgedName, n: JudgedName | undefined) => m.literal === 'tools/call' && n !== undefined && method(m) !== 'none' && tool(n) !== 'none',
      claim: l.claim,
      params,
    });
  }));
}
