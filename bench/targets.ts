import { median, type Pauses, type Report, type Summary, type TargetKey, type Verdict } from './report.ts';

// The targets of issue 25 (the full pipeline against its own machinery; added latency; pauses; cold
// verify; all cores) with holds / does not hold, and the pipeline's cost stage by stage.

const f = (x: number | undefined, d = 2): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

/** a / b within each repeat (runs seconds apart, so a slow phase of the machine hits both), then the median. */
function paired(report: Report, s: readonly Summary[], name: string, a: TargetKey, b: TargetKey, min: number): Verdict {
  const ratios: number[] = [];
  for (const ra of report.runs.filter((r) => r.key === a)) {
    const rb = report.runs.find((r) => r.key === b && r.repeat === ra.repeat);
    if (rb !== undefined && rb.rps > 0) ratios.push(ra.rps / rb.rps);
  }
  const sa = s.find((x) => x.key === a);
  const sb = s.find((x) => x.key === b);
  if (ratios.length === 0 || sa === undefined || sb === undefined) return { name, measured: 'not measured', holds: undefined };
  const r = median(ratios);
  return { name, measured: `${r.toFixed(2)}× (per repeat ${ratios.map((x) => x.toFixed(2)).join(', ')}; ${f(sa.rps, 0)} vs ${f(sb.rps, 0)} req/s; CPU/request ${f((sa.cpuPer10k / sb.cpuPer10k), 2)}×)`, holds: r >= min };
}

export function issue25Verdicts(report: Report, s: readonly Summary[]): Verdict[] {
  const out: Verdict[] = [];
  out.push(paired(report, s, 'warm full pipeline, one process ≥ 0.8 × machinery floor req/s', 'warm', 'floor', 0.8));
  const fw = report.fixedRate.find((r) => r.key === 'warm');
  const fb = report.fixedRate.find((r) => r.key === 'bare');
  out.push(fw === undefined || fb === undefined
    ? { name: `fixed ${report.settings.fixedRate} req/s: p99 added over the bare proxy ≤ 1 ms`, measured: 'not measured', holds: undefined }
    : { name: `fixed ${report.settings.fixedRate} req/s: p99 added over the bare proxy ≤ 1 ms`, measured: `${f(fw.p99ms - fb.p99ms)} ms (${f(fw.p99ms)} vs ${f(fb.p99ms)} ms)`, holds: fw.p99ms - fb.p99ms <= 1 });
  const p = report.pauses;
  out.push(p === undefined
    ? { name: 'no GC or event-loop pause > 5 ms in the gateway at the fixed rate', measured: 'not measured', holds: undefined }
    : { name: 'no GC or event-loop pause > 5 ms in the gateway at the fixed rate', measured: `event-loop delay max ${f(p.loopMaxMs)} ms (p99 ${f(p.loopP99ms)}); ${p.gcCount} GCs, longest ${f(p.gcMaxMs)} ms (p99 ${f(p.gcP99ms)}, ${f(p.gcTotalMs, 0)} ms in all${gcKindText(p)})${floorPauseText(report.floorPauses)}`, holds: p.loopMaxMs <= 5 && p.gcMaxMs <= 5 });
  const st = report.stage;
  out.push(st === undefined
    ? { name: 'cold verify stage ≥ 0.9 × raw jose jwtVerify ops/s', measured: 'not measured', holds: undefined }
    : { name: 'cold verify stage ≥ 0.9 × raw jose jwtVerify ops/s', measured: `${st.verifyRatio.toFixed(2)}× (${f(st.verify, 0)} vs ${f(st.jose, 0)} ops/s, median of ${st.rounds} alternating rounds)`, holds: st.verifyRatio >= 0.9 });
  out.push(paired(report, s, 'cold verify through HTTP ≥ 0.5 × warm req/s', 'cold', 'warm', 0.5));
  out.push(paired(report, s, 'serve --workers 2 ≥ 1.7 × one process req/s', 'workers2', 'warm', 1.7));
  out.push(report.skipped.some((k) => k.key === 'haproxy' || k.key === 'haproxy2') && !report.runs.some((r) => r.key === 'haproxy2')
    ? { name: 'serve --workers 2 ≥ 1.0 × HAProxy jwt_verify nbthread 2 req/s', measured: 'HAProxy not present', holds: undefined }
    : paired(report, s, 'serve --workers 2 ≥ 1.0 × HAProxy jwt_verify nbthread 2 req/s', 'workers2', 'haproxy2', 1.0));
  return out;
}

export function renderIssue25(report: Report, s: readonly Summary[]): string[] {
  const L: string[] = ['## Targets of issue 25', '', '| target | measured | holds |', '|---|---|---|'];
  for (const v of issue25Verdicts(report, s)) L.push(`| ${v.name} | ${v.measured} | ${v.holds === undefined ? 'not measured' : v.holds ? '**holds**' : '**does not hold**'} |`);
  L.push('');
  const st = report.stages;
  if (st !== undefined) {
    const total = (k: 'warm' | 'cold'): number => st.stages.reduce((a, name) => a + (st[k].nsPerOp[name] ?? 0), 0);
    L.push('## The pipeline stage by stage (real code, no HTTP)', '');
    L.push(`Median ns per call of each stage of \`src/pipeline.ts\`, in order, on the bench's tools/call (state built by \`buildState\` from the bench config; a real IncomingMessage on an unconnected socket). Warm: one token (${st.warm.n} requests); cold: a new token on each (${st.cold.n} requests). The timer adds about ${st.timerNs} ns to each figure. The proxy stage (the upstream exchange) is the machinery and is not here: see the floor row.`, '');
    L.push('| stage | warm ns | cold ns |', '|---|---:|---:|');
    for (const name of st.stages) L.push(`| ${name} | ${f(st.warm.nsPerOp[name], 0)} | ${f(st.cold.nsPerOp[name], 0)} |`);
    L.push(`| **sum** | **${f(total('warm'), 0)}** | **${f(total('cold'), 0)}** |`, '');
  }
  return L;
}

function gcKindText(p: Pauses): string {
  const kinds = Object.entries(p.gcKinds ?? {});
  return kinds.length === 0 ? '' : `; by kind: ${kinds.map(([k, v]) => `${k} ${v.count}× longest ${v.maxMs.toFixed(2)} ms`).join(', ')}`;
}

/** The floor's pauses beside the gateway's: a loop delay the floor shows too is the machine's, not the pipeline's. */
function floorPauseText(p: Pauses | undefined): string {
  if (p === undefined) return '';
  return `; the machinery floor at the same rate: event-loop delay max ${f(p.loopMaxMs)} ms (p99 ${f(p.loopP99ms)}), ${p.gcCount} GCs, longest ${f(p.gcMaxMs)} ms`;
}
