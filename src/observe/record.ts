import type { Reason } from '../reasons.ts';

/**
 * Facts the stages add about one request (STYLE rule 10). One audit line and one metrics update are
 * produced from it when the response closes. Never holds a token.
 */
export interface RequestRecord {
  readonly requestId: string;
  readonly httpMethod: string;
  readonly startedAt: number;
  upstream: string | undefined;
  outcome: 'allow' | 'deny' | 'error' | 'public';
  reason: Reason | undefined;
  status: number | undefined;
  iss: string | undefined;
  sub: string | undefined;
  clientId: string | undefined;
  rpcMethod: string | undefined;
  tool: string | undefined;
  upstreamMs: number | undefined;
  /** The gateway's own time before forwarding (auth, policy, assertion), in seconds. */
  gatewaySeconds: number | undefined;
  /** The policy rule that allowed the call, e.g. "tools[0]". */
  rule: string | undefined;
  /** The deciding rule's CEL condition id ("cel:…"), and why it could not be decided (never a value). */
  condition: string | undefined;
  conditionFault: string | undefined;
  traceparent: string | undefined;
  /** The break-glass grant whose token this is (admitted or refused): the audit line is a warning. */
  breakGlass: { readonly name: string; readonly ticket: string } | undefined;
  readonly perfStart: number;
}

export function newRecord(requestId: string, httpMethod: string, startedAt: number, traceparent: string | undefined): RequestRecord {
  return {
    requestId, httpMethod, startedAt, traceparent, perfStart: performance.now(),
    upstream: undefined, outcome: 'deny', reason: undefined, status: undefined, iss: undefined, sub: undefined, clientId: undefined,
    rpcMethod: undefined, tool: undefined, upstreamMs: undefined, gatewaySeconds: undefined, rule: undefined, condition: undefined, conditionFault: undefined,
    breakGlass: undefined,
  };
}
