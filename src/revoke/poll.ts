import { Agent, request, type Dispatcher } from 'undici';
import type { TransmitterConfig } from '../config/compile.ts';
import type { Receipt } from './receiver.ts';

const MAX_POLL_BYTES = 4 * 1024 * 1024;

/** An RFC 8936 §2.4 setErrs member. */
interface SetErr {
  readonly err: string;
  readonly description: string;
}

export interface PollOutcome {
  readonly ok: boolean;
  /** When not ok: a short cause for the log and the readiness body (never a credential). */
  readonly error?: string;
}

/**
 * RFC 8936 poll delivery for one transmitter: POST {ack, setErrs, maxEvents, returnImmediately} and
 * handle the `sets` answered; acknowledgements ride on the next request (§2.4), which follows at once
 * when SETs came (so acks never wait an interval) and after intervalMs otherwise. The receiver names
 * itself with `receiver=<id>` in the query, so a transmitter serving many replicas keeps acks apart.
 */
export class Poller {
  readonly #t: TransmitterConfig;
  readonly #url: string;
  readonly #authorization: string | undefined;
  readonly #receive: (token: string) => Promise<Receipt>;
  readonly #onOutcome: (outcome: PollOutcome) => void;
  readonly #agent = new Agent({ connections: 1, pipelining: 0 });
  #acks: string[] = [];
  #errs: Record<string, SetErr> = {};
  #stopped = false;
  #abort: AbortController | undefined;
  #wake: (() => void) | undefined;

  constructor(t: TransmitterConfig, receiverId: string, authorization: string | undefined, receive: (token: string) => Promise<Receipt>, onOutcome: (outcome: PollOutcome) => void) {
    const url = new URL(t.poll?.url ?? 'http://invalid');
    url.searchParams.set('receiver', receiverId);
    this.#t = t;
    this.#url = url.toString();
    this.#authorization = authorization;
    this.#receive = receive;
    this.#onOutcome = onOutcome;
  }

  start(): void {
    void this.#loop();
  }

  stop(): void {
    this.#stopped = true;
    this.#abort?.abort();
    this.#wake?.();
    void this.#agent.close();
  }

  async #loop(): Promise<void> {
    const interval = this.#t.poll?.intervalMs ?? 1_000;
    while (!this.#stopped) {
      let again = false;
      try {
        again = await this.#pollOnce();
        this.#onOutcome({ ok: true });
      } catch (err) {
        if (this.#stopped) return;
        this.#onOutcome({ ok: false, error: err instanceof Error ? err.message : 'poll failed' });
      }
      if (!again) await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, interval);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** One request; true when it settled SETs (poll again at once: their acks, and any more available). */
  async #pollOnce(): Promise<boolean> {
    const acks = this.#acks;
    const errs = this.#errs;
    const body = await this.#post({ ack: acks, ...(Object.keys(errs).length > 0 ? { setErrs: errs } : {}), maxEvents: this.#t.poll?.maxEvents ?? 100, returnImmediately: true });
    // Delivered: these acks and errors are the transmitter's now (§2.4); a failed request keeps them.
    this.#acks = this.#acks.slice(acks.length);
    for (const jti of Object.keys(errs)) delete this.#errs[jti];
    let settled = 0;
    for (const [jti, token] of Object.entries(body.sets)) {
      const receipt = await this.#receive(token);
      if (receipt.kind === 'accepted' || receipt.kind === 'replayed') this.#acks.push(jti);
      else if (receipt.kind === 'refused') this.#errs[jti] = { err: receipt.err, description: receipt.description };
      else continue; // retry (keys unavailable): neither, so the transmitter delivers it again
      settled++;
    }
    // Only progress polls again at once (to deliver its acks); SETs that must wait keep the interval.
    return settled > 0;
  }

  async #post(payload: object): Promise<{ readonly sets: Record<string, string>; readonly moreAvailable: boolean }> {
    const timeoutMs = this.#t.poll?.timeoutMs ?? 5_000;
    this.#abort = new AbortController();
    const timer = setTimeout(() => this.#abort?.abort(), timeoutMs);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.#url, {
        method: 'POST',
        dispatcher: this.#agent,
        signal: this.#abort.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        headers: { 'content-type': 'application/json', accept: 'application/json', ...(this.#authorization === undefined ? {} : { authorization: `Bearer ${this.#authorization}` }) },
        body: JSON.stringify(payload),
      });
    } catch {
      clearTimeout(timer);
      throw new Error(this.#abort.signal.aborted ? 'timeout' : 'network error');
    }
    try {
      return await readAnswer(res);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** RFC 8936 §2.5: 200 with {sets: {jti: SET}, moreAvailable}; anything else fails this poll. */
async function readAnswer(res: Dispatcher.ResponseData): Promise<{ readonly sets: Record<string, string>; readonly moreAvailable: boolean }> {
  res.body.on('error', () => undefined);
  if (res.statusCode !== 200) {
    res.body.destroy();
    throw new Error(`status ${res.statusCode}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > MAX_POLL_BYTES) {
      res.body.destroy();
      throw new Error('answer too large');
    }
    chunks.push(chunk as Buffer);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new Error('invalid JSON');
  }
  const p = parsed as { sets?: unknown; moreAvailable?: unknown };
  if (typeof p !== 'object' || p === null || typeof p.sets !== 'object' || p.sets === null || Array.isArray(p.sets)) throw new Error('invalid answer');
  const sets = p.sets as Record<string, unknown>;
  if (Object.values(sets).some((v) => typeof v !== 'string')) throw new Error('invalid answer');
  return { sets: sets as Record<string, string>, moreAvailable: p.moreAvailable === true };
}
