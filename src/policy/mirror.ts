import type { IncomingMessage } from 'node:http';
import type { UpstreamConfig } from '../config/compile.ts';
import { rawHeader } from '../lib/raw-header.ts';
import { eraOf } from './era.ts';
import { decodeHeaderValue } from './header-value.ts';
import { paramHeadersOf } from './param-headers.ts';
import type { RpcMessage } from './rpc-message.ts';

// MCP 2026-07-28 transports "Request Metadata": headers mirror the body so intermediaries can route on
// them; whoever reads the body MUST refuse a request whose headers say something else. The policy
// never judges a header, only the body; these checks make sure nothing beside the gateway can be
// told another story. Before 2026-07-28 the headers are optional, and checked when sent.

const NAMED = new Set(['tools/call', 'prompts/get', 'resources/read']);

/**
 * Whether the request's headers fail to mirror its body ("Server Validation"): a required header is
 * missing (Mcp-Method on every 2026-07-28 request, Mcp-Name on the named methods), a value differs
 * after Base64 decoding ("Value Encoding"), a value has invalid characters, or the body's
 * `_meta` protocol version is not the header's.
 */
export function mirrorFault(req: IncomingMessage, version: string, messages: readonly RpcMessage[], batch: boolean, upstream: UpstreamConfig | undefined): boolean {
  for (const m of messages) if (m.metaVersion !== undefined && m.metaVersion !== version) return true;
  const method = rawHeader(req, 'mcp-method');
  const name = rawHeader(req, 'mcp-name');
  const stateless = eraOf(version) === 'stateless';
  const only = messages.length === 1 && !batch ? messages[0] : undefined;
  if (!stateless && method.count === 0 && name.count === 0) {
    // No mirror headers on an older-era request, unless Mcp-Param-* ones: those must mirror a single call.
    if (!hasParamHeaders(req)) return false;
    return only?.method !== 'tools/call' || upstream === undefined || paramFault(req, upstream, only);
  }
  if (only === undefined || method.count > 1 || name.count > 1) return true;
  const named = NAMED.has(only.method);
  if (stateless && only.kind === 'request' && (method.count === 0 || (named && name.count === 0))) return true;
  if (!stateless && method.count === 0) return true;
  if (method.count === 1 && method.value !== only.method) return true;
  if (name.count === 1) {
    const body = only.method === 'resources/read' ? only.uri : only.name;
    if (!named || decodeHeaderValue(name.value as string) !== body) return true;
  }
  // Mcp-Param-* headers are checked whenever they are sent, in either era: they are forwarded in both.
  return only.method === 'tools/call' && upstream !== undefined && paramFault(req, upstream, only);
}

/** "Server Behavior for Custom Headers": every annotated parameter the call carries is mirrored exactly. */
function paramFault(req: IncomingMessage, upstream: UpstreamConfig, call: RpcMessage): boolean {
  const params = call.name === undefined ? undefined : paramHeadersOf(upstream, call.name);
  if (params === undefined) return false; // unknown annotations: forwarded, left to the upstream
  for (const p of params) {
    const value = valueAt(call.args, p.path);
    const header = rawHeader(req, p.header);
    // A null or absent value has no header; a header without a value mirrors nothing.
    if (value === undefined || value === null) {
      if (header.count > 0) return true;
      continue;
    }
    if (header.count !== 1) return true;
    const decoded = decodeHeaderValue(header.value as string);
    if (decoded === undefined || !mirrors(decoded, value)) return true;
  }
  return false;
}

function hasParamHeaders(req: IncomingMessage): boolean {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    // Only a name starting with m or M is lower-cased, not every long one: raw header names are
    // Latin-1 strings, and of Latin-1 only these two lower-case to m.
    if (name.length > 10 && (name.charCodeAt(0) | 0x20) === 0x6d && name.toLowerCase().startsWith('mcp-param-')) return true;
  }
  return false;
}

function valueAt(args: unknown, path: readonly string[]): unknown {
  let at = args;
  for (const key of path) {
    if (typeof at !== 'object' || at === null || Array.isArray(at) || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/** "Value Encoding" type conversion; integers compare numerically (`42.0` mirrors 42). */
function mirrors(header: string, value: unknown): boolean {
  if (typeof value === 'string') return header === value;
  if (typeof value === 'boolean') return header === String(value);
  // Beyond 2^53 two different integers parse to one double: such a value cannot be shown to mirror.
  if (typeof value === 'number') return Number.isSafeInteger(value) ? /^-?[0-9]+(\.0+)?$/.test(header) && Number(header) === value : /^-?[0-9]+\.[0-9]+$/.test(header) && Number(header) === value && Math.abs(value) < 2 ** 53;
  return false; // only primitives can be mirrored
}
