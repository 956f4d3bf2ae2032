import type { FetchFailure } from '../auth/keys.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';

/** The fields of one key-fetch, discovery or introspection outcome as logged. */
export interface FetchLogLine extends Partial<Omit<FetchFailure, 'result'>> {
  readonly event: 'jwks_fetch' | 'introspection';
  readonly issuer: string;
  readonly result: string;
}

/**
 * Logs a fetch outcome only when it differs from the last one (result, cause, URL or status): an outage
 * is one line with its precise cause, not one per retry, and a changed cause is a new line (issue 24 §1).
 * Returns the state to pass next time.
 */
export function logFetchChange(logger: Logger, last: string | undefined, line: FetchLogLine, message: string): string {
  const state = JSON.stringify([line.result, line.error, line.url, line.status]);
  if (state !== last) logger[line.result === 'ok' ? 'info' : 'warn'](line, line.error === undefined ? message : `${message}: ${line.error}`);
  return state;
}

/** The introspector's report: the metric on every answer, a log line on each change per issuer. */
export function introspectionReporter(shared: { readonly logger: Logger; readonly metrics: Metrics }): (issuer: string, result: string, failure?: Omit<FetchFailure, 'result'>) => void {
  const last = new Map<string, string>();
  return (issuer, result, failure) => {
    shared.metrics.jwksFetch(issuer, `introspection_${result}`);
    const message = result === 'ok' ? 'introspection endpoint answered' : 'introspection failed';
    last.set(issuer, logFetchChange(shared.logger, last.get(issuer), { event: 'introspection', issuer, result, ...failure }, message));
  };
}
