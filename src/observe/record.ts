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
}

export function newRecord(requestId: string, httpMethod: string, startedAt: number): RequestRecord {
  return {
    requestId, httpMethod, startedAt,
    upstream: undefined, outcome: 'deny', reason: undefined, status: undefined,
    iss: undefined, sub: undefined, clientId: undefined, rpcMethod: undefined, tool: undefined, upstreamMs: undefined,
  };
}
