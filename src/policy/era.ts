// MCP protocol eras: up to 2025-11-25 a connection has a lifecycle (initialize, Mcp-Session-Id, the GET
// stream); from 2026-07-28 every request stands alone (server/discover, subscriptions/listen, request
// metadata headers, no sessions). The gateway checks, forwards and answers by the request's era.

export type Era = 'sessions' | 'stateless';

/** Every MCP revision the gateway understands, newest first (the `supported` list of -32022). */
export const SUPPORTED_VERSIONS: readonly string[] = Object.freeze(['2026-07-28', '2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']);

const STATELESS_SINCE = '2026-07-28';

/** Revisions are dates (YYYY-MM-DD), so their order is the strings' order. */
export function eraOf(version: string): Era {
  return version >= STATELESS_SINCE ? 'stateless' : 'sessions';
}
