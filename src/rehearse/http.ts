import { request } from 'undici';

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

/** One bounded HTTP exchange; network failures become status 0 with the error code as text. */
export async function http(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}, timeoutMs = 10_000): Promise<Reply> {
  try {
    const res = await request(url, {
      method: (init.method ?? 'GET') as 'GET',
      headers: init.headers ?? {},
      body: init.body ?? null,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text };
  } catch (err) {
    return { status: 0, headers: {}, text: (err as { code?: string }).code ?? 'network error' };
  }
}

export function json<T>(reply: Reply): T | undefined {
  try {
    return JSON.parse(reply.text) as T;
  } catch {
    return undefined;
  }
}

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** An MCP tools/list through the gateway, with or without a bearer token. */
export function mcpCall(url: string, token: string | undefined, body = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'): Promise<Reply> {
  return http(url, { method: 'POST', headers: token === undefined ? MCP_HEADERS : { ...MCP_HEADERS, authorization: `Bearer ${token}` }, body });
}

export function challenge(reply: Reply): string {
  const h = reply.headers['www-authenticate'];
  return Array.isArray(h) ? h.join(', ') : (h ?? '');
}
