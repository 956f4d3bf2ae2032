import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UpstreamConfig } from '../config/compile.ts';
import { newRecord, type RequestRecord } from './record.ts';

/** One request as the stages see it: the HTTP pair, its record, and what a refusal must know. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly record: RequestRecord;
  /** Set by admission once the request names an upstream: the challenge's resource metadata comes from it. */
  upstream: UpstreamConfig | undefined;
  /** CORS headers for an allowed Origin, on every answer including refusals. */
  cors: Readonly<Record<string, string>> | undefined;
  /** RFC 6750 §3: a request without credentials gets no error attributes in its challenge. */
  tokenPresented: boolean;
  /** RFC 9449 §7.1: a request that used the DPoP scheme is answered with a DPoP challenge. */
  dpopPresented: boolean;
  /** Ends the upstream exchange when the client leaves before the answer is complete. */
  abort: AbortController | undefined;
}

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * Starts a request's record (STYLE rule 10). One 'close' listener per request ('close' fires once):
 * the audit line and metrics, then, for a forwarded request the client left early, the end of the
 * upstream exchange.
 */
export function openContext(req: IncomingMessage, res: ServerResponse, now: () => number, onRecord: (record: RequestRecord) => void): RequestContext {
  const incomingId = req.headers['x-request-id'];
  const requestId = typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
  const traceparent = req.headers['traceparent'];
  const record = newRecord(requestId, req.method ?? '', now(), typeof traceparent === 'string' && traceparent.length <= 128 ? traceparent : undefined);
  res.setHeader('x-request-id', requestId);
  const ctx: RequestContext = { req, res, requestId, record, upstream: undefined, cors: undefined, tokenPresented: false, dpopPresented: false, abort: undefined };
  res.on('close', () => {
    record.status ??= res.statusCode;
    onRecord(record);
    if (ctx.abort !== undefined && !res.writableFinished) ctx.abort.abort();
  });
  return ctx;
}
