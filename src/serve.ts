import { loadConfig } from './config/compile.ts';
import { ConfigError, formatProblem } from './config/errors.ts';
import { createGateway, type Gateway, type GatewayOptions } from './gateway.ts';
import { createLogger, type Logger } from './observe/log.ts';
import { runUnderHeapBudget } from './lib/heap.ts';
import { watchForReload } from './lib/watch-reload.ts';

export type ServedGateway = Gateway & {
  readonly addresses: Awaited<ReturnType<Gateway['listen']>>;
  /** Re-reads the config file; an invalid one is reported and the running config kept. */
  reloadFromFile(): Promise<boolean>;
};

/** `mcp-warden serve`: the same code path tests use to start a gateway. */
export async function startFromFile(file: string, logger: Logger = createLogger(), options: Omit<GatewayOptions, 'logger'> = {}): Promise<ServedGateway> {
  const config = loadConfig(file);
  for (const w of config.warnings) logger.warn({ event: 'config_warning' }, formatProblem(w));
  const gateway = await createGateway(config, { ...options, logger });
  const addresses = await gateway.listen();
  logger.info({ event: 'listening', traffic: `${addresses.traffic.address}:${addresses.traffic.port}`, admin: `${addresses.admin.address}:${addresses.admin.port}`, ready: gateway.ready() }, 'mcp-warden listening');
  const reloadFromFile = async (): Promise<boolean> => {
    try {
      await gateway.reload(() => loadConfig(file));
      // An open break-glass grant is announced at every reload too, not only at start.
      for (const w of gateway.config.warnings) logger.warn({ event: 'config_warning' }, formatProblem(w));
      return true;
    } catch (err) {
      if (err instanceof ConfigError) for (const p of err.problems) logger.error({ event: 'config_reload_problem' }, formatProblem(p));
      return false;
    }
  };
  return Object.assign(gateway, { addresses, reloadFromFile });
}

export async function serve(file: string): Promise<void> {
  // A configured memory budget bounds V8 from the start: this process then only relays to the sized one.
  const sized = runUnderHeapBudget(loadConfig(file).limits.memoryMiB);
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
