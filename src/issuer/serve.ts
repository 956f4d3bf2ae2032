// `mcp-warden issuer --config <file>`: like `serve` for the gateway, SIGHUP or a change of the file
// reloads; an invalid new config is reported and the running one kept.
import { loadConfig } from '../config/compile.ts';
import { ConfigError, formatProblem } from '../config/errors.ts';
import { watchForReload } from '../lib/watch-reload.ts';
import { startIssuer } from './start.ts';
import type { IssuerOptions, RunningIssuer } from './types.ts';

export interface ServedIssuer {
  readonly issuer: RunningIssuer;
  /** Re-reads the file; false (with the problems written to `report`) when the running config is kept. */
  reloadFromFile(): Promise<boolean>;
  stop(): Promise<void>;
}

export function issuerOptionsFrom(file: string): IssuerOptions {
  const config = loadConfig(file);
  if (config.authorizationServer === undefined) {
    throw new ConfigError([{ file, line: undefined, key: 'authorizationServer', message: 'is required to run the embedded issuer' }]);
  }
  return config.authorizationServer;
}

export async function serveIssuer(file: string, report: (line: string) => void): Promise<ServedIssuer> {
  const issuer = await startIssuer(issuerOptionsFrom(file));
  const reloadFromFile = async (): Promise<boolean> => {
    try {
      await issuer.reload(issuerOptionsFrom(file));
      report(`mcp-warden issuer: reloaded ${file}`);
      return true;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const p of err.problems) report(`error: ${formatProblem(p)}`);
      report(`mcp-warden issuer: ${file} not reloaded; the running configuration is kept`);
      return false;
    }
  };
  // SIGHUP or a change of the file reloads.
  const reloads = watchForReload(file, () => void reloadFromFile(), () => report('mcp-warden issuer: cannot watch the config file; reload with SIGHUP'));
  process.on('SIGHUP', reloads.trigger);
  return {
    issuer,
    reloadFromFile,
    async stop() {
      process.off('SIGHUP', reloads.trigger);
      reloads.close();
      await issuer.close();
    },
  };
}
