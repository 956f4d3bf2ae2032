import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Config } from '../config/compile.ts';
import { rotateIssuerKeys } from '../issuer/rotate.ts';
import { contextFor, createShared } from './context.ts';
import type { Drill, RehearseTarget } from './drill.ts';
import { DRILLS } from './registry.ts';
import { evidenceMeta, type Evidence } from './evidence-model.ts';
import type { DrillResult } from './report.ts';
import type { Client } from './tokens.ts';

export interface RehearseOptions {
  readonly baseUrl?: string;
  readonly client?: Client;
  readonly rotateCmd?: string;
  /** Upstream name → its direct URL (no gateway in between). */
  readonly directUrls?: ReadonlyMap<string, string>;
  readonly gatewayKeyFile?: string;
  /** Every replica (`--url`, repeated) the revocation drill must see refuse a revoked client. */
  readonly replicaUrls?: readonly string[];
  readonly stepUpTool?: { readonly upstream: string; readonly tool: string };
  /** Run the local key-fetch outage drill (default true). */
  readonly outage?: boolean;
  /** Another drill list (tests); default: the registry. */
  readonly drills?: readonly Drill[];
}

/** Every drill, in order; each result is PASS/FAIL/SKIP/WARN with a one-line reason and its timing. */
export async function rehearse(config: Config, options: RehearseOptions = {}): Promise<DrillResult[]> {
  const shared = createShared(config, targetOf(config, options));
  const results: DrillResult[] = [];
  for (const drill of options.drills ?? DRILLS) {
    let startedAt = new Date();
    const record = (name: string, status: DrillResult['status'], detail: string): void => {
      const endedAt = new Date();
      results.push({ drill: name, status, detail, id: drill.id, controls: drill.controls, startedAt: startedAt.toISOString(), endedAt: endedAt.toISOString() });
      startedAt = endedAt;
    };
    try {
      await drill.run(contextFor(shared, record));
    } catch (err) {
      // A drill that throws proved nothing: FAIL under its title, and the next drill still runs.
      record(drill.title, 'fail', err instanceof Error ? err.message : String(err));
    }
  }
  return results;
}

function targetOf(config: Config, options: RehearseOptions): RehearseTarget {
  const as = config.authorizationServer;
  const rotateCmd = options.rotateCmd;
  const rotate = rotateCmd !== undefined
    ? async () => {
      await promisify(execFile)('/bin/sh', ['-c', rotateCmd], { timeout: 60_000 });
    }
    : as !== undefined ? () => rotateIssuerKeys(as) : undefined;
  return {
    baseUrl: options.baseUrl ?? config.publicUrl.origin,
    client: options.client,
    rotate,
    directUrls: options.directUrls ?? new Map(),
    gatewayKeyFile: options.gatewayKeyFile,
    replicaUrls: options.replicaUrls ?? [options.baseUrl ?? config.publicUrl.origin],
    stepUpTool: options.stepUpTool,
    outage: options.outage !== false,
  };
}

/** The evidence report's content for a run's results (evidence.ts writes it). */
export function evidenceOf(config: Config, options: RehearseOptions, results: readonly DrillResult[]): Evidence {
  return { meta: evidenceMeta(config, targetOf(config, options)), results };
}
