import type { AuditChain } from './audit-chain.ts';
import type { RequestRecord } from './record.ts';

/**
 * One structured line per decision (allow/deny), from the request's record; never a token. Chained
 * (audit-chain.ts). A request with a break-glass grant's token is a warning with reason `break_glass`
 * when admitted (its refusal reason otherwise), naming the grant and its ticket (README "Break-glass access").
 */
export function auditRecord(chain: AuditChain, r: RequestRecord, now: () => number): void {
  const line = {
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
  };
  if (r.breakGlass === undefined) {
    chain.append(line, 'decision');
    return;
  }
  chain.append({ ...line, reason: r.reason ?? 'break_glass', breakGlass: r.breakGlass.name, ticket: r.breakGlass.ticket }, 'decision through break-glass access', 'warn');
}
