import { http, type Reply } from './http.ts';

// `initialize` is the one request every MCP server takes without a session (stateful or not) and that
// acts on nothing; the probes differ from the accepted control only in the assertion.
const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'mcp-warden-rehearse', version: '1' } },
});

/** One POST to the upstream itself, with or without an assertion; a session it opened is closed again. */
export async function probeDirect(url: string, header: string, assertion: string | undefined): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (assertion !== undefined) headers[header.toLowerCase()] = assertion;
  const reply = await http(url, { method: 'POST', headers, body: INITIALIZE });
  const session = reply.headers['mcp-session-id'];
  if (typeof session === 'string' && reply.status >= 200 && reply.status < 300) {
    await http(url, { method: 'DELETE', headers: assertion === undefined ? { 'mcp-session-id': session } : { 'mcp-session-id': session, [header.toLowerCase()]: assertion } });
  }
  return reply;
}

export interface DirectVerdict {
  readonly refused: boolean;
  /** What the upstream answered, in words; starts with "inconclusive" when it neither refused nor accepted. */
  readonly how: string;
}

/**
 * What counts as refused: 401 or 403 (whatever the body), or any other 2xx/4xx answer whose JSON-RPC
 * message (JSON, or the first SSE event) is an error. Accepted: 2xx with a JSON-RPC result. Anything
 * else (no answer, a 5xx, a 404, a body that is neither) is inconclusive and counts as not refused:
 * a crash or a wrong URL proves nothing about the upstream's checks.
 */
export function judgeDirect(reply: Reply): DirectVerdict {
  if (reply.status === 0) return { refused: false, how: `inconclusive: no answer (${reply.text})` };
  if (reply.status === 401 || reply.status === 403) return { refused: true, how: String(reply.status) };
  const message = rpcMessage(reply);
  const ok = reply.status >= 200 && reply.status < 300;
  if ((ok || (reply.status >= 400 && reply.status < 500)) && message?.error !== undefined) {
    return { refused: true, how: `${reply.status} with JSON-RPC error ${String(message.error.code)}` };
  }
  if (ok && message?.result !== undefined) return { refused: false, how: `${reply.status} with a result` };
  return { refused: false, how: `inconclusive: ${reply.status} with neither a JSON-RPC error nor a result` };
}

interface RpcMessage {
  readonly result?: unknown;
  readonly error?: { readonly code?: unknown };
}

function rpcMessage(reply: Reply): RpcMessage | undefined {
  const type = String(reply.headers['content-type'] ?? '');
  const text = type.includes('text/event-stream')
    ? reply.text.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim())[0]
    : reply.text;
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as RpcMessage : undefined;
  } catch {
    return undefined;
  }
}
