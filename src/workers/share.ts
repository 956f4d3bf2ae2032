// The number of traffic processes this one is one of (`serve --workers`), set by the primary in each
// worker's environment. Limits held in process memory divide by it, so N workers together never allow
// more than the configured limit (the same rule as the rate-limit fallback across replicas).

const WORKER_COUNT = 'MCP_WARDEN_WORKER_COUNT';

export function workerEnv(count: number, id: number): Record<string, string> {
  return { [WORKER_COUNT]: String(count), MCP_WARDEN_WORKER_ID: String(id) };
}

/** 1 outside `serve --workers`. */
export function processShare(): number {
  const n = Number(process.env[WORKER_COUNT]);
  return Number.isInteger(n) && n > 1 ? n : 1;
}

/** This worker's number (1..N), or undefined outside `serve --workers`. */
export function workerId(): string | undefined {
  return process.env['MCP_WARDEN_WORKER_ID'];
}

/** A per-process share of a count limit: at least 1, never more than limit / processes. */
export function shareOf(limit: number): number {
  return Math.max(1, Math.floor(limit / processShare()));
}
