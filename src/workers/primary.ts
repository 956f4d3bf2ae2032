import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import { AggregatorRegistry } from 'prom-client';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfigText, type Config } from '../config/compile.ts';
import { ConfigError, formatProblem } from '../config/errors.ts';
import { heapFlags } from '../lib/heap.ts';
import { watchForReload } from '../lib/watch-reload.ts';
import { createAdminServer } from '../observe/admin.ts';
import type { Logger } from '../observe/log.ts';
import { isMessage, type FromWorker, type ToWorker } from './messages.ts';
import { workerEnv } from './share.ts';
import { workerProblems } from './unsupported.ts';

/** A crashing worker is restarted, at most this many times in this window; then the primary gives up. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
const ASK_TIMEOUT_MS = 2_000;

type Reply = Extract<FromWorker, { id: number }>;

/**
 * The primary of `serve --workers N`: forks N workers onto the traffic port, answers the admin listener
 * for all of them (ready only when every worker is; metrics summed across workers), relays reload and
 * shutdown to all, and restarts a worker that dies (bounded). It serves no traffic itself.
 */
export class Primary {
  readonly #file: string;
  readonly #count: number;
  readonly #logger: Logger;
  readonly #config: Config;
  /** The config text last validated here: what a new or restarted worker starts on. */
  #text: string;
  /** Counts validated config texts; each worker process's entry says which one it serves. */
  #generation = 1;
  readonly #serving = new WeakMap<Worker, number>();
  readonly #workers = new Map<number, Worker>();
  readonly #pending = new Map<number, (reply: Reply | undefined) => void>();
  readonly #restarts: number[] = [];
  readonly #aggregator = new AggregatorRegistry();
  #next = 1;
  #stopping = false;
  #admin: Server | undefined;

  constructor(file: string, text: string, config: Config, count: number, logger: Logger) {
    this.#file = file;
    this.#text = text;
    this.#config = config;
    this.#count = count;
    this.#logger = logger;
  }

  /** Forks every worker and resolves once each listens; a worker dying during start-up fails it. */
  async start(): Promise<void> {
    const budget = this.#config.limits.memoryMiB;
    // The memory budget is the pod's: each worker's V8 gets its share.
    cluster.setupPrimary({ execArgv: [...process.execArgv, ...(budget === undefined ? [] : heapFlags(Math.max(64, Math.floor(budget / this.#count))))] });
    cluster.on('message', (worker, raw) => this.#onMessage(worker, raw));
    const listening = await Promise.all(Array.from({ length: this.#count }, (_, i) => this.#fork(i + 1))).catch((err: unknown) => {
      for (const w of this.#workers.values()) w.process.kill('SIGKILL');
      throw err;
    });
    cluster.on('exit', (worker, code, signal) => this.#onExit(worker, code, signal));
    this.#admin = createAdminServer({ ready: () => this.#ready(), readiness: () => this.#readiness(), metrics: { registry: { contentType: this.#aggregator.contentType, metrics: () => this.#aggregator.clusterMetrics() } } });
    const admin = this.#admin;
    await new Promise<void>((resolve, reject) => {
      admin.once('error', reject);
      admin.listen(this.#config.admin.port, this.#config.admin.host, () => resolve());
    });
    const bound = admin.address() as AddressInfo;
    this.#logger.info({ event: 'listening', traffic: `${this.#config.listen.host}:${listening[0] ?? '?'}`, admin: `${bound.address}:${bound.port}`, workers: this.#count }, `mcp-warden listening with ${this.#count} workers`);
  }

  #fork(id: number): Promise<number> {
    const worker = cluster.fork(workerEnv(this.#count, id));
    this.#workers.set(id, worker);
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`worker ${id} exited during start-up (${code ?? 'signal'})`));
      worker.once('exit', onExit);
      worker.on('message', function onListening(raw: unknown) {
        if (!isMessage<FromWorker>(raw) || raw.type !== 'mcp-warden:listening') return;
        worker.off('exit', onExit);
        worker.off('message', onListening);
        resolve(raw.port);
      });
    });
  }

  #onMessage(worker: Worker, raw: unknown): void {
    if (!isMessage<FromWorker>(raw) || raw.type === 'mcp-warden:listening') return;
    if (raw.type === 'mcp-warden:config-request') {
      this.#serving.set(worker, this.#generation);
      return void worker.send({ type: 'mcp-warden:config', text: this.#text } satisfies ToWorker);
    }
    this.#pending.get(raw.id)?.(raw);
    this.#pending.delete(raw.id);
  }

  #ask(worker: Worker, message: { readonly type: 'mcp-warden:status' } | { readonly type: 'mcp-warden:reload'; readonly text: string }, timeoutMs = ASK_TIMEOUT_MS): Promise<Reply | undefined> {
    const id = this.#next++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.#pending.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      if (!worker.isConnected()) return resolve(undefined);
      worker.send({ ...message, id } satisfies ToWorker);
    });
  }

  async #statuses(): Promise<{ worker: number; pid: number | undefined; ready: boolean; config: number | undefined; readiness: Record<string, unknown> }[]> {
    return Promise.all([...this.#workers].map(async ([id, w]) => {
      const r = await this.#ask(w, { type: 'mcp-warden:status' });
      const ok = r?.type === 'mcp-warden:status';
      return { worker: id, pid: w.process.pid, ready: ok && r.ready, config: this.#serving.get(w), readiness: ok ? r.readiness : { unreachable: true } };
    }));
  }

  // A reload one worker refused (its swap failed) leaves workers judging by different policies: a
  // revoked scope would still pass on some connections. Not ready until every worker serves one config.
  #consistent(all: readonly { readonly config: number | undefined }[]): boolean {
    return all.every((s) => s.config !== undefined && s.config === all[0]?.config);
  }

  async #ready(): Promise<boolean> {
    if (this.#stopping) return false;
    const all = await this.#statuses();
    return all.length === this.#count && all.every((s) => s.ready) && this.#consistent(all);
  }

  async #readiness(): Promise<Record<string, unknown>> {
    const all = await this.#statuses();
    return { draining: this.#stopping, configConsistent: this.#consistent(all), workers: all.map(({ worker, pid, ready, config, readiness }) => ({ worker, pid, ready, config, ...readiness })) };
  }

  /** Validates the file here first: a config that does not load reaches no worker, all keep the old one. */
  async reload(): Promise<boolean> {
    let text: string;
    try {
      text = readConfigText(this.#file);
      const next = loadConfigText(text, this.#file);
      if (next.workers !== this.#config.workers) throw new ConfigError([{ file: this.#file, line: undefined, key: 'workers', message: 'changes only with a restart' }]);
      const unsupported = workerProblems(this.#file, next, this.#count);
      if (unsupported.length > 0) throw new ConfigError(unsupported);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const p of err.problems) this.#logger.error({ event: 'config_reload_problem' }, formatProblem(p));
      this.#logger.error({ event: 'config_reload_failed', workers: this.#count }, 'configuration reload failed; every worker keeps the previous configuration');
      return false;
    }
    const previous = { text: this.#text, generation: this.#generation };
    const generation = previous.generation + 1;
    this.#text = text;
    this.#generation = generation;
    const workers = [...this.#workers.values()];
    const replies = await Promise.all(workers.map((w) => this.#ask(w, { type: 'mcp-warden:reload', text }, 30_000)));
    workers.forEach((w, i) => {
      const r = replies[i];
      if (r?.type === 'mcp-warden:reload' && r.ok) this.#serving.set(w, generation);
    });
    const ok = replies.filter((r) => r?.type === 'mcp-warden:reload' && r.ok).length;
    // Refused everywhere: a worker restarted later starts on what the others still serve.
    if (ok === 0 && this.#generation === generation) {
      this.#text = previous.text;
      this.#generation = previous.generation;
    }
    // Each worker builds its own state (key fetches included): one can still fail where others did not.
    if (ok !== this.#count) this.#logger.error({ event: 'config_reload_workers', ok, failed: this.#count - ok }, 'configuration reload failed in some workers');
    return ok === this.#count;
  }

  #onExit(worker: Worker, code: number | null, signal: string | null): void {
    const id = [...this.#workers].find(([, w]) => w === worker)?.[0];
    if (id === undefined || this.#stopping) return;
    const now = Date.now();
    while (this.#restarts.length > 0 && now - (this.#restarts[0] as number) > RESTART_WINDOW_MS) this.#restarts.shift();
    if (this.#restarts.length >= MAX_RESTARTS) {
      this.#logger.fatal({ event: 'worker_restarts_exhausted', worker: id, code, signal }, `worker ${id} died again after ${MAX_RESTARTS} restarts within ${RESTART_WINDOW_MS / 1000} s; stopping`);
      void this.shutdown(1);
      return;
    }
    this.#restarts.push(now);
    this.#logger.error({ event: 'worker_restarted', worker: id, code, signal }, `worker ${id} died; starting a new one`);
    this.#fork(id).catch(() => undefined);
  }

  /** SIGTERM: every worker drains (not ready, Connection: close, in-flight requests finish); then exit. */
  async shutdown(code = 0): Promise<never> {
    this.#stopping = true;
    const limits = this.#config.limits;
    const deadline = limits.drainDelayMs + limits.shutdownGraceMs + 5_000;
    const exits = [...this.#workers.values()].map((w) => new Promise<number | null>((resolve) => {
      if (w.isDead()) return resolve(w.process.exitCode);
      const timer = setTimeout(() => w.process.kill('SIGKILL'), deadline);
      w.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
      if (w.isConnected()) w.send({ type: 'mcp-warden:shutdown' } satisfies ToWorker);
      else w.process.kill('SIGTERM');
    }));
    const codes = await Promise.all(exits);
    this.#admin?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#admin?.listening === true ? this.#admin.close(() => resolve()) : resolve()));
    process.exit(code !== 0 || codes.some((c) => c !== 0) ? 1 : 0);
  }
}

/** The file's text, as the loader reads it (a missing file is a ConfigError, not a crash). */
export function readConfigText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: undefined, key: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }]);
  }
}

/** `serve --workers N` in the primary: start, then SIGHUP / a file change reloads all, SIGTERM drains all. */
export async function runPrimary(file: string, text: string, config: Config, count: number, logger: Logger): Promise<void> {
  // `--workers N` overrides the config's `workers:` that lint judged (config/lint-workers.ts).
  const problems = workerProblems(file, config, count);
  if (problems.length > 0) throw new ConfigError(problems);
  const primary = new Primary(file, text, config, count, logger);
  await primary.start();
  const reloads = watchForReload(file, () => void primary.reload(), () => logger.warn({ event: 'config_watch_unavailable' }, 'cannot watch the config file; reload with SIGHUP'));
  process.on('SIGHUP', reloads.trigger);
  const stop = (signal: string): void => {
    logger.info({ event: 'shutdown', signal, workers: count }, 'shutting down');
    reloads.close();
    void primary.shutdown();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

