import { Agent, request, type Dispatcher } from 'undici';

// Key and metadata fetches: exactly 200, JSON content type, bounded time and size, no redirects
// (SC-076..081, SC-089). undici.request never follows redirects unless told to.

export class FetchFailed extends Error {
  /** `metadata`: discovery metadata that answered but cannot be used (wrong issuer, jwks_uri elsewhere). */
  readonly code: 'timeout' | 'status' | 'content_type' | 'too_large' | 'invalid_json' | 'network' | 'metadata';
  /** The URL that failed, without userinfo, query or fragment (they may hold credentials). */
  readonly url: string | undefined;
  /** The HTTP status, when the server answered with one other than 200. */
  readonly status: number | undefined;
  constructor(code: FetchFailed['code'], message: string, where: { readonly url?: string; readonly status?: number } = {}) {
    super(message);
    this.name = 'FetchFailed';
    this.code = code;
    this.url = where.url === undefined ? undefined : loggableUrl(where.url);
    this.status = where.status;
  }
}

/** origin + path only: what an operator needs to find the endpoint, never a credential in the URL. */
export function loggableUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.origin + u.pathname;
  } catch {
    return '(invalid URL)';
  }
}

export interface FetchedJson {
  readonly body: unknown;
  /** Cache-Control max-age, when the server sent one. */
  readonly maxAgeSeconds: number | undefined;
}

let sharedAgent: Dispatcher | undefined;
function agent(): Dispatcher {
  // One pool for every key and metadata fetch; timeouts are set per request.
  sharedAgent ??= new Agent({ connections: 4, pipelining: 0 });
  return sharedAgent;
}

const JSON_TYPE = /^application\/(?:[a-z0-9.+-]*\+)?json\s*(?:;|$)/i;

export interface PostForm {
  readonly form: string;
  readonly headers: Readonly<Record<string, string>>;
}

export async function fetchJson(url: string, timeoutMs: number, maxBytes: number, post?: PostForm): Promise<FetchedJson> {
  try {
    return await fetchOnce(url, timeoutMs, maxBytes, post);
  } catch (err) {
    // Every failure names its URL, so a log line says where, not only what (issue 24 §1).
    const f = err instanceof FetchFailed ? err : new FetchFailed('network', networkMessage(err));
    throw new FetchFailed(f.code, f.message, { url, ...(f.status === undefined ? {} : { status: f.status }) });
  }
}

async function fetchOnce(url: string, timeoutMs: number, maxBytes: number, post?: PostForm): Promise<FetchedJson> {
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      method: post === undefined ? 'GET' : 'POST',
      dispatcher: agent(),
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      headers: post === undefined
        ? { accept: 'application/jwk-set+json, application/json' }
        : { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', ...post.headers },
      body: post?.form ?? null,
    });
  } catch (err) {
    throw signal.aborted ? new FetchFailed('timeout', 'timed out') : new FetchFailed('network', networkMessage(err));
  }
  // The body may still be open when we give up on it; a late abort must not surface as an unhandled error.
  res.body.on('error', () => undefined);
  try {
    if (res.statusCode !== 200) throw new FetchFailed('status', `status ${res.statusCode}`, { status: res.statusCode });
    const type = String(res.headers['content-type'] ?? '');
    if (!JSON_TYPE.test(type)) throw new FetchFailed('content_type', 'not a JSON content type');
    const declared = Number(res.headers['content-length'] ?? NaN);
    if (declared > maxBytes) throw new FetchFailed('too_large', `larger than ${maxBytes} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) throw new FetchFailed('too_large', `larger than ${maxBytes} bytes`);
      chunks.push(chunk as Buffer);
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new FetchFailed('invalid_json', 'invalid JSON');
    }
    return { body, maxAgeSeconds: maxAge(res.headers['cache-control']) };
  } catch (err) {
    res.body.destroy();
    if (err instanceof FetchFailed) throw err;
    throw signal.aborted ? new FetchFailed('timeout', 'timed out') : new FetchFailed('network', networkMessage(err));
  }
}

function maxAge(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value === undefined) return undefined;
  if (/(?:^|,)\s*(?:no-store|no-cache)\b/i.test(value)) return 0;
  const m = /(?:^|,)\s*max-age\s*=\s*"?(\d{1,9})"?/i.exec(value);
  return m === null ? undefined : Number(m[1]);
}

function networkMessage(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'network error';
}
