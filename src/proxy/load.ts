import type { UpstreamConfig } from '../config/compile.ts';

/**
 * Requests in flight per upstream (issue 17 §8): past the upstream's maxInFlight the gateway answers
 * 503 upstream_busy with Retry-After at once, instead of queueing without bound behind a slow upstream.
 * With the pool's connection cap this also bounds the pool's queue: at most maxInFlight − maxConnections
 * requests wait for a socket, each at most timeoutMs.
 */
export class InFlight {
  readonly #counts = new Map<string, number>();

  /** Takes a slot, or says false when the upstream is at its cap. Each slot taken is released once. */
  take(upstream: UpstreamConfig): boolean {
    const n = this.#counts.get(upstream.name) ?? 0;
    if (n >= upstream.maxInFlight) return false;
    this.#counts.set(upstream.name, n + 1);
    return true;
  }

  release(upstream: UpstreamConfig): void {
    this.#counts.set(upstream.name, (this.#counts.get(upstream.name) ?? 1) - 1);
  }

  count(upstream: UpstreamConfig): number {
    return this.#counts.get(upstream.name) ?? 0;
  }
}
