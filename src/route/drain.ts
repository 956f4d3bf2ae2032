import type { Server, ServerResponse } from 'node:http';
import { Server as NetServer } from 'node:net';

// Draining on SIGTERM under load (issue 17 §7, README "Failure rules"): readiness goes false first;
// from then on every response asks its client to close the connection, so busy keep-alive connections
// end after their current exchange instead of carrying new requests; the listener closes after
// limits.drainDelayMs (load balancers stop sending); what is in flight then has shutdownGraceMs to
// finish, and only what outlives that is cut.

const CLOSE_AFTER = 'close';
/**
 * After the listener stops accepting, connections it accepted just before may not have sent their
 * request yet; they are idle in Node's eyes and http's close() would end them at once (a reset for a
 * request the client already sent). They get this long to send it before idle connections are closed.
 */
const ACCEPTED_SETTLE_MS = 250;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The responses in flight on the traffic listener, and whether the gateway is draining. */
export class Drain {
  readonly #open = new Set<ServerResponse>();
  #draining = false;

  get draining(): boolean {
    return this.#draining;
  }

  get inflight(): number {
    return this.#open.size;
  }

  /** Every traffic request passes here (one Set insert; the hot path stays cheap). */
  track(res: ServerResponse): void {
    if (this.#draining) res.setHeader('connection', CLOSE_AFTER);
    this.#open.add(res);
    // 'close' comes once: on() rather than once(), which wraps each listener per request.
    res.on('close', () => this.#open.delete(res));
  }

  /** RFC 9112 §9.6: each response not yet started says Connection: close; later ones do too (track). */
  begin(): void {
    this.#draining = true;
    for (const res of this.#open) if (!res.headersSent) res.setHeader('connection', CLOSE_AFTER);
  }

  /** Resolves once nothing is in flight, or at the deadline (ms since the epoch); `tick` runs every 25 ms. */
  async settled(deadline: number, tick: () => void): Promise<void> {
    while (this.#open.size > 0 && Date.now() < deadline) {
      tick();
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

export interface DrainPlan {
  readonly server: Server;
  readonly drain: Drain;
  /** Ends every open SSE stream with the final event. */
  readonly endStreams: () => void;
  readonly delayMs: number;
  readonly graceMs: number;
}

/**
 * The drain, in order. Resolves once in-flight work is done or the grace is over, with the listener's
 * own close, which the caller awaits after cutting what is left (closeAllConnections).
 */
export async function drainTraffic(p: DrainPlan): Promise<{ readonly closed: Promise<void> }> {
  p.drain.begin();
  const deadline = Date.now() + p.delayMs + p.graceMs;
  if (p.delayMs > 0) await sleep(p.delayMs);
  // Stop accepting only (net's close): http's would also end the idle connections right now.
  const closed = new Promise<void>((resolve) => (p.server.listening ? NetServer.prototype.close.call(p.server, () => resolve()) : resolve()));
  p.endStreams();
  await sleep(Math.min(ACCEPTED_SETTLE_MS, p.graceMs));
  // A stream opened on a connection accepted just before the close ends too, as soon as it is seen.
  await p.drain.settled(deadline, p.endStreams);
  // Node's own close: its timers stop and idle connections end (the listener is already closed).
  p.server.close(() => undefined);
  return { closed };
}
