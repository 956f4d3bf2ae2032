import { request } from 'undici';
import { MCP_POST_HEADERS, RPC } from './rpc.ts';
import type { Reply } from './wire.ts';

export interface PostOptions {
  /** Added to `content-type: application/json` (and override it). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Default: RPC, a tools/list request every policy here allows. */
  readonly body?: string;
}

/**
 * One POST through undici, which sends only the headers given (no browser-like defaults): JSON content
 * type, the caller's headers, and `Authorization: Bearer <token>` unless the token is undefined.
 */
export async function postTo(url: string, token: string | undefined, options: PostOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const res = await request(url, { method: 'POST', headers, body: options.body ?? RPC });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

export interface McpReply {
  readonly status: number;
  /** WWW-Authenticate (see challengeOf). */
  readonly challenge: string | null;
  /** The answer's JSON body (every answer the gateway gives to these requests is JSON). */
  readonly body: unknown;
}

/** A Streamable HTTP POST (JSON and SSE accepted) with a bearer token to `path` of the gateway at `baseUrl`. */
export async function postMcp(baseUrl: string, token: string | undefined, path = '/mcp', body = RPC): Promise<McpReply> {
  const reply = await postTo(baseUrl + path, token, { headers: MCP_POST_HEADERS, body });
  return { status: reply.status, challenge: challengeOf(reply), body: JSON.parse(reply.text) as unknown };
}

/** WWW-Authenticate as one string, repeated fields joined as RFC 9110 §5.3 allows; null when absent. */
export function challengeOf(reply: Reply): string | null {
  const value = reply.headers['www-authenticate'];
  return Array.isArray(value) ? value.join(', ') : (value ?? null);
}
