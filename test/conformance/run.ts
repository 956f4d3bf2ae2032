// npm run conformance: for each era (the active 2025 suite against the SDK v1 fixture, the
// 2026-07-28 requirements against the SDK v2 fixture), the MCP conformance server scenarios direct,
// through the gateway with a token from the embedded issuer, and through the gateway without one.
// Prints the pass counts; exits 1 unless every check passing direct passes through the gateway (but
// the listed known differences), none passes without a token, and nothing without one reaches the fixture.
import { KNOWN_2026, runConformance, type ConformanceEra, type ModeResult } from './suite.ts';

const started = performance.now();
let failed = false;
for (const era of ['2025-11-25', '2026-07-28'] as const satisfies readonly ConformanceEra[]) {
  failed = (await runEra(era)) || failed;
}
process.stdout.write(`total ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
process.exitCode = failed ? 1 : 0;

/** Prints one era's three runs; true when a problem was found. */
async function runEra(era: ConformanceEra): Promise<boolean> {
  const report = await runConformance({ era, knownDifferences: new Set(era === '2026-07-28' ? KNOWN_2026.keys() : []) });
  const line = (r: ModeResult): string => `${r.mode.padEnd(9)} ${String(r.passed.length).padStart(2)}/${r.scenarios.size} scenarios passed  (${(r.durationMs / 1000).toFixed(1)} s)`;

  process.stdout.write([
    `MCP conformance (@modelcontextprotocol/conformance), ${era === '2026-07-28' ? 'requirements of 2026-07-28 against the SDK v2 fixture' : 'active 2025 server suite'}`,
    line(report.direct),
    line(report.gateway),
    line(report.noToken),
    `upstream requests: through the gateway ${report.upstream.gatewayRequests}, without a token ${report.upstream.noTokenRequests} (${report.upstream.noTokenBytes} bytes)`,
    `gateway answers without a token: ${Object.entries(report.noTokenStatuses).map(([s, n]) => `${n}× ${s}`).join(', ')}`,
    ...(era === '2026-07-28' ? [`known differences (the gateway's own refusals): ${[...KNOWN_2026].map(([id, why]) => `${id} (${why})`).join('; ')}`] : []),
    ...(report.problems.length === 0 ? ['OK: every check passing direct passes through the gateway; no scenario passes without a token'] : ['FAILED:', ...report.problems.map((p) => `  - ${p}`)]),
    '',
  ].join('\n'));
  return report.problems.length > 0;
}
