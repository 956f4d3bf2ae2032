import type { UpstreamConfig } from '../config/compile.ts';

// Passive outlier detection (issue 17 §10), off unless an upstream configures outlierDetection: an
// upstream that fails consecutiveFailures times in a row (no answer, a timeout, or a 5xx) is taken out
// for ejectSeconds, doubling at each ejection in a row up to maxEjectSeconds; meanwhile its requests get
// 503 upstream_ejected at once. When the period ends one request is let through as a trial: success
// puts the upstream back, failure ejects it again for the next, longer period.

interface Health {
  failures: number;
  ejections: number;
  ejectedUntil: number;
  /** When the trial request went (0: none out): a trial that never reports back is retried later. */
  trialAt: number;
}

export interface UpstreamHealthReport {
  readonly name: string;
  readonly healthy: boolean;
  readonly ejectedSeconds: number;
  readonly consecutiveFailures: number;
}

export class UpstreamHealth {
  readonly #now: () => number;
  readonly #state = new Map<string, Health>();
  readonly #watched: readonly UpstreamConfig[];

  constructor(upstreams: readonly UpstreamConfig[], now: () => number) {
    this.#now = now;
    this.#watched = upstreams.filter((u) => u.outlierDetection !== undefined);
  }

  /** Seconds left out (for Retry-After), or 0 when the request may go (the trial included). */
  ejectedFor(upstream: UpstreamConfig): number {
    if (upstream.outlierDetection === undefined) return 0;
    const h = this.#state.get(upstream.name);
    if (h === undefined || h.ejectedUntil === 0) return 0;
    const now = this.#now();
    const left = h.ejectedUntil - now;
    const trialOut = h.trialAt !== 0 && now - h.trialAt < upstream.timeoutMs + upstream.bodyTimeoutMs;
    if (left > 0 || trialOut) return Math.max(1, Math.ceil(left / 1000));
    h.trialAt = now; // the period is over: this one request tries the upstream
    return 0;
  }

  /** The outcome of one exchange: `failed` is no answer, a timeout, or a 5xx status. */
  record(upstream: UpstreamConfig, failed: boolean): void {
    const od = upstream.outlierDetection;
    if (od === undefined) return;
    const h = this.#state.get(upstream.name) ?? { failures: 0, ejections: 0, ejectedUntil: 0, trialAt: 0 };
    this.#state.set(upstream.name, h);
    if (!failed) {
      h.failures = 0;
      h.ejections = 0;
      h.ejectedUntil = 0;
      h.trialAt = 0;
      return;
    }
    h.failures++;
    if (h.trialAt === 0 && h.failures < od.consecutiveFailures) return;
    h.trialAt = 0;
    const period = Math.min(od.maxEjectSeconds, od.ejectSeconds * 2 ** Math.min(h.ejections, 20));
    h.ejections++;
    h.ejectedUntil = this.#now() + period * 1000;
  }

  /** The /readyz detail: every upstream with outlier detection. Never part of readiness itself. */
  report(): UpstreamHealthReport[] {
    const now = this.#now();
    return this.#watched.map((u) => {
      const h = this.#state.get(u.name);
      const left = h === undefined ? 0 : Math.max(0, h.ejectedUntil - now);
      return { name: u.name, healthy: left === 0, ejectedSeconds: Math.ceil(left / 1000), consecutiveFailures: h?.failures ?? 0 };
    });
  }
}
