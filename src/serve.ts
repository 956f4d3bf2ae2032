import { loadConfig, loadConfigText, type Config } from './config/compile.ts';
import { ConfigError, formatProblem } from './config/errors.ts';
import { createGateway, type Gateway, type GatewayOptions } from './gateway.ts';
import { createLogger, type Logger } from './observe/log.ts';
import { runUnderHeapBudget } from './lib/heap.ts';
import { watchForReload } from './lib/watch-reload.ts';
import cluster from 'node:cluster';
import { readConfigText, runPrimary } from './workers/primary.ts';
import { runWorker } from './workers/worker.ts';
import { resolveWorkers } from './workers/listen.ts';

import type { ServedGateway } from './gateway.ts';
export type { ServedGateway };

/** `mcp-warden serve`: the same code path tests use to start a gateway. `load` defaults to reading `file`. */
export async function startFromFile(file: string, logger: Logger = createLogger(), options: Omit<GatewayOptions, 'logger'> = {}, load: () => Config = () => loadConfig(file)): Promise<ServedGateway> {
  const config = load();
  for (const w of config.warnings) logger.warn({ event: 'config_warning' }, formatProblem(w));
  const gateway = await createGateway(config, { ...options, logger });
  const addresses = await gateway.listen();
  if (options.worker !== true) logger.info({ event: 'listening', traffic: `${addresses.traffic.address}:${addresses.traffic.port}`, admin: `${addresses.admin.address}:${addresses.admin.port}`, ready: gateway.ready() }, 'mcp-warden listening');
  const reloadWith = (next: () => Config) => reloadReporting(gateway, next, logger);
  return Object.assign(gateway, { addresses, reloadFromFile: () => reloadWith(() => loadConfig(file)), reloadWith });
}

/** A reload whose config problems are logged with file:line; false when the running config stays. */
async function reloadReporting(gateway: Gateway, load: () => Config, logger: Logger): Promise<boolean> {
  try {
    await gateway.reload(load);
    // An open break-glass grant is announced at every reload too, not only at start.
    for (const w of gateway.config.warnings) logger.warn({ event: 'config_warning' }, formatProblem(w));
    return true;
  } catch (err) {
    if (err instanceof ConfigError) for (const p of err.problems) logger.error({ event: 'config_reload_problem' }, formatProblem(p));
    return false;
  }
}

/** `workers` (from `--workers`) overrides the config's `workers:`. */
export async function serve(file: string, workers?: number | 'auto'): Promise<void> {
  if (cluster.isWorker) {
    // A worker that cannot start exits once the CLI has reported why: the primary's start-up fails on it.
    return runWorker(file, createLogger(), startFromFile).catch((err: unknown) => {
      setTimeout(() => process.exit(1), 50);
      throw err;
    });
  }
  const text = readConfigText(file);
  const config = loadConfigText(text, file);
  const count = resolveWorkers(workers ?? config.workers);
  if (count > 1) return runPrimary(file, text, config, count, createLogger());
  // A configured memory budget bounds V8 from the start: this process then only relays to the sized one.
  const sized = runUnderHeapBudget(config.limits.memoryMiB);
  if (sized !== undefined) return void sized.then((code) => process.exit(code));
  const logger = createLogger();
  const gateway = await startFromFile(file, logger);
  // SIGHUP or a change of the file reloads.
  const reloads = watchForReload(file, () => void gateway.reloadFromFile(), () => logger.warn({ event: 'config_watch_unavailable' }, 'cannot watch the config file; reload with SIGHUP'));
  process.on('SIGHUP', reloads.trigger);
  const stop = (signal: string): void => {
    logger.info({ event: 'shutdown', signal }, 'shutting down');
    reloads.close();
    void gateway.shutdown().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
