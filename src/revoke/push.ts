import { readSmallBody } from '../proxy/bounded.ts';
import { bearerSecretMatches } from '../lib/bearer-secret.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Receipt } from './receiver.ts';

const PUSH_PREFIX = '/ssf/push/';
const MAX_PUSH_BYTES = 64 * 1024;
const SECEVENT = /^application\/secevent\+jwt\s*(?:;|$)/i;

export interface PushTarget {
  /** SHA-256 of the bearer secret the transmitter must present. */
  readonly secretHash: Buffer;
  readonly receive: (token: string) => Promise<Receipt>;
}

/**
 * RFC 8935 push delivery on the admin listener: POST /ssf/push/<issuer name>, `Authorization: Bearer
 * <secret from the transmitter's secretFile>` (§2.4 leaves authentication to the deployment), body
 * `application/secevent+jwt`. 202 once applied (or already applied: a retried delivery), 400 with
 * {err, description} when refused (§2.3), 503 when the keys to verify it are unavailable (retry).
 * Returns false for any other path (the admin server answers it).
 */
export function handlePush(req: IncomingMessage, res: ServerResponse, path: string, targets: (name: string) => PushTarget | undefined): boolean {
  if (!path.startsWith(PUSH_PREFIX)) return false;
  const target = targets(path.slice(PUSH_PREFIX.length));
  if (target === undefined) return answer(res, 404, { error: 'not_found' }), true;
  if (req.method !== 'POST') return answer(res, 405, { error: 'method_not_allowed' }, { allow: 'POST' }), true;
  if (!bearerSecretMatches(req.headers.authorization, target.secretHash)) {
    return answer(res, 401, { err: 'authentication_failed', description: 'a valid bearer secret is required' }, { 'www-authenticate': 'Bearer error="invalid_token"' }), true;
  }
  if (!SECEVENT.test(req.headers['content-type'] ?? '')) return answer(res, 400, { err: 'invalid_request', description: 'the body must be application/secevent+jwt' }), true;
  void readSmallBody(req, MAX_PUSH_BYTES).then(async (body) => {
    if (body === 'too_large') return answer(res, 400, { err: 'invalid_request', description: 'the SET is too large' });
    const receipt = await target.receive(body.toString('utf8').trim());
    switch (receipt.kind) {
      case 'accepted':
      case 'replayed':
        return answer(res, 202, undefined);
      case 'refused':
        return answer(res, 400, { err: receipt.err, description: receipt.description });
      case 'retry':
        return answer(res, 503, { err: 'temporarily_unavailable', description: 'the SET cannot be verified right now' }, { 'retry-after': '5' });
    }
  }).catch(() => answer(res, 500, { error: 'internal_error' }));
  return true;
}

function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json' }), 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}
