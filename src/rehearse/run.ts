import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Config, UpstreamConfig } from '../config/compile.ts';
import { liveDrills } from './drills.ts';
import { outageDrill } from './outage.ts';
import { revocationDrill } from './revocation.ts';
import type { DrillResult } from './report.ts';
import { asMetadata, clientCredentials, register, type Client } from './tokens.ts';
import { rotateIssuerKeys } from '../issuer/rotate.ts';

export interface RehearseOptions {
  readonly baseUrl?: string;
  readonly client?: Client;
  readonly rotateCmd?: string;
  readonly directUrl?: string;
  /** Every replica (`--url`, repeated) the revocation drill must see refuse a revoked client. */
  readonly replicaUrls?: readonly string[];
  /** Run the local key-fetch outage drill (default true). */
  readonly outage?: boolean;
}

/** Every drill, in order; each result is PASS/FAIL/SKIP/WARN with a one-line reason. */
export async function rehearse(config: Config, options: RehearseOptions = {}): Promise<DrillResult[]> {
  const results: DrillResult[] = [];
  const record = (drill: string, status: DrillResult['status'], detail: string): void => {
    results.push({ drill, status, detail });
  };
  const rotate = options.rotateCmd !== undefined
    ? async () => {
      await promisify(execFile)('/bin/sh', ['-c', options.rotateCmd as string], { timeout: 60_000 });
    }
    : config.authorizationServer !== undefined
      ? () => rotateIssuerKeys(config.authorizationServer as NonNullable<Config['authorizationServer']>)
      : undefined;
  await liveDrills(config, {
    baseUrl: options.baseUrl ?? config.publicUrl.origin,
    client: options.client,
    rotate,
    directUrl: options.directUrl,
  }, record);
  if (options.outage !== false) {
    const a = config.upstreams[0] as UpstreamConfig;
    const issuer = a.issuers.find((i) => i.introspection === undefined);
    const meta = issuer === undefined ? undefined : await asMetadata(issuer.issuer);
    let client = options.client;
    if (client === undefined && meta?.registration_endpoint !== undefined) {
      const registered = await register(meta.registration_endpoint, a.allScopes, config.authorizationServer?.registration?.initialAccessToken);
      if (typeof registered !== 'string') client = registered;
    }
    if (client === undefined || meta?.token_endpoint === undefined) record('key-fetch outage', 'skip', 'no client to obtain tokens with');
    else {
      const c = client;
      await outageDrill(config, () => clientCredentials(meta.token_endpoint as string, c, a.audience, a.scopes), record);
    }
  }
  await revocationDrill(config, options.replicaUrls ?? [options.baseUrl ?? config.publicUrl.origin], record);
  return results;
}
