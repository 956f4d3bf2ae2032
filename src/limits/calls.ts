import type { Principal } from '../auth/principal.ts';
import type { RequestContext } from '../observe/context.ts';
import type { Judged } from '../policy/authorize.ts';
import { deny, type Denial } from '../reasons.ts';
import type { Admitted } from '../route/admission.ts';
import type { Step } from '../stage.ts';
import { retryAfterSeconds } from './bucket.ts';
import type { Charge, Outcome } from './local.ts';
import { limitKey } from './keys.ts';
import type { LimitRule } from './rules.ts';
import type { JudgedName } from '../policy/compile.ts';
import { fold } from '../policy/names.ts';
import type { LimitStore } from './store.ts';

export interface WithinRates {
  readonly kind: 'within_rates';
}

const WITHIN: WithinRates = Object.freeze({ kind: 'within_rates' });

export type CallLimiter = (ctx: RequestContext, admitted: Admitted, principal: Principal, judged: Judged) => Step<WithinRates> | Promise<Step<WithinRates>>;

interface Charged {
  readonly rule: LimitRule;
  readonly rpcId: string | number | null;
}

/**
 * The upstream's rate limits and quotas for one call, after authentication and policy (a refused call
 * has spent nothing) and before forwarding. Each request or notification a rule matches costs one
 * unit, so a batch costs its length; responses to the server's own requests cost nothing. Every
 * matching rule must allow the call; when several refuse, the longest wait is the answer.
 */
export function createCallLimits(store: LimitStore, now: () => number): CallLimiter {
  return function limitCalls(ctx, { upstream }, principal, { inspected }) {
    const messages = inspected?.messages;
    if (upstream.rateLimits.length === 0 || messages === undefined) return WITHIN;
    const charges: Charge[] = [];
    const charged: Charged[] = [];
    // Each message's names folded once, not once per rule.
    const names = messages.map((m) => ({ method: judged(m.method), name: m.name === undefined ? undefined : judged(m.name) }));
    for (const rule of upstream.rateLimits) {
      let cost = 0;
      let rpcId: string | number | null | undefined;
      for (const [i, m] of messages.entries()) {
        const n = names[i] as (typeof names)[number];
        if (m.kind === 'response' || !rule.counts(n.method, n.name)) continue;
        cost++;
        rpcId ??= m.id;
      }
      if (cost === 0) continue;
      charges.push({ key: `${upstream.name}:${rule.name}:${rule.params.kind}:${limitKey(principal, rule.claim)}`, params: rule.params, cost });
      charged.push({ rule, rpcId: rpcId ?? null });
    }
    if (charges.length === 0) return WITHIN;
    const outcome = store.check(charges, now());
    return outcome instanceof Promise ? outcome.then((o) => verdict(ctx, o, charged)) : verdict(ctx, outcome, charged);
  };
}

function verdict(ctx: RequestContext, outcome: Outcome, charged: readonly Charged[]): Step<WithinRates> {
  if (outcome.allowed) return WITHIN;
  const refusing = charged[outcome.index] as Charged;
  ctx.record.rule = refusing.rule.name;
  const denial: Denial = { ...deny('rate_limited'), rpcId: refusing.rpcId, retryAfterSeconds: retryAfterSeconds(outcome.retryAfterMs) };
  return denial;
}

function judged(name: string): JudgedName {
  return { literal: name, folded: fold(name) };
}
