import type { AuditChain } from './audit-chain.ts';
import type { RequestRecord } from './record.ts';

/** One structured line per decision (allow/deny), from the request's record; never a token. Chained (audit-chain.ts). */
export function auditRecord(chain: AuditChain, r: RequestRecord, now: () => number): void {
  chain.append({
    event: 'decision',
    requestId: r.requestId,
    traceparent: r.traceparent,
    upstream: r.upstream,
    httpMethod: r.httpMethod,
    rpcMethod: r.rpcMethod,
    target: r.tool,
    decision: r.outcome,
    reason: r.reason,
    rule: r.rule,
    condition: r.condition,
    conditionFault: r.conditionFault,
    status: r.status,
    iss: r.iss,
    sub: r.sub,
    clientId: r.clientId,
    durationMs: now() - r.startedAt,
    upstreamMs: r.upstreamMs,
  }, 'decision');
}
