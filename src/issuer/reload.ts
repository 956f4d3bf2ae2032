// What a running issuer may change without a restart: resources (a new upstream's audience),
// clients, registration and refresh settings. Its identity, listener and signing keys may not:
// tokens already issued were signed and scheduled under them.
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import type { IssuerSettings } from './options.ts';

const RESTART_ONLY = ['issuer', 'host', 'port', 'keysFile', 'signingAlg', 'accessTokenTtlSeconds', 'rotationGraceSeconds'] as const;

/** Throws a ConfigError naming every key that changed but needs a restart; the running config stays. */
export function checkReloadable(running: IssuerSettings, next: IssuerSettings): void {
  const problems: ConfigProblem[] = [];
  for (const key of RESTART_ONLY) {
    if (running[key] !== next[key]) {
      problems.push({ file: 'issuer options', line: undefined, key, message: 'changed, but takes effect only on a restart; the running configuration is kept' });
    }
  }
  // The mTLS listener is opened at start (its settings are compared whole: an object per reload).
  if (JSON.stringify(running.mtls) !== JSON.stringify(next.mtls)) {
    problems.push({ file: 'issuer options', line: undefined, key: 'mtls', message: 'changed, but takes effect only on a restart; the running configuration is kept' });
  }
  if (JSON.stringify(running.ssf) !== JSON.stringify(next.ssf)) {
    problems.push({ file: 'issuer options', line: undefined, key: 'ssf', message: 'changed, but takes effect only on a restart; the running configuration is kept' });
  }
  if (problems.length > 0) throw new ConfigError(problems);
}
