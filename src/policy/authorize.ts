import type { Principal } from '../auth/principal.ts';
import type { RequestContext } from '../observe/context.ts';
import type { Admitted } from '../route/admission.ts';
import type { Step } from '../stage.ts';
import { decide, judgeAll, type Allow, type Judgement } from './decide.ts';
import type { Inspected } from './jsonrpc.ts';
import { pinRefusal } from './pins.ts';

/** The request as the policy judged it: its JSON-RPC messages (POST), or none (GET, DELETE). */
export interface Judged {
  readonly inspected: Inspected | undefined;
}

const NOTHING_TO_JUDGE: Judged = Object.freeze({ inspected: undefined });

/** Upstream-wide rules first, no body needed: client allow-list and the upstream's scopes. */
export function authorizeUpstream(_ctx: RequestContext, { upstream }: Admitted, principal: Principal): Step<Allow> {
  return decide(principal, upstream, { kind: 'http' });
}

/** Every JSON-RPC message of the body; a batch is refused whole when any element is denied (SC-136). */
export function authorizeMessages(ctx: RequestContext, { upstream }: Admitted, principal: Principal, inspected: Inspected | undefined): Step<Judged> {
  if (inspected === undefined) return NOTHING_TO_JUDGE;
  const { record } = ctx;
  const first = inspected.messages[0];
  record.rpcMethod = inspected.batch ? `batch(${inspected.messages.length})` : first?.method;
  record.tool = inspected.batch ? undefined : first?.name ?? first?.uri;
  const { judgement, message } = judgeAll(principal, upstream, inspected.messages);
  // The audit line names the deciding rule and its condition id, never an argument value (issue 23).
  record.rule = judgement.rule;
  record.condition = judgement.condition;
  record.conditionFault = judgement.fault === undefined ? undefined : faultText(judgement.fault);
  if (judgement.decision.kind === 'deny' && message !== undefined) {
    record.rpcMethod = message.method;
    record.tool = message.name ?? message.uri;
    return { ...judgement.decision, rpcId: message.id, era: inspected.era };
  }
  for (const m of inspected.messages) {
    const refusal = m.method === 'tools/call' && m.name !== undefined ? pinRefusal(upstream, m.name) : undefined;
    if (refusal === undefined) continue;
    record.rpcMethod = m.method;
    record.tool = m.name;
    record.rule = 'pinning';
    return { ...refusal, rpcId: m.id, era: inspected.era };
  }
  return { inspected };
}

function faultText(f: NonNullable<Judgement['fault']>): string {
  return f.column === undefined ? f.fault : `${f.fault} at column ${f.column}`;
}
