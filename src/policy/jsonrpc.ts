import type { IncomingMessage } from 'node:http';
import type { UpstreamConfig } from '../config/compile.ts';
import { deny, type Denial, type Reason } from '../reasons.ts';
import { bodyFault, decodeBody } from './body.ts';
import { eraOf, SUPPORTED_VERSIONS, type Era } from './era.ts';
import { mirrorFault } from './mirror.ts';
import { fold, methodIsSound, nameIsSound } from './names.ts';
import type { Inspected, RpcMessage } from './rpc-message.ts';

export type { Inspected, RpcMessage } from './rpc-message.ts';

/** MCP revisions the gateway understands (MCP transports "Protocol Version Header": others get 400). */
const VERSIONS = new Set(SUPPORTED_VERSIONS);
const BATCHES_UNTIL = '2025-03-26';
// 2026-07-28 changelog: methods that revision removed (ping and logging/setLevel, resources/(un)subscribe
// for subscriptions/listen, the tasks methods the extension dropped, the client notifications that went).
// Never judged by their 2025 meaning nor forwarded: 404 with -32601 (transports "Protocol Version
// Header"). Not `initialize`: it selects legacy semantics on a dual-era server (versioning "Backward
// Compatibility"), so it goes on to the upstream as before.
const REMOVED_IN_2026: ReadonlySet<string> = new Set([
  'ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe', 'tasks/result', 'tasks/list',
  'notifications/roots/list_changed', 'notifications/elicitation/complete',
]);
const META_VERSION = 'io.modelcontextprotocol/protocolVersion';

/** A denial that answers in JSON-RPC, with the request id when there is one. */
function rpcDeny(reason: Reason, id: string | number | null = null, era?: Era): Denial {
  return era === undefined ? { ...deny(reason), rpcId: id } : { ...deny(reason), rpcId: id, era };
}

/**
 * 2026-07-28 transports "Protocol Version Header" and schema UnsupportedProtocolVersionError: 400 with
 * -32022, the versions to retry with, what was asked and the request's id (read leniently, only for
 * the answer), so a client speaking both eras can pick one.
 */
export function unsupportedVersion(req: IncomingMessage, body: Buffer | undefined): Denial {
  const requested = req.headers['mcp-protocol-version'];
  let id: string | number | null = null;
  if (body !== undefined) {
    try {
      id = idOf(JSON.parse(body.toString('utf8')));
    } catch {
      id = null;
    }
  }
  const data = { supported: SUPPORTED_VERSIONS, requested: typeof requested === 'string' ? requested : String(requested ?? '') };
  return { ...deny('protocol_version_unsupported'), rpcId: id, era: 'stateless', data };
}

/**
 * Reads at most maxBytes of the request body: 413 as soon as the cap is passed (SC-153). A body already
 * received whole and within the cap is taken at once, without a promise (see bufferedBody).
 */
export function readBody(req: IncomingMessage, maxBytes: number): Buffer | Denial | Promise<Buffer | Denial> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) return deny('body_too_large');
  return bufferedBody(req, maxBytes) ?? streamedBody(req, maxBytes);
}

/**
 * The body when the HTTP parser has already received all of it and it lies in the stream's buffer: the
 * parser marks a message complete just before it pushes the end of the body (node:_http_common
 * parserOnMessageComplete), so with `complete` set every byte is buffered, none was emitted (the stream
 * never flowed) and no abort can cut it short. One read() takes the whole buffer; the stream then ends
 * as it would have after the 'data' events. A body over the cap, or one still arriving, goes through
 * streamedBody, which refuses it as before.
 */
function bufferedBody(req: IncomingMessage, maxBytes: number): Buffer | undefined {
  if (!req.complete || req.readableFlowing !== null || req.readableEncoding !== null || req.readableLength > maxBytes) return undefined;
  const body = req.read() as Buffer | null;
  return body ?? Buffer.alloc(0);
}

function streamedBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | Denial> {
  // Events rather than for-await: no async iterator per request.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      cleanup();
      // Stop reading: the rest of an oversized body is never buffered.
      req.pause();
      resolve(deny('body_too_large'));
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      if (!req.complete) reject(new Error('request aborted'));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** The protocol version this request speaks; undefined = unsupported (400). */
export function protocolVersion(req: IncomingMessage): string | undefined {
  const v = req.headers['mcp-protocol-version'];
  // MCP: without the header a server assumes 2025-03-26.
  if (v === undefined) return BATCHES_UNTIL;
  return typeof v === 'string' && VERSIONS.has(v) ? v : undefined;
}

/**
 * Parses a POST body once; the same bytes are forwarded unchanged, so they must read one way only:
 * strict UTF-8 without a BOM, no repeated key and no lone surrogate anywhere (body.ts, SC-185..187).
 * Batches exist up to 2025-03-26 and are checked element by element; from 2025-06-18 an array body is
 * invalid (SC-136). Mcp-Method and Mcp-Name (2026-07-28) must mirror the body exactly: the policy
 * never trusts the header alone.
 */
export function inspect(body: Buffer, version: string, req: IncomingMessage, maxBatch: number, upstream?: UpstreamConfig): Inspected | Denial {
  const era = eraOf(version);
  const text = decodeBody(body);
  if (text === undefined) return rpcDeny('body_encoding_invalid', null, era);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return rpcDeny('body_invalid', null, era); // JSON-RPC -32700
  }
  const batch = Array.isArray(parsed);
  if (batch && version > BATCHES_UNTIL) return rpcDeny('batch_not_allowed', null, era);
  const items = batch ? (parsed as unknown[]) : [parsed];
  if (items.length === 0 || items.length > maxBatch) return rpcDeny('rpc_invalid', null, era);
  // Before any field is read: with a repeated key, no reading of the message is the upstream's for sure.
  const fault = bodyFault(text);
  if (fault !== undefined) return rpcDeny(fault.reason, batch || fault.idUnknown ? null : idOf(parsed), era);
  const messages: RpcMessage[] = [];
  for (const item of items) {
    const m = message(item, era);
    if (typeof m === 'string') return rpcDeny(m, idOf(item), era);
    // 2026-07-28 transports "Sending Messages": a client MUST NOT send responses; what a server needs
    // from it comes back in a retried request (MRTR inputResponses), judged like any other.
    if (m.kind === 'response' && era === 'stateless') return rpcDeny('rpc_invalid', m.id, era);
    messages.push(m);
  }
  if (mirrorFault(req, version, messages, batch, upstream)) {
    // A body claiming 2026-07-28 under an older header is answered as that era's client expects.
    const claimed = messages.some((m) => typeof m.metaVersion === 'string' && eraOf(m.metaVersion) === 'stateless') ? 'stateless' : era;
    return rpcDeny('header_mismatch', batch ? null : (messages[0]?.id ?? null), claimed);
  }
  return { body, messages, batch, era };
}

function idOf(item: unknown): string | number | null {
  const id = typeof item === 'object' && item !== null ? (item as { id?: unknown }).id : undefined;
  return typeof id === 'string' || Number.isSafeInteger(id) ? (id as string | number) : null;
}

/**
 * JSON-RPC 2.0 §4/§5 shapes; a call the policy must judge by name carries that name as a sound string
 * (names.ts), and every method is inside MCP's method grammar. A numeric id is a safe integer: a
 * larger one would be rounded by the gateway's own parse, so its answers (and the listing filter,
 * which matches answers to requests by id) would carry another id than the client sent.
 */
const MEMBERS = ['jsonrpc', 'id', 'method', 'params', 'result', 'error'];
const PARAM_MEMBERS = ['name', 'uri', 'arguments', 'task', 'ref', '_meta'];
const REF_MEMBERS = ['type', 'name', 'uri'];

/** A key that a case-insensitive reader takes for one of these members without being spelt as it. */
function hasLooseMember(o: object, members: readonly string[]): boolean {
  for (const key of Object.keys(o)) {
    if (members.includes(key)) continue;
    const folded = fold(key);
    if (members.includes(folded)) return true;
  }
  return false;
}

function message(item: unknown, era: Era): RpcMessage | Reason {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return 'rpc_invalid';
  const o = item as { jsonrpc?: unknown; method?: unknown; id?: unknown; params?: unknown; result?: unknown; error?: unknown };
  if (o.jsonrpc !== '2.0') return 'rpc_invalid';
  // Go's encoding/json fills a `method` field from "Method": a member spelt otherwise than JSON-RPC
  // spells it would be read by such an upstream and not by the gateway.
  if (hasLooseMember(o, MEMBERS)) return 'rpc_invalid';
  const hasId = o.id !== undefined;
  if (hasId && typeof o.id !== 'string' && !Number.isSafeInteger(o.id) && o.id !== null) return 'rpc_invalid';
  const id = (o.id ?? null) as string | number | null;
  if (o.method === undefined) {
    if (!hasId || (o.result === undefined) === (o.error === undefined)) return 'rpc_invalid';
    return { kind: 'response', method: 'response', id, name: undefined, uri: undefined, args: undefined, metaVersion: undefined };
  }
  if (typeof o.method !== 'string') return 'rpc_invalid';
  // "response" is the pseudo-method decide.ts judges a client's responses by, never a request's method.
  if (!methodIsSound(o.method) || o.method === 'response') return 'method_invalid';
  if (era === 'stateless' && REMOVED_IN_2026.has(o.method)) return 'method_not_found';
  if (o.params !== undefined && (typeof o.params !== 'object' || o.params === null)) return 'rpc_invalid';
  const params = (o.params ?? {}) as { name?: unknown; uri?: unknown; arguments?: unknown; _meta?: unknown; task?: unknown; ref?: unknown };
  if (hasLooseMember(params, PARAM_MEMBERS)) return 'rpc_invalid';
  // MCP tasks (2025-11-25): a task id the gateway cannot bind to the caller would let one identity
  // list and fetch another's results through a task store the upstream shares; refused until it can.
  if (o.method.startsWith('tasks/') || params.task !== undefined) return 'tasks_unsupported';
  let name: string | undefined;
  let uri: string | undefined;
  if (o.method === 'tools/call' || o.method === 'prompts/get') {
    if (typeof params.name !== 'string') return 'rpc_invalid';
    if (!nameIsSound(params.name)) return 'name_invalid';
    name = params.name;
  } else if (o.method === 'resources/read' || o.method === 'resources/subscribe' || o.method === 'resources/unsubscribe') {
    if (typeof params.uri !== 'string') return 'rpc_invalid';
    if (!nameIsSound(params.uri)) return 'name_invalid';
    uri = params.uri;
  } else if (o.method === 'completion/complete') {
    // The prompt or resource (template) whose argument is completed: judged as getting or reading it.
    const ref = typeof params.ref === 'object' && params.ref !== null ? (params.ref as { type?: unknown; name?: unknown; uri?: unknown }) : undefined;
    if (ref === undefined || hasLooseMember(ref, REF_MEMBERS)) return 'rpc_invalid';
    const named = ref.type === 'ref/prompt' ? ref.name : ref.type === 'ref/resource' ? ref.uri : undefined;
    if (typeof named !== 'string') return 'rpc_invalid';
    if (!nameIsSound(named)) return 'name_invalid';
    if (ref.type === 'ref/prompt') name = named;
    else uri = named;
  }
  const meta = typeof params._meta === 'object' && params._meta !== null ? (params._meta as Record<string, unknown>) : undefined;
  const metaVersion = meta !== undefined && Object.hasOwn(meta, META_VERSION) ? meta[META_VERSION] : undefined;
  return { kind: hasId ? 'request' : 'notification', method: o.method, id, name, uri, args: params.arguments, metaVersion };
}
