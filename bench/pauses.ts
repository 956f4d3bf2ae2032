import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { Pauses } from './report.ts';

// Pauses of this process's event loop while a window is open (issue 25: none over 5 ms at a fixed
// 1,000 req/s): the event-loop delay histogram at 1 ms resolution, and every GC's duration by kind.
// The gateway child and the machinery floor use the same window, so the floor's figure at the same
// rate shows what the machine itself (two cores shared with the load generator and the upstream)
// does to any Node proxy's loop.

// perf_hooks GC kinds: 1 minor/scavenge, 2 major, 4 incremental marking, 8 weak callbacks.
const GC_KINDS: Readonly<Record<number, string>> = { 1: 'scavenge', 2: 'mark-compact', 4: 'incremental marking', 8: 'weak callbacks' };

export interface PauseWindow {
  start(): true;
  stop(): Pauses;
}

export function pauseWindow(): PauseWindow {
  let loop: ReturnType<typeof monitorEventLoopDelay> | undefined;
  let gcs: number[] = [];
  let kinds = new Map<string, { count: number; maxMs: number }>();
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcs.push(e.duration);
      const kind = GC_KINDS[((e as { detail?: unknown }).detail as { kind?: number } | undefined)?.kind ?? 0] ?? 'other';
      const k = kinds.get(kind) ?? { count: 0, maxMs: 0 };
      k.count++;
      k.maxMs = Math.max(k.maxMs, e.duration);
      kinds.set(kind, k);
    }
  });
  return {
    start: () => {
      loop?.disable();
      loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      gcs = [];
      kinds = new Map();
      observer.observe({ entryTypes: ['gc'] });
      return true;
    },
    stop: () => {
      if (loop === undefined) throw new Error('pause window not started');
      loop.disable();
      observer.disconnect();
      const sorted = [...gcs].sort((a, b) => a - b);
      // The histogram counts in ns and includes the 1 ms sampling interval itself.
      const result: Pauses = { loopMaxMs: loop.max / 1e6, loopP99ms: loop.percentile(99) / 1e6, gcCount: sorted.length, gcMaxMs: sorted.at(-1) ?? 0, gcP99ms: sorted[Math.floor(sorted.length * 0.99)] ?? 0, gcTotalMs: sorted.reduce((a, b) => a + b, 0), gcKinds: Object.fromEntries(kinds) };
      loop = undefined;
      return result;
    },
  };
}

/** Every GC this process has run since the call, counted (bench/alloc.ts: a window with a GC in it is measured again). */
export function gcCounter(): () => number {
  let count = 0;
  new PerformanceObserver((list) => void (count += list.getEntries().length)).observe({ entryTypes: ['gc'] });
  return () => count;
}
