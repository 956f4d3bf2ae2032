import { spawn } from 'node:child_process';

// Issue 17 §9: outside a memory cgroup V8 sizes its heap from the machine (its young generation grew to
// 128 MiB under a burst and RSS stayed at 305 MB with 11 MB live). With limits.memoryMiB the gateway
// runs under V8 limits derived from that budget, as Node derives them from a cgroup limit inside one.

const SIZED = 'MCP_WARDEN_HEAP_BUDGET_MIB';

/** V8 limits for a memory budget: old space 70 % of it, a semi-space of budget/64 (1–16 MiB). */
export function heapFlags(memoryMiB: number): string[] {
  const oldSpace = Math.max(64, Math.floor(memoryMiB * 0.7));
  const semiSpace = Math.min(16, Math.max(1, Math.floor(memoryMiB / 64)));
  return [`--max-old-space-size=${oldSpace}`, `--max-semi-space-size=${semiSpace}`];
}

/**
 * V8's limits are fixed at process start, so the process runs itself again with them (once: the child
 * is marked) and relays SIGTERM, SIGINT and SIGHUP to it. Resolves with the child's exit code;
 * undefined when this process already runs under the budget (or none is configured).
 */
export function runUnderHeapBudget(memoryMiB: number | undefined): Promise<number> | undefined {
  if (memoryMiB === undefined || process.env[SIZED] === String(memoryMiB)) return undefined;
  const args = [...process.execArgv, ...heapFlags(memoryMiB), ...process.argv.slice(1)];
  const child = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, [SIZED]: String(memoryMiB) } });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128 + 15)));
    child.once('error', () => resolve(1));
  });
}
