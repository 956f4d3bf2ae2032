import type { UpstreamConfig } from '../config/compile.ts';

/**
 * Requests in flight per upstream (issue 17 §8): past the upstream's maxInFlight the gateway answers
 * 503 upstream_busy with Retry-After at once, instead of queueing without bound behind a slow upstream.
 * With the pool's connection cap this also bounds the pool's queue: at most maxInFlight − maxConnections
 * requests wait for a socket, each at most timeoutMs.
 */
export class InFlight {
  readonly #counts = new Map<string, number>();

  /** A release function for the slot taken, or undefined when the upstream is at its cap. */
  take(upstream: UpstreamConfig): (() => void) | undefined {
    const name = upstream.name;
    const n = this.#counts.get(name) ?? 0;
    if (n >= upstream.maxInFlight) return undefined;
    this.#counts.set(name, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#counts.set(name, (this.#counts.get(name) ?? 1) - 1);
    };
  }

  count(upstream: UpstreamConfig): number {
    return this.#counts.get(upstream.name) ?? 0;
  }
}
