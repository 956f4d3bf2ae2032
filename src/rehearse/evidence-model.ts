import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/compile.ts';
import { CONTROLS, type ControlId } from './controls.ts';
import type { RehearseTarget } from './drill.ts';
import type { DrillResult, DrillStatus } from './report.ts';

/** Everything the evidence report states beside the results: what was drilled, with what, when. */
export interface EvidenceMeta {
  readonly generatedAt: string;
  readonly gatewayVersion: string;
  readonly configFile: string;
  /** SHA-256 (hex) of the config file's bytes as rehearse read them. */
  readonly configSha256: string;
  readonly targets: readonly { readonly name: string; readonly url: string }[];
}

export interface Evidence {
  readonly meta: EvidenceMeta;
  readonly results: readonly DrillResult[];
}

/** The package that ran: rehearse is shipped with the gateway, so this is the gateway's version too. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name?: string; version?: string };
  return `${pkg.name ?? 'mcp-warden'} ${pkg.version ?? 'unknown'}`;
}

export function evidenceMeta(config: Config, target: Pick<RehearseTarget, 'baseUrl' | 'directUrls'>, now: Date = new Date()): EvidenceMeta {
  const targets = [{ name: 'gateway', url: target.baseUrl }];
  for (const issuer of new Set(config.upstreams.flatMap((u) => u.issuers.map((i) => i.issuer)))) targets.push({ name: 'issuer', url: issuer });
  for (const [name, url] of target.directUrls) targets.push({ name: `upstream ${name} (direct)`, url });
  return {
    generatedAt: now.toISOString(),
    gatewayVersion: packageVersion(),
    configFile: config.file,
    configSha256: createHash('sha256').update(readFileSync(config.file)).digest('hex'),
    targets,
  };
}

export const STATUSES: readonly DrillStatus[] = ['pass', 'fail', 'skip', 'warn'];

export function countBy(results: readonly DrillResult[]): Record<DrillStatus, number> {
  const out = { pass: 0, fail: 0, skip: 0, warn: 0 };
  for (const r of results) out[r.status]++;
  return out;
}

/** Per control: how many result lines of the drills that prove it passed, failed, were skipped or warned. */
export function controlSummary(results: readonly DrillResult[]): { readonly id: ControlId; readonly framework: string; readonly counts: Record<DrillStatus, number> }[] {
  return (Object.keys(CONTROLS) as ControlId[]).map((id) => ({ id, framework: CONTROLS[id], counts: countBy(results.filter((r) => r.controls.includes(id))) }));
}

export function runSpan(results: readonly DrillResult[]): { readonly start: string; readonly end: string } {
  return { start: results[0]?.startedAt ?? '', end: results.at(-1)?.endedAt ?? '' };
}

