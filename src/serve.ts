import { loadConfig } from './config/compile.ts';
import { formatProblem } from './config/errors.ts';
import { createGateway, type Gateway, type GatewayOptions } from './gateway.ts';
import { createLogger, type Logger } from './observe/log.ts';

/** `mcp-warden serve`: the same code path tests use to start a gateway. */
export async function startFromFile(file: string, logger: Logger = createLogger(), options: Omit<GatewayOptions, 'logger'> = {}): Promise<Gateway & { readonly addresses: Awaited<ReturnType<Gateway['listen']>> }> {
  const config = loadConfig(file);
  for (const w of config.warnings) logger.warn({ event: 'config_warning' }, formatProblem(w));
  const gateway = await createGateway(config, { ...options, logger });
  const addresses = await gateway.listen();
  logger.info({ event: 'listening', traffic: `${addresses.traffic.address}:${addresses.traffic.port}`, admin: `${addresses.admin.address}:${addresses.admin.port}`, ready: gateway.ready() }, 'mcp-warden listening');
  return Object.assign(gateway, { addresses });
}

export async function serve(file: string): Promise<void> {
  const gateway = await startFromFile(file);
  const stop = (): void => {
    void gateway.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
