import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '../lib/json-response.ts';
import { readSmallBody } from '../proxy/bounded.ts';

// The transmitter side of RFC 8936 (the embedded issuer's stream, and any process that serves SETs):
// SETs are kept for a retention window, and each receiver's acknowledgements are its own, so every
// gateway replica pulls the whole stream and a new receiver (a restarted gateway) gets the window again.

export interface SetStreamOptions {
  /** How long a SET stays available: at least the longest token lifetime it can affect. */
  readonly retentionMs: number;
  readonly maxSets: number;
  readonly maxReceivers: number;
  readonly now: () => number;
  /** A receiver reported a SET it could not accept (RFC 8936 §2.4 setErrs). */
  readonly onSetError?: (receiver: string, jti: string, err: string, description: string) => void;
}

interface Held {
  readonly jti: string;
  readonly token: string;
  readonly atMs: number;
}

interface Receiver {
  readonly done: Set<string>;
  lastPollMs: number;
}

export type PollAnswer = { readonly sets: Record<string, string>; readonly moreAvailable: boolean };

export class SetStream {
  readonly #o: SetStreamOptions;
  readonly #held: Held[] = [];
  readonly #receivers = new Map<string, Receiver>();

  constructor(options: SetStreamOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#held.length;
  }

  publish(jti: string, token: string): void {
    this.#expire();
    // Past the cap the oldest SET goes first: it has the least token lifetime left to affect.
    if (this.#held.length >= this.#o.maxSets) this.#held.shift();
    this.#held.push({ jti, token, atMs: this.#o.now() });
  }

  /** One RFC 8936 §2.4 request of `receiver`: apply its acks and errors, answer what it has not acknowledged. */
  poll(receiverId: string, request: unknown): PollAnswer | { readonly error: string } {
    const body = parsePollRequest(request);
    if (typeof body === 'string') return { error: body };
    this.#expire();
    const receiver = this.#receiver(receiverId);
    for (const jti of body.ack) receiver.done.add(jti);
    for (const [jti, e] of Object.entries(body.setErrs)) {
      receiver.done.add(jti);
      this.#o.onSetError?.(receiverId, jti, e.err, e.description);
    }
    const pending = this.#held.filter((h) => !receiver.done.has(h.jti));
    const sets: Record<string, string> = {};
    for (const h of pending.slice(0, body.maxEvents)) sets[h.jti] = h.token;
    return { sets, moreAvailable: pending.length > body.maxEvents };
  }

  #receiver(id: string): Receiver {
    let r = this.#receivers.get(id);
    if (r === undefined) {
      if (this.#receivers.size >= this.#o.maxReceivers) {
        // The receiver silent longest is forgotten; if it comes back it is new and gets the window again.
        const quietest = [...this.#receivers].sort((a, b) => a[1].lastPollMs - b[1].lastPollMs)[0];
        if (quietest !== undefined) this.#receivers.delete(quietest[0]);
      }
      r = { done: new Set(), lastPollMs: 0 };
      this.#receivers.set(id, r);
    }
    r.lastPollMs = this.#o.now();
    return r;
  }

  #expire(): void {
    const horizon = this.#o.now() - this.#o.retentionMs;
    let gone = 0;
    while (gone < this.#held.length && (this.#held[gone] as Held).atMs <= horizon) gone++;
    if (gone === 0) return;
    const expired = this.#held.splice(0, gone);
    for (const r of this.#receivers.values()) for (const h of expired) r.done.delete(h.jti);
    for (const [id, r] of this.#receivers) if (r.lastPollMs <= horizon) this.#receivers.delete(id);
  }
}

interface PollRequest {
  readonly ack: readonly string[];
  readonly setErrs: Readonly<Record<string, { readonly err: string; readonly description: string }>>;
  readonly maxEvents: number;
}

/** RFC 8936 §2.4: {ack?, setErrs?, maxEvents?, returnImmediately?}; this transmitter always returns at once. */
function parsePollRequest(value: unknown): PollRequest | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'the request is not a JSON object';
  const v = value as Record<string, unknown>;
  const ack = v['ack'] ?? [];
  if (!Array.isArray(ack) || ack.length > 10_000 || ack.some((a) => typeof a !== 'string')) return 'ack must be an array of strings';
  const errs = v['setErrs'] ?? {};
  if (typeof errs !== 'object' || errs === null || Array.isArray(errs)) return 'setErrs must be an object';
  const setErrs: Record<string, { err: string; description: string }> = {};
  for (const [jti, e] of Object.entries(errs as Record<string, unknown>)) {
    const o = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
    setErrs[jti] = { err: String(o['err'] ?? 'invalid_request').slice(0, 64), description: String(o['description'] ?? '').slice(0, 256) };
  }
  const max = v['maxEvents'];
  const maxEvents = typeof max === 'number' && Number.isInteger(max) && max >= 0 ? Math.min(max, 1_000) : 100;
  return { ack: ack as string[], setErrs, maxEvents };
}

/**
 * The HTTP side: POST, JSON body (bounded), the receiver named by `?receiver=` (one name for callers
 * that give none). `authorized` decides on the Authorization header before any body is read.
 */
export function servePoll(stream: SetStream, req: IncomingMessage, res: ServerResponse, authorized: (authorization: string | undefined) => boolean): void {
  const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => sendJson(res, status, body, headers);
  if (req.method !== 'POST') return send(405, { error: 'method_not_allowed' }, { allow: 'POST' });
  if (!authorized(req.headers.authorization)) return send(401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
  const receiver = new URL(req.url ?? '/', 'http://x').searchParams.get('receiver') ?? 'default';
  void readSmallBody(req, 1024 * 1024).then((raw) => {
    if (raw === 'too_large') return; // the connection is gone
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8') || '{}');
    } catch {
      return send(400, { err: 'invalid_request', description: 'the body is not JSON' });
    }
    const answer = stream.poll(receiver.slice(0, 128), body);
    if ('error' in answer) return send(400, { err: 'invalid_request', description: answer.error });
    send(200, answer);
  }, () => req.destroy()); // a broken request stream: nothing to answer
}
