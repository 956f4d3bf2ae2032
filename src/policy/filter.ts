import type { Principal } from '../auth/principal.ts';
import type { UpstreamConfig } from '../config/compile.ts';
import { decide } from './decide.ts';
import { learnTool } from './param-headers.ts';
import { observeTool } from './pins.ts';
import { templateAllowed } from './templates.ts';

// The listing filter (issue 15, points 8-9). The rule is the SHAPE of a result, not the request it
// answers: on an upstream whose listings can differ per caller, every JSON-RPC result the gateway
// proxies (any status, any stream, any id, batch element or not) whose object carries `tools`,
// `prompts`, `resources` or `resourceTemplates` is filtered to the items the caller may use. So an
// answer under an id of another type ("1" for 1), on the GET stream, or inside a batch is filtered
// like the direct answer; a client matches responses by id, whatever stream carried them.

type Judge = (item: Record<string, unknown>, principal: Principal, upstream: UpstreamConfig) => boolean;

const byName = (call: string): Judge => (item, principal, upstream) =>
  typeof item['name'] === 'string' && decide(principal, upstream, { kind: 'rpc', method: call, name: item['name'], listing: true }).kind === 'allow';

/** Result field → how one of its items is judged (an item that cannot be judged is not shown). */
const FIELDS: Readonly<Record<string, Judge>> = {
  tools: byName('tools/call'),
  prompts: byName('prompts/get'),
  resources: (item, principal, upstream) =>
    typeof item['uri'] === 'string' && decide(principal, upstream, { kind: 'rpc', method: 'resources/read', uri: item['uri'] }).kind === 'allow',
  resourceTemplates: (item, principal, upstream) =>
    typeof item['uriTemplate'] === 'string' && templateAllowed(principal, upstream, item['uriTemplate']),
};

/** Whether listings of this upstream must be read: they can differ per caller, or their tools are pinned. */
export function filtersListings(upstream: UpstreamConfig): boolean {
  return upstream.rules.length > 0 || upstream.defaultAction === 'deny' || upstream.pinning !== undefined;
}

/** A message the caller must not see at all (filterMessage): dropped from its stream or batch. */
const DROPPED: unique symbol = Symbol('dropped');

/**
 * A parsed JSON-RPC message or batch with every listing-shaped result filtered. A listing field that
 * is not an array becomes an empty one: nothing the gateway could not judge is shown (SC-143, SC-191).
 * A filtered result is a per-caller view: a CacheableResult (2026-07-28 server/utilities/caching
 * "Choosing a Cache Scope") then says `cacheScope: "private"`, its ttlMs kept, so no shared cache
 * serves it to another caller. The tools seen teach the gateway their x-mcp-header marks.
 */
export function filterMessage(doc: unknown, principal: Principal, upstream: UpstreamConfig): unknown {
  if (Array.isArray(doc)) return doc.map((d: unknown) => filterMessage(d, principal, upstream)).filter((d) => d !== DROPPED);
  if (typeof doc !== 'object' || doc === null) return doc;
  if (updateHidden(doc as Record<string, unknown>, principal, upstream)) return DROPPED;
  if ((doc as Record<string, unknown>)['method'] === ACKNOWLEDGED) return honestAck(doc as Record<string, unknown>, principal, upstream);
  const result = (doc as Record<string, unknown>)['result'];
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return doc;
  let filtered: Record<string, unknown> | undefined;
  for (const [field, judge] of Object.entries(FIELDS)) {
    if (!Object.hasOwn(result, field)) continue;
    const items = (result as Record<string, unknown>)[field];
    filtered ??= { ...(result as Record<string, unknown>) };
    // Every tool the upstream lists is learnt and checked against its pin, whoever may see it; a tool
    // held back by its pin (onChange: block) is shown to no one.
    const held = new Set<unknown>();
    if (field === 'tools' && Array.isArray(items)) {
      for (const t of items) {
        if (typeof t !== 'object' || t === null) continue;
        learnTool(upstream, t as Record<string, unknown>);
        if (!observeTool(upstream, t as Record<string, unknown>)) held.add(t);
      }
    }
    filtered[field] = Array.isArray(items)
      ? items.filter((item: unknown) => typeof item === 'object' && item !== null && !held.has(item) && judge(item as Record<string, unknown>, principal, upstream))
      : [];
  }
  if (filtered === undefined) return doc;
  if (Object.hasOwn(filtered, 'cacheScope') || Object.hasOwn(filtered, 'ttlMs')) filtered['cacheScope'] = 'private';
  return { ...(doc as object), result: filtered };
}

const ACKNOWLEDGED = 'notifications/subscriptions/acknowledged';

/**
 * The listen stream's acknowledgement says which subscriptions the caller will be served: resource
 * subscriptions it may not read are left out, since their updates are dropped (updateHidden).
 */
function honestAck(doc: Record<string, unknown>, principal: Principal, upstream: UpstreamConfig): unknown {
  const params = doc['params'];
  const filter = typeof params === 'object' && params !== null ? (params as Record<string, unknown>)['notifications'] : undefined;
  if (typeof filter !== 'object' || filter === null || !Object.hasOwn(filter, 'resourceSubscriptions')) return doc;
  const uris = (filter as Record<string, unknown>)['resourceSubscriptions'];
  const kept = Array.isArray(uris)
    ? uris.filter((uri: unknown) => typeof uri === 'string' && decide(principal, upstream, { kind: 'rpc', method: 'resources/read', uri }).kind === 'allow')
    : [];
  return { ...doc, params: { ...(params as object), notifications: { ...filter, resourceSubscriptions: kept } } };
}

/**
 * A resource-updated notification (the 2025 GET stream, a 2026-07-28 subscriptions/listen stream)
 * about a resource the caller may not read tells it the resource exists: dropped, like the listing
 * entry would be. One without a URI the gateway can judge is dropped too.
 */
function updateHidden(doc: Record<string, unknown>, principal: Principal, upstream: UpstreamConfig): boolean {
  if (doc['method'] !== 'notifications/resources/updated') return false;
  const params = doc['params'];
  const uri = typeof params === 'object' && params !== null ? (params as Record<string, unknown>)['uri'] : undefined;
  return typeof uri !== 'string' || decide(principal, upstream, { kind: 'rpc', method: 'resources/read', uri }).kind !== 'allow';
}

// A JSON key equal to a listing field is written either literally or with a \u escape (its letters have
// no other escape, RFC 8259 §7). Text with neither cannot carry a listing and may pass as it is. The
// messages judged by their method (resources/updated, the listen acknowledgement) hold one of these too.
// Those are the names as UTF-8 (and latin1) spells them: in UTF-16 or UTF-32, which clients that detect
// JSON's encoding from its first bytes read (Python's json.loads, requests), every ASCII character has a
// NUL byte, which UTF-8 JSON text never holds (U+0000 must be escaped): a NUL sends the text to the parser,
// which refuses it, rather than passing a listing the search could not see.
const FIELD_NAMES = ['tools', 'prompts', 'resources', 'resourceTemplates', 'resourceSubscriptions', '\\u', '\u0000'];
const FIELD_BYTES = FIELD_NAMES.map((name) => Buffer.from(name, 'latin1'));
// Up to this size a body is searched as a latin1 string (one byte, one character: a name matches the
// text exactly where it matches the bytes): one copy, then a string search per name, costs about half of as many
// Buffer searches, each a call into C++ (issue 25: every response of a filtered upstream is searched).
// Larger bodies are searched in place, with the names as Buffers made once.
const SEARCH_AS_TEXT = 4096;

/** Whether JSON text (string or UTF-8 bytes) might hold a listing field and must be parsed to be judged. */
export function mayHoldListing(text: string | Buffer): boolean {
  if (typeof text !== 'string' && text.length > SEARCH_AS_TEXT) {
    for (const name of FIELD_BYTES) if (text.indexOf(name) !== -1) return true;
    return false;
  }
  const s = typeof text === 'string' ? text : text.toString('latin1');
  for (const name of FIELD_NAMES) if (s.includes(name)) return true;
  return false;
}

// A listing field name split across two chunks: its first part is in the last 20 bytes of the one.
const OVERLAP = 'resourceSubscriptions'.length - 1;
const NOTHING = Buffer.alloc(0);

/**
 * For a JSON body too large to parse (past limits.maxListingBytes): accepts chunk after chunk while
 * none of what was seen can hold a listing field name. A listing's items follow their key, so a body
 * cut before the first chunk that completes such a name shows the client no listing.
 */
export function createListingGuard(): (chunk: Buffer) => boolean {
  // Shared: a zero-length Buffer cannot be written to.
  let tail = NOTHING;
  return (chunk) => {
    if (mayHoldListing(chunk) || mayHoldListing(Buffer.concat([tail, chunk.subarray(0, OVERLAP)]))) return false;
    const recent = chunk.length >= OVERLAP ? chunk.subarray(chunk.length - OVERLAP) : Buffer.concat([tail, chunk]).subarray(-OVERLAP);
    tail = Buffer.from(recent);
    return true;
  };
}

/**
 * JSON text → the filtered message re-serialised, the same text when it cannot hold a listing, or
 * undefined when it must be refused (a JSON body) or dropped (an SSE event): not JSON, a number
 * JSON.parse would change (an id or value beyond 2^53 must not change silently), or a message the
 * caller may not see (updateHidden). Only the re-serialisation is forwarded, never the original
 * bytes of a parsed message, so a duplicate "result" key (JSON.parse keeps the last) cannot show a
 * first-wins client another listing.
 */
export function filterJsonText(text: string, principal: Principal, upstream: UpstreamConfig): string | undefined {
  if (!mayHoldListing(text)) return text;
  let doc: unknown;
  try {
    doc = JSON.parse(text, (_key, value: unknown) => {
      if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) throw new RangeError('unsafe integer');
      return value;
    });
  } catch {
    return undefined;
  }
  const filtered = filterMessage(doc, principal, upstream);
  return filtered === DROPPED ? undefined : JSON.stringify(filtered);
}

/** A whole JSON response body: the same bytes when it cannot hold a listing, else filtered; undefined = refuse. */
export function filterJsonBody(body: Buffer, principal: Principal, upstream: UpstreamConfig): Buffer | undefined {
  if (body.length === 0 || !mayHoldListing(body)) return body;
  const filtered = filterJsonText(body.toString('utf8'), principal, upstream);
  return filtered === undefined ? undefined : Buffer.from(filtered);
}
