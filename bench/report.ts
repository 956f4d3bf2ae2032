import type { MachineryRow } from './alloc.ts';
import { renderLimitBench, type LimitBench } from './limits.ts';
import type { ProfileSummary } from './profile.ts';
import { renderIssue25 } from './targets.ts';

// results.md: the table of one run, its ratios, and which targets of issue 9 hold.

export type TargetKey = 'direct' | 'floor' | 'bare' | 'nginx' | 'haproxy' | 'warm' | 'dpop' | 'cold' | 'workers2' | 'haproxy2';

/** bench/stages.ts: median ns per stage of the real pipeline code, warm (one token) and cold (a new token each). */
export interface StageBench {
  readonly stages: readonly string[];
  readonly warm: { readonly n: number; readonly nsPerOp: Readonly<Record<string, number>> };
  readonly cold: { readonly n: number; readonly nsPerOp: Readonly<Record<string, number>> };
  readonly timerNs: number;
}

/** The gateway's own pauses during the warm fixed-rate window (perf_hooks, inside the gateway process). */
export interface Pauses {
  readonly loopMaxMs: number;
  readonly loopP99ms: number;
  readonly gcCount: number;
  readonly gcMaxMs: number;
  readonly gcP99ms: number;
  readonly gcTotalMs: number;
  /** Per GC kind (scavenge, mark-compact, …): how many and the longest. */
  readonly gcKinds?: Readonly<Record<string, { readonly count: number; readonly maxMs: number }>>;
}

export interface RunRow {
  readonly key: TargetKey;
  readonly repeat: number;
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50ms: number;
  readonly p99ms: number;
  readonly bad: number;
  readonly cpuPer10k: number;
  /** CPU seconds per wall second of the target's process (1.0 = one core). */
  readonly cpuShare: number;
  /** CPU cores used by processes outside the bench during the run (other jobs on the machine). */
  readonly foreignCores: number;
}

export interface StreamRow {
  readonly key: 'warden' | 'bare';
  readonly wanted: number;
  readonly opened: number;
  readonly openSeconds: number;
  readonly rssKiB: number;
  readonly rss0KiB: number;
  readonly perStreamKiB: number;
  readonly heapPerStreamKiB: number;
  readonly events: number;
  readonly p50ms: number;
  readonly p99ms: number;
  readonly maxms: number;
  readonly cpuShare: number;
  readonly clientLoopP99ms: number;
  readonly upstreamLoopP99ms: number;
}

export interface Report {
  startedAt: string;
  elapsedSeconds?: number;
  settings: { seconds: number; repeats: number; warmup: number; connections: number; threads: number; peerWorkers: number; coldTokens: number; fixedRate: number; fixedSeconds: number; sseSeconds: number; src: string };
  machine: {
    cores: number; cpu: string; node: string; loadgen: string; nginx: string | undefined; haproxy: string | undefined;
    jose: string; undici: string; httpProxy3: string; loadBefore: number[]; busyBefore: number; busyWarning: string | undefined;
  };
  skipped: { key: TargetKey; why: string }[];
  sanity: { what: string; ok: boolean; detail: string }[];
  runs: RunRow[];
  jose: { concurrent: number; serial: number; cpuSeconds: number } | undefined;
  /** The gateway's verify stage without HTTP (same tokens, same process as raw jose). */
  stage: { verify: number; verifyAndMint: number; jose: number; verifyRatio: number; mintRatio: number; rounds: number } | undefined;
  stages: StageBench | undefined;
  pauses: Pauses | undefined;
  /** The machinery floor's pauses in its own window at the same fixed rate (the machine's share). */
  floorPauses?: Pauses | undefined;
  fixedRate: { key: TargetKey; requests: number; bad: number; p50ms: number; p99ms: number }[];
  coldCache: { key: TargetKey; repeat: number; hits: number; misses: number }[];
  profiles: { key: 'warm' | 'cold' | 'floor'; rps: number; requests: number; summary: ProfileSummary }[];
  streams: StreamRow[];
  /** How the SSE phase's proxies were sized for memory (cgroup or V8 flags). */
  sseMemory: string | undefined;
  /** Later rounds of event latency at the largest stream count, bare and mcp-warden alternating (round 1 is in streams). */
  sseRounds: { round: number; bareP99ms: number; wardenP99ms: number; clientLoopP99ms: number }[];
  /** Heap allocated and system calls per proxied request, floor / bare / warm gateway (bench/alloc.ts). */
  machinery?: readonly MachineryRow[] | string;
  /** The rate-limit stage's cost per request, local and shared (bench/limits.ts). */
  limits: LimitBench | undefined;
  notes: string[];
}

export interface Summary {
  readonly key: TargetKey;
  readonly label: string;
  readonly rps: number;
  readonly p50ms: number;
  readonly p99ms: number;
  readonly cpuPer10k: number;
  readonly cpuShare: number;
  readonly bad: number;
  readonly runs: readonly number[];
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const f = (x: number | undefined, d = 2): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? '–' : `${(a / b).toFixed(2)}×`);
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

export function summarize(report: Report, targets: readonly { key: TargetKey; label: string }[]): Summary[] {
  const out: Summary[] = [];
  for (const t of targets) {
    const rows = report.runs.filter((r) => r.key === t.key);
    if (rows.length === 0) continue;
    out.push({
      key: t.key, label: t.label,
      rps: median(rows.map((r) => r.rps)), p50ms: median(rows.map((r) => r.p50ms)), p99ms: median(rows.map((r) => r.p99ms)),
      cpuPer10k: median(rows.map((r) => r.cpuPer10k)), cpuShare: median(rows.map((r) => r.cpuShare)),
      bad: rows.reduce((a, r) => a + r.bad, 0), runs: rows.map((r) => r.rps),
    });
  }
  return out;
}

export type Verdict = { readonly name: string; readonly measured: string; readonly holds: boolean | undefined };

export function verdicts(report: Report, s: readonly Summary[]): Verdict[] {
  const get = (k: TargetKey): Summary | undefined => s.find((x) => x.key === k);
  const warm = get('warm');
  const cold = get('cold');
  const bare = get('bare');
  const direct = get('direct');
  const haproxy = get('haproxy');
  const out: Verdict[] = [];
  const v = (name: string, a: number | undefined, b: number | undefined, min: number): void => {
    const r = a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
    out.push({ name, measured: r === undefined ? 'not measured' : `${r.toFixed(2)}× (${f(a, 0)} vs ${f(b, 0)} req/s)`, holds: r === undefined ? undefined : r >= min });
  };
  // Throughput against a peer: the ratio within each repeat (runs seconds apart), then the median of
  // those, so a slow phase of a noisy machine hits both sides of a ratio rather than one.
  const pairedV = (name: string, a: TargetKey, b: TargetKey, min: number): void => {
    const ratios: number[] = [];
    for (const ra of report.runs.filter((r) => r.key === a)) {
      const rb = report.runs.find((r) => r.key === b && r.repeat === ra.repeat);
      if (rb !== undefined && rb.rps > 0) ratios.push(ra.rps / rb.rps);
    }
    const sa = get(a);
    const sb = get(b);
    if (ratios.length === 0 || sa === undefined || sb === undefined) return void out.push({ name, measured: 'not measured', holds: undefined });
    const r = median(ratios);
    out.push({ name, measured: `${r.toFixed(2)}× median of per-repeat ratios (${ratios.map((x) => x.toFixed(2)).join(', ')}); CPU per request ${(sb.cpuPer10k / sa.cpuPer10k).toFixed(2)}× as efficient`, holds: r >= min });
  };
  pairedV('warm cache ≥ 0.90 × bare proxy req/s', 'warm', 'bare', 0.9);
  pairedV('warm cache ≥ 1.0 × HAProxy jwt_verify req/s', 'warm', 'haproxy', 1.0);
  v('cold verify ≥ 0.8 × raw jose jwtVerify ops/s (whole request through the proxy)', cold?.rps, report.jose?.concurrent, 0.8);
  if (report.stage !== undefined) {
    const st = report.stage;
    out.push({ name: 'cold verify ≥ 0.8 × raw jose jwtVerify ops/s (verify stage alone, no HTTP)', measured: `${st.verifyRatio.toFixed(2)}× median of ${st.rounds} alternating rounds (${f(st.verify, 0)} vs ${f(st.jose, 0)} ops/s)`, holds: st.verifyRatio >= 0.8 });
  }
  if (warm !== undefined && direct !== undefined) {
    const added = warm.p99ms - direct.p99ms;
    out.push({ name: 'p99 added vs direct ≤ 2 ms at 50 connections (saturating load)', measured: `${f(added)} ms (${f(warm.p99ms)} vs ${f(direct.p99ms)} ms)`, holds: added <= 2 });
  }
  const fw = report.fixedRate.find((r) => r.key === 'warm');
  const fd = report.fixedRate.find((r) => r.key === 'direct');
  if (fw !== undefined && fd !== undefined) {
    const added = fw.p99ms - fd.p99ms;
    out.push({ name: `p99 added vs direct ≤ 2 ms at 50 connections (fixed ${report.settings.fixedRate} req/s)`, measured: `${f(added)} ms (${f(fw.p99ms)} vs ${f(fd.p99ms)} ms)`, holds: added <= 2 });
  }
  const maxWanted = Math.max(0, ...report.streams.map((r) => r.wanted));
  const sw = report.streams.filter((r) => r.key === 'warden').sort((a, b) => b.wanted - a.wanted)[0];
  const sb = report.streams.find((r) => r.key === 'bare' && r.wanted === sw?.wanted);
  if (sw !== undefined) {
    const full = sw.opened >= sw.wanted && sw.wanted === maxWanted;
    out.push({ name: `${maxWanted} SSE streams: ≤ 40 KiB RSS per stream`, measured: full ? `${f(sw.perStreamKiB, 1)} KiB/stream` : `only ${sw.opened} of ${sw.wanted} streams opened (${f(sw.perStreamKiB, 1)} KiB/stream)`, holds: full ? sw.perStreamKiB <= 40 : false });
    const rounds = sseRounds(report);
    const added = median(rounds.map((r) => r.wardenP99ms - r.bareP99ms));
    const each = rounds.map((r) => f(r.wardenP99ms - r.bareP99ms)).join(', ');
    out.push({ name: `${maxWanted} SSE streams: event delivery p99 added ≤ 5 ms vs bare proxy`, measured: full ? `${f(added)} ms, median of ${rounds.length} alternating round(s) (${each})` : `only ${sw.opened} streams open`, holds: full && Number.isFinite(added) ? added <= 5 : false });
  }
  return out;
}

export function renderReport(report: Report, targets: readonly { key: TargetKey; label: string }[]): string {
  const s = summarize(report, targets);
  const get = (k: TargetKey): Summary | undefined => s.find((x) => x.key === k);
  const m = report.machine;
  const st = report.settings;
  const L: string[] = [];
  L.push('# mcp-warden benchmark (issue 9)', '');
  L.push(`Run ${report.startedAt}, ${f(report.elapsedSeconds, 0)} s. ${st.seconds} s per target after a ${st.warmup} s warm-up, ${st.repeats} repeat(s), medians; ${st.connections} connections, ${st.threads} threads; targets back to back in each repeat. Sources measured: \`${st.src}\`.`, '');
  L.push('## Machine', '');
  L.push(`- ${m.cores} cores, ${m.cpu}; Node ${m.node}; load generator ${m.loadgen}`);
  L.push(`- nginx ${m.nginx ?? 'not installed'}, HAProxy ${m.haproxy ?? 'not installed'} (both ${st.peerWorkers} worker/thread, like Node's one event loop); jose ${m.jose}, undici ${m.undici}, http-proxy-3 ${m.httpProxy3}`);
  L.push(`- load average before start ${m.loadBefore.map((x) => x.toFixed(2)).join(' / ')}; CPU busy in the second before start ${pct(m.busyBefore)}`);
  if (m.busyWarning !== undefined) L.push(`- **WARNING: ${m.busyWarning}** — numbers are less reliable.`);
  L.push('');
  L.push('## Throughput and latency', '');
  L.push('| target | req/s | p50 ms | p99 ms | × direct | × floor | × bare proxy | × nginx | × HAProxy | CPU s / 10k req | CPU cores used | errors |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const x of s) {
    L.push(`| ${x.label} | ${f(x.rps, 0)} | ${f(x.p50ms)} | ${f(x.p99ms)} | ${ratio(x.rps, get('direct')?.rps)} | ${ratio(x.rps, get('floor')?.rps)} | ${ratio(x.rps, get('bare')?.rps)} | ${ratio(x.rps, get('nginx')?.rps)} | ${ratio(x.rps, get('haproxy')?.rps)} | ${f(x.cpuPer10k)} | ${f(x.cpuShare)} | ${x.bad} |`);
  }
  L.push('', `Per-repeat req/s: ${s.map((x) => `${x.key} ${x.runs.map((r) => r.toFixed(0)).join('/')}`).join('; ')}. CPU is that target's own process (direct: the upstream; nginx: master + worker), from /proc.`);
  const dpop = get('dpop');
  const warmRow = get('warm');
  if (dpop !== undefined && warmRow !== undefined) {
    // Same gateway, upstream and policy: the difference is the RFC 9449 proof check (and the jti cache).
    L.push('', `DPoP verification: warm DPoP costs ${f(dpop.cpuPer10k - warmRow.cpuPer10k)} CPU s per 10k requests more than warm Bearer, **${f(((dpop.cpuPer10k - warmRow.cpuPer10k) / 10_000) * 1e6, 0)} µs per request** (every request a new ES256 proof, all §4.3 checks and the replay cache); ${ratio(dpop.rps, warmRow.rps)} warm Bearer req/s.`);
  }
  const disturbed = report.runs.filter((r) => r.foreignCores > 0.05);
  if (disturbed.length > 0) L.push('', `**Other processes used CPU during ${disturbed.length} of ${report.runs.length} measured runs** (max ${f(Math.max(...disturbed.map((r) => r.foreignCores)))} cores, in ${disturbed.map((r) => `${r.key}#${r.repeat}`).join(', ')}); medians damp but do not remove this.`);
  L.push('');
  if (report.jose !== undefined) {
    const cold = get('cold');
    L.push('## Cold verify', '');
    L.push(`- raw jose \`jwtVerify\` ES256 (same tokens, same claim options, separate process): **${f(report.jose.concurrent, 0)} ops/s** with ${st.connections} in flight (${f(report.jose.cpuSeconds / Math.max(1, Math.min(5, st.seconds)), 2)} cores busy), ${f(report.jose.serial, 0)} ops/s one at a time`);
    if (report.stage !== undefined) {
      L.push(`- mcp-warden's verify stage alone (its \`authenticate()\`: cache lookup, issuer/algorithm selection, jose, its own claim checks; no HTTP), in 100 ms slices alternating with raw jose (ABBA, ten of each per round) in one process on the same tokens: **${f(report.stage.verify, 0)} ops/s, ${report.stage.verifyRatio.toFixed(2)}×** raw jose (${f(report.stage.jose, 0)} ops/s in those slices; median of ${report.stage.rounds} rounds' ratios)`);
      L.push(`- verify stage + minting the identity assertion for the new token: ${f(report.stage.verifyAndMint, 0)} ops/s, ${report.stage.mintRatio.toFixed(2)}× raw jose`);
    }
    if (cold !== undefined) L.push(`- mcp-warden with a new token on every request, through HTTP: ${f(cold.rps, 0)} req/s = **${ratio(cold.rps, report.jose.concurrent)}** raw jose (every request also mints an assertion for its new token and is proxied; the warm path, with no crypto at all, is the ceiling here)`);
    const cc = report.coldCache.filter((c) => c.key === 'cold');
    if (cc.length > 0) L.push(`- token cache during the cold runs: ${cc.map((c) => `${c.hits} hits / ${c.misses} misses`).join('; ')} (pool of ${st.coldTokens} distinct tokens, ≥ 2× the gateway's caches, cycled)`);
    L.push('');
  }
  if (report.fixedRate.length > 0) {
    const d = report.fixedRate.find((r) => r.key === 'direct');
    L.push(`## Added latency below saturation (open loop, ${st.fixedRate} req/s, ${st.connections} connections, ${st.fixedSeconds} s)`, '');
    L.push('| target | p50 ms | p99 ms | p99 added vs direct | errors |', '|---|---:|---:|---:|---:|');
    for (const r of report.fixedRate) L.push(`| ${targets.find((t) => t.key === r.key)?.label ?? r.key} | ${f(r.p50ms)} | ${f(r.p99ms)} | ${d === undefined ? '–' : `${f(r.p99ms - d.p99ms)} ms`} | ${r.bad} |`);
    L.push('');
  }
  if (report.streams.length > 0) {
    L.push(`## SSE streams (one event per second each, ${st.sseSeconds} s measured per step)`, '');
    L.push('| through | streams open | RSS MiB | RSS per stream KiB | JS heap per stream KiB | event p50 ms | event p99 ms | p99 added vs bare | proxy CPU cores | loop delay p99 client / upstream ms |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of report.streams) {
      const b = report.streams.find((x) => x.key === 'bare' && x.wanted === r.wanted);
      L.push(`| ${r.key === 'warden' ? 'mcp-warden' : 'bare proxy'} | ${r.opened} / ${r.wanted} | ${f(r.rssKiB / 1024, 1)} | ${f(r.perStreamKiB, 1)} | ${f(r.heapPerStreamKiB, 1)} | ${f(r.p50ms)} | ${f(r.p99ms)} | ${r.key === 'warden' && b !== undefined ? `${f(r.p99ms - b.p99ms)} ms` : '–'} | ${f(r.cpuShare)} | ${f(r.clientLoopP99ms, 1)} / ${f(r.upstreamLoopP99ms, 1)} |`);
    }
    const rounds = sseRounds(report);
    if (rounds.length > 1) L.push('', `Event p99 at ${Math.max(...report.streams.map((r) => r.wanted))} streams, bare proxy and mcp-warden alternating: ${rounds.map((r) => `round ${r.round} ${f(r.bareP99ms)} / ${f(r.wardenP99ms)} ms (client loop delay p99 ${f(r.clientLoopP99ms, 1)} ms)`).join('; ')}.`);
    L.push('', `Each stream is its own connection with its own token (1,000 subjects, so a few streams per identity). Memory: ${report.sseMemory ?? 'default V8 sizing'}. RSS per stream = (RSS with the streams open − RSS before, both after a forced GC) ÷ streams. Latency = client receive time − upstream send time (CLOCK_MONOTONIC); a high event-loop delay in the client or the upstream (last column) means they, not the proxy, bound it.`, '');
  }
  L.push(...renderIssue25(report, s));
  L.push('## Targets of issue 9', '');
  L.push('| target | measured | holds |', '|---|---|---|');
  for (const v of verdicts(report, s)) L.push(`| ${v.name} | ${v.measured} | ${v.holds === undefined ? 'not measured' : v.holds ? '**yes**' : '**no**'} |`);
  L.push('');
  const bounds = boundsOf(report, s);
  if (bounds.length > 0) L.push('## What bounds the targets, from this run', '', ...bounds.map((b) => `- ${b}`), '');
  L.push(...renderDifferential(report));
  for (const p of report.profiles) {
    const what = p.key === 'floor' ? 'machinery floor' : p.key === 'warm' ? 'mcp-warden warm cache' : 'mcp-warden cold verify';
    L.push(`## CPU profile: ${what} (${f(p.rps, 0)} req/s under the profiler, main thread ${pct(p.summary.busyShare)} busy)`, '');
    L.push(`By area (self time): ${p.summary.areas.map((a) => `${a.name} ${pct(a.share)}`).join(', ')}.`, '');
    L.push('| function (self time) | share |', '|---|---:|');
    for (const fn of p.summary.functions) L.push(`| \`${fn.name}\` | ${pct(fn.share)} |`);
    L.push('');
  }
  if (report.skipped.length > 0) {
    L.push('## Skipped', '');
    for (const k of report.skipped) L.push(`- ${k.key}: ${k.why}`);
    L.push('');
  }
  if (report.machinery !== undefined) L.push(...renderMachinery(report.machinery));
  if (report.limits !== undefined) L.push(...renderLimitBench(report.limits));
  L.push('## Sanity checks (before measuring)', '');
  for (const c of report.sanity) L.push(`- ${c.ok ? 'ok' : 'FAILED'}: ${c.what} (${c.detail})`);
  L.push('');
  L.push('## Method', '');
  L.push('- Every target gets the same request: `POST` a JSON-RPC `tools/call` (`search`) with `Authorization: Bearer <ES256 JWT>`; the upstream is a minimal node:http MCP server in its own process.');
  L.push('- mcp-warden runs in its own process through `startFromFile` (the `serve` code path), one upstream with required scope and two per-tool rules (the called tool matches one), identity assertion minted and forwarded, one audit line per request to stdout (/dev/null).');
  L.push('- HAProxy checks `alg`, `iss`, `aud`, `exp`, `scope` (jwt_header_query / jwt_payload_query) and the ES256 signature (`jwt_verify` with the PEM public key) on every request; it has no verified-token cache. nginx proxies only (access_log off).');
  L.push('- The machinery floor (issue 25): node:http server + undici `Pool.dispatch`, the body read whole, the answer collected and sent in one write, no auth, no policy, no audit line (bench/floor-proxy.ts). `serve --workers 2` is the CLI\'s own cluster mode on another port (CPU: primary + workers).');
  L.push('- Order in every repeat: direct, nginx, cold, bare, floor, warm, warm DPoP, workers 2, HAProxy, HAProxy nbthread 2 (the later ones absent when not measured). The cold runs come before the warm ones, so warm always meets a full token cache (10,000 entries), as a gateway serving many clients would (the profiles below follow the same order); warm runs right between the bare proxy and HAProxy, the two its ratios compare it with, because this shared machine has slow phases of tens of seconds that raise every target\'s cost per request by up to 1.8×.');
  L.push('- Cold verify: every request takes the next token of a pool of distinct tokens, each thread its own slice, so no token is seen again before far more than the token cache (10,000) and the assertion cache (10,000) have turned over; the token-cache hit counter above confirms it.');
  for (const n of report.notes) L.push(`- ${n}`);
  L.push('');
  return L.join('\n');
}

/** The measured facts that bound each target, so a "no" above comes with its reason from the same run. */
function boundsOf(report: Report, s: readonly Summary[]): string[] {
  const get = (k: TargetKey): Summary | undefined => s.find((x) => x.key === k);
  const bare = get('bare');
  const haproxy = get('haproxy');
  const warm = get('warm');
  const direct = get('direct');
  const out: string[] = [];
  const warmProfile = report.profiles.find((p) => p.key === 'warm');
  const d = differential(report);
  if (d !== undefined) out.push(`Warm path: ${f(d.excess, 1)} µs more main-thread CPU per request than the floor (the differential below): ${f(d.src, 1)} µs of it in mcp-warden's own sources (self time), ${f(d.gc, 1)} µs more garbage collection, ${f(d.machinery, 1)} µs more in the same undici and node:http code; the kernel send is not where it goes (floor ${f(d.writev.floor, 1)}, warm ${f(d.writev.warm, 1)} µs).`);
  else if (warmProfile !== undefined) out.push(`Warm path: mcp-warden's own code (src/) is ${pct(warmProfile.summary.srcShare)} of the gateway's busy CPU (self time); the rest is Node's HTTP server, undici, socket writes and GC.`);
  if (bare !== undefined && haproxy !== undefined) out.push(`HAProxy: a bare Node proxy with no auth at all costs ${f(bare.cpuPer10k / haproxy.cpuPer10k)}× HAProxy's CPU per request (${f(bare.cpuPer10k)} vs ${f(haproxy.cpuPer10k)} s/10k) and HAProxy verifies an ES256 signature on each; on one event loop, matching HAProxy needs a Node HTTP stack cheaper than Node's own.`);
  if (report.jose !== undefined && warm !== undefined) out.push(`Cold verify through HTTP: the ceiling is the warm path, which does no crypto at all: ${f(warm.rps, 0)} req/s = ${ratio(warm.rps, report.jose.concurrent)} raw jose. ECDSA verification runs on the main thread in this Node (the cold profile's \`run\`/\`SignJob\` under webcrypto's jobPromise), so it adds to the proxy's own work instead of overlapping it.`);
  const fb = report.fixedRate.find((r) => r.key === 'bare');
  const fd = report.fixedRate.find((r) => r.key === 'direct');
  if (fb !== undefined && fd !== undefined) out.push(`p99 at a fixed rate: the bare proxy adds ${f(fb.p99ms - fd.p99ms)} ms to direct's p99 in the same run; at saturation (50 connections, closed loop) any proxy adds its queueing time (bare: ${bare === undefined || direct === undefined ? '–' : f(bare.p99ms - direct.p99ms)} ms).`);
  const maxWanted = Math.max(0, ...report.streams.map((r) => r.wanted));
  const sb = report.streams.find((r) => r.key === 'bare' && r.wanted === maxWanted);
  const sw = report.streams.find((r) => r.key === 'warden' && r.wanted === maxWanted);
  if (sb !== undefined && sw !== undefined) out.push(`SSE memory: the bare proxy holds ${f(sb.perStreamKiB, 1)} KiB RSS per stream (${f(sb.heapPerStreamKiB, 1)} KiB of it JS heap), mcp-warden ${f(sw.perStreamKiB, 1)} (${f(sw.heapPerStreamKiB, 1)}). The JS heap difference is the gateway's own per-stream state: each stream's token and identity assertion in their caches, the upstream exchange, the expiry timer. ${sw.perStreamKiB > 40 ? 'Over 40 KiB, look first at how V8 sized the young generation (the Memory line above).' : ''}`.trimEnd());
  return out;
}

/** The warm gateway's main-thread CPU per request beside the floor's, part by part (µs per request). */
interface Differential {
  readonly rows: readonly { readonly name: string; readonly floor: number; readonly warm: number; readonly diff: number }[];
  readonly totalFloor: number;
  readonly totalWarm: number;
  readonly excess: number;
  /** µs per request more in src/, in GC, and in the undici and node:http code both run. */
  readonly src: number;
  readonly gc: number;
  readonly machinery: number;
  readonly writev: { readonly floor: number; readonly warm: number };
}

function differential(report: Report): Differential | undefined {
  const floor = report.profiles.find((p) => p.key === 'floor');
  const warm = report.profiles.find((p) => p.key === 'warm');
  if (floor === undefined || warm === undefined || floor.requests === 0 || warm.requests === 0) return undefined;
  const perReq = (p: typeof floor): Map<string, number> => new Map(p.summary.partsUs.map((x) => [x.name, x.us / p.requests]));
  const a = perReq(floor);
  const b = perReq(warm);
  const rows = [...new Set([...a.keys(), ...b.keys()])]
    .map((name) => ({ name, floor: a.get(name) ?? 0, warm: b.get(name) ?? 0 }))
    .map((r) => ({ ...r, diff: r.warm - r.floor }))
    .sort((x, y) => y.diff - x.diff);
  const more = (test: (name: string) => boolean): number => rows.filter((r) => test(r.name)).reduce((sum, r) => sum + r.diff, 0);
  const totalFloor = floor.summary.busyUs / floor.requests;
  const totalWarm = warm.summary.busyUs / warm.requests;
  const send = rows.find((r) => r.name === '(native) writev');
  return {
    rows,
    totalFloor,
    totalWarm,
    excess: totalWarm - totalFloor,
    src: more((n) => n.startsWith('src/')),
    gc: more((n) => n === '(garbage collector)'),
    machinery: more((n) => n === 'npm:undici' || /^node:_http_/.test(n)),
    writev: { floor: send?.floor ?? 0, warm: send?.warm ?? 0 },
  };
}

/**
 * Issue 25, "find it": the warm gateway's main-thread CPU per request beside the floor's, part by part
 * (self time from the two profiles, each divided by the requests served while it was taken).
 */
function renderDifferential(report: Report): string[] {
  const d = differential(report);
  if (d === undefined) return [];
  const { rows, excess } = d;
  const shown = rows.slice(0, 16);
  const rest = rows.slice(16).reduce((sum, r) => sum + r.diff, 0);
  const share = (x: number): string => (excess > 0 ? pct(x / excess) : '–');
  const L = ['## Where the warm path\'s CPU goes beyond the floor\'s', ''];
  L.push(`Main-thread CPU per request (self time from the CPU profiles below, each divided by the requests served while it was taken): floor ${f(d.totalFloor, 1)} µs, mcp-warden warm ${f(d.totalWarm, 1)} µs, **${f(excess, 1)} µs more** (${f(d.totalWarm / d.totalFloor)}×). Native code is split by function; everything else by area. The profiler itself (node:inspector) costs both.`, '');
  L.push('| part | floor µs/req | warm µs/req | more µs/req | share of the excess |', '|---|---:|---:|---:|---:|');
  for (const r of shown) L.push(`| ${r.name} | ${f(r.floor, 2)} | ${f(r.warm, 2)} | ${f(r.diff, 2)} | ${share(r.diff)} |`);
  L.push(`| all other parts | | | ${f(rest, 2)} | ${share(rest)} |`);
  // The machinery both run for the same request: how much dearer it is inside the gateway's process.
  const machinery = (test: (name: string) => boolean): { floor: number; warm: number } =>
    rows.filter((r) => test(r.name)).reduce((sum, r) => ({ floor: sum.floor + r.floor, warm: sum.warm + r.warm }), { floor: 0, warm: 0 });
  const same = [
    { label: 'undici', m: machinery((n) => n === 'npm:undici') },
    { label: 'node:http (server, outgoing, incoming, common)', m: machinery((n) => /^node:_http_/.test(n)) },
    { label: 'kernel send (`writev`)', m: d.writev },
  ].filter((x) => x.m.floor > 0);
  if (same.length > 0) L.push('', `The same machinery, per request, floor → warm: ${same.map((x) => `${x.label} ${f(x.m.floor, 1)} → ${f(x.m.warm, 1)} µs (${f(x.m.warm / x.m.floor)}×)`).join('; ')}. The HTTP exchange is the same in both (one request, one upstream exchange, one answer; the gateway's has a few more headers), so a ratio well over 1 for code making the same calls, beside a kernel send that costs the same, means the same JavaScript runs slower per call inside a process that also runs the pipeline between those calls (caches and branch predictors shared with far more code; this VM exposes no hardware counters to show it directly).`);
  L.push('', `mcp-warden's own sources (src/, self time) are ${f(d.src, 1)} µs of the ${f(excess, 1)} µs (${share(d.src)}); the rest is work they cause in the machinery: more headers and bytes through node:http and undici, the hashes, the audit write, and the garbage collector for what they allocate.`, '');
  return L;
}

/** Event p99 at the largest stream count, round 1 from the table's rows, then the alternating rounds. */
function sseRounds(report: Report): Report['sseRounds'] {
  const most = Math.max(0, ...report.streams.map((r) => r.wanted));
  const b = report.streams.find((r) => r.key === 'bare' && r.wanted === most);
  const w = report.streams.find((r) => r.key === 'warden' && r.wanted === most);
  const first = b === undefined || w === undefined ? [] : [{ round: 1, bareP99ms: b.p99ms, wardenP99ms: w.p99ms, clientLoopP99ms: Math.max(b.clientLoopP99ms, w.clientLoopP99ms) }];
  return [...first, ...report.sseRounds];
}

/** Issue 25: allocations and system calls per proxied request, the gateway against the machinery. */
function renderMachinery(rows: readonly MachineryRow[] | string): string[] {
  const L = ['## Allocations and system calls per proxied request', ''];
  if (typeof rows === 'string') return [...L, rows, ''];
  L.push('Heap allocated over N requests in a process whose young generation holds them all without a GC (its heap growth), and `strace -c -f` counts over another N, per request (bench/alloc.ts, `npm run bench:alloc`).', '');
  L.push('| target | heap allocated per request | system calls per request |', '|---|---|---|');
  for (const r of rows) L.push(`| ${r.target} | ${r.allocation} | ${r.syscalls} |`);
  return [...L, ''];
}
