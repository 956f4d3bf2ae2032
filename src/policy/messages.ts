import type { Config } from '../config/compile.ts';
import type { RequestContext } from '../observe/context.ts';
import { deny, isDenial } from '../reasons.ts';
import type { Step } from '../stage.ts';
import { admitBody } from './body.ts';
import { inspect, protocolVersion, readBody, unsupportedVersion, type Inspected } from './jsonrpc.ts';

/** What the body says, read once: undefined for GET and DELETE (no body to judge). */
export type Messages = { readonly inspected: Inspected | undefined };

export type MessageReader = (ctx: RequestContext) => Promise<Step<Messages>>;

const NO_BODY: Messages = Object.freeze({ inspected: undefined });

/** Reads and parses the JSON-RPC body of a POST, within the configured bounds. */
export function createMessageReader(config: Config): MessageReader {
  const { maxBodyBytes, maxBatchLength } = config.limits;
  return async function readMessages(ctx) {
    const { req, res } = ctx;
    const version = protocolVersion(req);
    const unreadable = admitBody(req);
    if (unreadable !== undefined) return unreadable;
    // RFC 9110 §10.1.1: 100-continue only once the caller is authenticated and may use this upstream
    // (SC-109); the body it then sends is what the policy reads.
    const expectation = req.headers.expect;
    if (expectation !== undefined && /100-continue/i.test(expectation)) res.writeContinue();
    if (req.method !== 'POST') return version === undefined ? unsupportedVersion(req, undefined) : NO_BODY;
    let body = readBody(req, maxBodyBytes);
    if (body instanceof Promise) body = await body;
    if (isDenial(body)) return body;
    // The body is read first so the refusal can carry the request's id (-32022).
    if (version === undefined) return unsupportedVersion(req, body);
    const inspected = inspect(body, version, req, maxBatchLength, ctx.upstream);
    return isDenial(inspected) ? inspected : { inspected };
  };
}
