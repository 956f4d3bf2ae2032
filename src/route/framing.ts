import type { IncomingMessage } from 'node:http';
import { deny, type Denial } from '../reasons.ts';

// Headers the gateway or the upstream acts on that must appear once: with two copies, the gateway and
// an upstream parser could each pick a different one (first-wins vs last-wins vs joined). Host,
// Authorization and Mcp-Session-Id have reasons of their own in the stages that read them.
const SINGLETONS = ['content-type', 'content-length', 'transfer-encoding', 'mcp-protocol-version', 'mcp-method', 'mcp-name', 'last-event-id'];
// One bit per name: the per-request bookkeeping is a number, not a Set.
const BIT = new Map(SINGLETONS.map((name, i) => [name, 1 << i]));
const LONGEST_SINGLETON = Math.max(...SINGLETONS.map((n) => n.length));

/**
 * RFC 9112 framing the upstream must read exactly as the gateway did, checked before any credential:
 * an HTTP/1.x request line, no repeated singleton header, `chunked` as the only transfer coding, and
 * no body on GET or DELETE (nothing the policy never read may reach the upstream).
 */
export function framingProblem(req: IncomingMessage): Denial | undefined {
  // Node's parser accepts an HTTP/0.9 request line ("GET /"), which has no headers at all.
  if (req.httpVersionMajor !== 1) return deny('http_version_unsupported');
  const raw = req.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length > LONGEST_SINGLETON) continue;
    const bit = BIT.get(name.toLowerCase());
    if (bit === undefined) continue;
    if ((seen & bit) !== 0) return deny('header_duplicate');
    seen |= bit;
  }
  const te = req.headers['transfer-encoding'];
  if (te !== undefined && te.toLowerCase() !== 'chunked') return deny('transfer_coding_unsupported');
  if ((req.method === 'GET' || req.method === 'DELETE') && (te !== undefined || (req.headers['content-length'] ?? '0') !== '0')) return deny('body_not_allowed');
  return undefined;
}
