import type { Principal } from '../auth/principal.ts';
import type { RequestContext } from '../observe/context.ts';
import type { Admitted } from '../route/admission.ts';
import type { Step } from '../stage.ts';
import { decide, decideAll, type Allow } from './decide.ts';
import type { Inspected } from './jsonrpc.ts';

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
  const verdict = decideAll(principal, upstream, inspected.messages);
  if ('denial' in verdict) {
    record.rpcMethod = verdict.message.method;
    record.tool = verdict.message.name ?? verdict.message.uri;
    return { ...verdict.denial, era: inspected.era };
  }
  record.rule = verdict.allow.rule;
  return { inspected };
}
