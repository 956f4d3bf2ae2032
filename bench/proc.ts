import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { startInside, type MemoryCgroup } from './cgroup.ts';

// Every process the bench starts is registered here and stopped at the end, on error, on a signal and
// (synchronously) on exit. Node children also exit by themselves when the IPC channel drops.

interface Live {
  readonly child: ChildProcess;
  /** nginx stops its workers on SIGTERM; a SIGKILL would orphan them. */
  readonly exitSignal: NodeJS.Signals;
}
const live = new Set<Live>();

export function register(child: ChildProcess, exitSignal: NodeJS.Signals = 'SIGKILL'): void {
  const entry = { child, exitSignal };
  live.add(entry);
  child.once('exit', () => live.delete(entry));
}

export function killAllSync(): void {
  for (const { child, exitSignal } of live) {
    try {
      child.kill(exitSignal);
    } catch {
      // already gone
    }
  }
}

process.on('exit', killAllSync);

/** Waits for a child to exit, escalating SIGTERM → SIGKILL; resolves when it is gone. */
export function stopProcess(child: ChildProcess, graceMs = 3_000, first: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(hard);
      resolve();
    });
    child.kill(first);
  });
}

/** A bench child running a .ts module under the same Node, talking over IPC (see ipc.ts). */
export class NodeChild {
  readonly name: string;
  readonly child: ChildProcess;
  readonly info: Readonly<Record<string, unknown>>;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #stderr: string[];

  private constructor(name: string, child: ChildProcess, info: Readonly<Record<string, unknown>>, stderr: string[]) {
    this.name = name;
    this.child = child;
    this.info = info;
    this.#stderr = stderr;
    child.on('message', (raw) => {
      const m = raw as { id?: number; ok?: boolean; result?: unknown; error?: string };
      if (m.id === undefined) return;
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok === true) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error ?? 'failed'}`));
    });
    child.once('exit', (code, signal) => {
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(`${name} exited (${code ?? signal}) ${this.stderrTail()}`));
      }
      this.#pending.clear();
    });
  }

  /** cgroup: start inside that memory cgroup, so V8 sizes its heap for its limit. */
  static start(name: string, script: string, args: readonly string[], options: { execArgv?: readonly string[]; env?: NodeJS.ProcessEnv; readyTimeoutMs?: number; cwd?: string; cgroup?: MemoryCgroup } = {}): Promise<NodeChild> {
    const stdio: StdioOptions = ['ignore', 'ignore', 'pipe', 'ipc'];
    const argv = [...(options.execArgv ?? []), script, ...args];
    const spawnOptions = { stdio, env: options.env ?? process.env, ...(options.cwd === undefined ? {} : { cwd: options.cwd }) };
    const [command, commandArgs] = options.cgroup === undefined ? [process.execPath, argv] : startInside(options.cgroup, process.execPath, argv);
    const child = spawn(command, commandArgs, spawnOptions);
    register(child);
    const stderr: string[] = [];
    child.stderr?.on('data', (d: Buffer) => {
      stderr.push(d.toString('utf8'));
      while (stderr.join('').length > 8_000) stderr.shift();
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${name} not ready within ${options.readyTimeoutMs ?? 20_000} ms: ${stderr.join('').slice(-2_000)}`));
      }, options.readyTimeoutMs ?? 20_000);
      const onExit = (code: number | null, signal: string | null): void => {
        clearTimeout(timer);
        reject(new Error(`${name} exited before ready (${code ?? signal}): ${stderr.join('').slice(-2_000)}`));
      };
      child.once('exit', onExit);
      child.on('message', function onReady(raw) {
        const m = raw as { type?: string };
        if (m.type !== 'ready') return;
        clearTimeout(timer);
        child.off('exit', onExit);
        child.off('message', onReady);
        resolve(new NodeChild(name, child, m as Record<string, unknown>, stderr));
      });
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  stderrTail(): string {
    return this.#stderr.join('').slice(-2_000);
  }

  call<T>(cmd: string, arg: unknown = undefined, timeoutMs = 30_000): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ id, cmd, arg });
    });
  }

  /** Asks the child to exit (it may flush a CPU profile), then escalates. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.call('exit', undefined, graceMs).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}

// ---- /proc readers: CPU seconds and RSS of a process (and its direct children, for nginx workers) ----

const TICKS = 100; // getconf CLK_TCK on Linux x86_64

function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (f !== undefined && Number(f[1]) === pid) out.push(Number(entry));
  }
  return out;
}

/** user+system CPU seconds of pid plus its direct children (threads are included by the kernel). */
export function cpuSeconds(pid: number, withChildren = false): number {
  const pids = withChildren ? [pid, ...childrenOf(pid)] : [pid];
  let ticks = 0;
  for (const p of pids) {
    const f = statFields(p);
    if (f !== undefined) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / TICKS;
}

export function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

/** Share of all CPU time that was busy over `ms` (from /proc/stat), 0..1. */
export async function machineBusy(ms = 1_000): Promise<number> {
  const read = (): { idle: number; total: number } => {
    const cpu = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
    return { idle, total: cpu.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  const total = b.total - a.total;
  return total <= 0 ? 0 : 1 - (b.idle - a.idle) / total;
}

/** The processes that used the most CPU between two snapshots, for the "machine busy" warning. */
export function topProcesses(before: CpuSnapshot, after: CpuSnapshot, limit = 3): string[] {
  const name = (pid: number): string => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  return [...after]
    .filter(([pid]) => pid !== process.pid)
    .map(([pid, a]) => ({ pid, ticks: a.ticks - (before.get(pid)?.ticks ?? 0) }))
    .filter((r) => r.ticks > 0)
    .sort((x, y) => y.ticks - x.ticks)
    .slice(0, limit)
    .map((r) => `${name(r.pid)}(${r.pid}) ${((r.ticks / TICKS) * 100).toFixed(0)} % of a core`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitPort(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Soft and hard RLIMIT_NOFILE of this process, from /proc/self/limits. */
export function openFileLimits(): { soft: number; hard: number } {
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  const n = (v: string | undefined): number => (v === undefined || v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v));
  return { soft: n(m?.[1]), hard: n(m?.[2]) };
}

// ---- CPU used by processes that are not ours, during a measured run (other jobs on the machine) ----

export type CpuSnapshot = ReadonlyMap<number, { readonly ppid: number; readonly ticks: number }>;

export function cpuSnapshot(): CpuSnapshot {
  const out = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (f !== undefined) out.set(Number(entry), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
  }
  return out;
}

/**
 * CPU seconds used between two snapshots by processes outside this bench's process tree. Processes
 * that started and ended in between are missed, so this is a lower bound.
 */
export function foreignCpuSeconds(before: CpuSnapshot, after: CpuSnapshot): number {
  const ours = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (p === process.pid) return true;
      p = after.get(p)?.ppid ?? before.get(p)?.ppid ?? 0;
    }
    return false;
  };
  let ticks = 0;
  for (const [pid, a] of after) {
    if (ours(pid)) continue;
    ticks += a.ticks - (before.get(pid)?.ticks ?? 0);
  }
  return ticks / TICKS;
}
