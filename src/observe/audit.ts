import type { Logger } from './log.ts';
import type { RequestRecord } from './record.ts';

/** One structured line per decision (allow/deny), from the request's record; never a token. */
export function auditRecord(logger: Logger, r: RequestRecord, now: () => number): void {
  logger.info({
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
