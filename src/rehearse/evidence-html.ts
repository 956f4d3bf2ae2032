import type { DrillResult, DrillStatus } from './report.ts';
import { controlSummary, countBy, runSpan, STATUSES, type Evidence } from './evidence-model.ts';

// One self-contained page: inline CSS, an inline SVG timeline, no scripts, no external resources.
const COLOURS: Record<DrillStatus, string> = { pass: '#2e7d32', fail: '#c62828', skip: '#9e9e9e', warn: '#f9a825' };

export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
.pass{color:${COLOURS.pass}}.fail{color:${COLOURS.fail}}.skip{color:${COLOURS.skip}}.warn{color:#b27d00}
td.status{font-weight:bold}code{font-size:12px}svg text{font:11px system-ui,sans-serif}`;

/** Each result line as a bar from its start to its end, on one axis from the run's start to its end. */
export function timelineSvg(results: readonly DrillResult[]): string {
  const label = 230;
  const width = 960;
  const row = 18;
  const span = runSpan(results);
  const t0 = Date.parse(span.start);
  const total = Math.max(1, Date.parse(span.end) - t0);
  const scale = (width - label - 10) / total;
  const height = results.length * row + 30;
  const bars = results.map((r, i) => {
    const x = label + (Date.parse(r.startedAt) - t0) * scale;
    const w = Math.max(2, (Date.parse(r.endedAt) - Date.parse(r.startedAt)) * scale);
    const y = i * row + 4;
    return `<g class="bar" data-status="${r.status}"><text x="${label - 6}" y="${y + 12}" text-anchor="end">${esc(r.drill)}</text>`
      + `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${row - 5}" fill="${COLOURS[r.status]}"><title>${esc(`${r.drill}: ${r.status.toUpperCase()} ${r.startedAt} → ${r.endedAt}`)}</title></rect></g>`;
  });
  const axis = results.length * row + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" id="timeline" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="timeline of the run">`
    + bars.join('')
    + `<line x1="${label}" y1="${axis - 12}" x2="${width - 10}" y2="${axis - 12}" stroke="#888"/>`
    + `<text x="${label}" y="${axis}">0 s</text><text x="${width - 10}" y="${axis}" text-anchor="end">${(total / 1000).toFixed(1)} s</text></svg>`;
}

export function evidenceHtml({ meta, results }: Evidence): string {
  const span = runSpan(results);
  const c = countBy(results);
  const facts: [string, string][] = [
    ['Run', `${span.start} → ${span.end}`],
    ['Result', `${c.pass} passed, ${c.fail} failed, ${c.skip} skipped, ${c.warn} warnings`],
    ['Gateway version', meta.gatewayVersion],
    ['Config', meta.configFile],
    ['Config SHA-256', meta.configSha256],
    ...meta.targets.map((t): [string, string] => [`Target: ${t.name}`, t.url]),
    ['Generated', meta.generatedAt],
  ];
  const controls = controlSummary(results).map((s) => `<tr class="control"><td>${esc(s.id)}</td><td>${esc(s.framework)}</td>${STATUSES.map((k) => `<td>${s.counts[k]}</td>`).join('')}</tr>`);
  const rows = results.map((r, i) => `<tr class="drill" data-status="${r.status}"><td>${i + 1}</td><td>${esc(r.drill)}</td><td>${esc(r.id)}</td><td>${esc(r.controls.join(', '))}</td>`
    + `<td class="status ${r.status}">${r.status.toUpperCase()}</td><td>${esc(r.startedAt)}</td><td>${esc(r.endedAt)}</td><td>${esc(r.detail)}</td></tr>`);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>mcp-warden rehearse: evidence report</title><style>${CSS}</style></head><body>
<h1>mcp-warden rehearse: evidence report</h1>
<table id="facts">${facts.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
<h2>Timeline</h2>
${timelineSvg(results)}
<h2>Controls</h2>
<table id="controls"><tr><th>Control</th><th>Framework</th><th>Passed</th><th>Failed</th><th>Skipped</th><th>Warnings</th></tr>${controls.join('')}</table>
<h2>Drills</h2>
<table id="drills"><tr><th>#</th><th>Drill</th><th>Id</th><th>Controls</th><th>Result</th><th>Started</th><th>Ended</th><th>Detail</th></tr>
${rows.join('\n')}
</table></body></html>
`;
}
