import { readFileSync } from 'node:fs';

// A V8 .cpuprofile (node --cpu-prof) → self time by function and by area (src file, npm package,
// Node internals, GC, idle), for the "what bounds it" section of results.md.

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  readonly busyShare: number;
  readonly functions: readonly { readonly name: string; readonly share: number }[];
  readonly areas: readonly { readonly name: string; readonly share: number }[];
  /** Self time in mcp-warden's own sources (src/), as a share of busy time. */
  readonly srcShare: number;
  /** Busy (not idle) sampled time of the main thread, µs. */
  readonly busyUs: number;
  /** Self time by part, µs, all of them: an area, except native code, which is split by function (writev apart from hashing). */
  readonly partsUs: readonly { readonly name: string; readonly us: number }[];
}

function area(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg !== null) return `npm:${pkg[1]}`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const src = /\/(src|bench)\/(.+)$/.exec(url);
  if (src !== null) return `${src[1]}/${src[2]}`;
  return url;
}

function shortUrl(url: string): string {
  const pkg = /node_modules\/(.+)$/.exec(url);
  if (pkg !== null) return pkg[1] as string;
  const src = /\/((?:src|bench)\/.+)$/.exec(url);
  return src !== null ? (src[1] as string) : url;
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  let total = 0;
  let idle = 0;
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  const parts = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (n === undefined) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    total += us;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    const name = `${functionName || '(anonymous)'} ${url === '' ? '' : `${shortUrl(url)}:${lineNumber + 1}`}`.trim();
    fns.set(name, (fns.get(name) ?? 0) + us);
    const a = area(url, functionName);
    areas.set(a, (areas.get(a) ?? 0) + us);
    const part = a === '(native)' ? `(native) ${functionName || '(anonymous)'}` : a;
    parts.set(part, (parts.get(part) ?? 0) + us);
  }
  const busy = total - idle;
  const rank = (m: Map<string, number>, k: number): { name: string; share: number }[] =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, us]) => ({ name, share: busy === 0 ? 0 : us / busy }));
  let src = 0;
  for (const [a, us] of areas) if (a.startsWith('src/')) src += us;
  return {
    busyShare: total === 0 ? 0 : busy / total,
    functions: rank(fns, top),
    areas: rank(areas, 12),
    srcShare: busy === 0 ? 0 : src / busy,
    busyUs: busy,
    partsUs: [...parts].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, us })),
  };
}
