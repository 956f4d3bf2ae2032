import type { UpstreamConfig } from '../config/compile.ts';
import { evictOldest } from '../lib/evict.ts';

// MCP 2026-07-28 transports "Custom Headers from Tool Parameters": a tool's inputSchema may mark
// parameters with `x-mcp-header`; clients mirror their values into Mcp-Param-{Name}. The gateway
// learns those marks from the tools/list answers it filters, so it can refuse a call whose headers
// do not mirror its arguments (an intermediary routing on the header would read another request
// than the upstream executes). Kept per compiled upstream (a WeakMap: a reload starts afresh and the
// old table is collected), bounded per upstream.

/** One annotated parameter: where its value sits in `arguments`, and the header that mirrors it. */
export interface ParamHeader {
  /** The chain of `properties` keys from the schema root (the only place an annotation is valid). */
  readonly path: readonly string[];
  /** Lower-case header name, `mcp-param-{x-mcp-header}`. */
  readonly header: string;
}

const MAX_TOOLS = 2048;
const MAX_PER_TOOL = 64;
const MAX_DEPTH = 8;
// RFC 9110 §5.1 field-name token.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const learned = new WeakMap<UpstreamConfig, Map<string, readonly ParamHeader[]>>();

/** Records (or forgets) the annotations of one tool definition from a listing of this upstream. */
export function learnTool(upstream: UpstreamConfig, tool: Readonly<Record<string, unknown>>): void {
  const name = tool['name'];
  if (typeof name !== 'string') return;
  let tools = learned.get(upstream);
  if (tools === undefined) {
    tools = new Map();
    learned.set(upstream, tools);
  }
  const found: ParamHeader[] = [];
  collect(tool['inputSchema'], [], found, 0);
  tools.delete(name); // re-inserted as the newest
  if (found.length === 0) return;
  evictOldest(tools, MAX_TOOLS, 1);
  tools.set(name, Object.freeze(found.slice(0, MAX_PER_TOOL)));
}

/** The annotated parameters of a tool this upstream listed; undefined when none are known. */
export function paramHeadersOf(upstream: UpstreamConfig, tool: string): readonly ParamHeader[] | undefined {
  return learned.get(upstream)?.get(tool);
}

/** Walks `properties` chains only ("Schema Extension": statically reachable properties). */
function collect(schema: unknown, path: readonly string[], out: ParamHeader[], depth: number): void {
  if (depth > MAX_DEPTH || typeof schema !== 'object' || schema === null || Array.isArray(schema)) return;
  const props = (schema as Record<string, unknown>)['properties'];
  if (typeof props !== 'object' || props === null || Array.isArray(props)) return;
  for (const [key, sub] of Object.entries(props)) {
    if (typeof sub !== 'object' || sub === null) continue;
    const mark = (sub as Record<string, unknown>)['x-mcp-header'];
    // An invalid mark makes the tool invalid for clients (they drop it); nothing to mirror then.
    if (typeof mark === 'string' && TOKEN.test(mark)) {
      const header = `mcp-param-${mark.toLowerCase()}`;
      if (!out.some((p) => p.header === header)) out.push({ path: [...path, key], header });
    }
    collect(sub, [...path, key], out, depth + 1);
  }
}
