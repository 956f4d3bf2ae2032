// npm run conformance: the MCP conformance active server suite against our fixture server direct,
// through the gateway with a token from the embedded issuer, and through the gateway without one.
// Prints the three pass counts; exits 1 unless every scenario passing direct passes through the
// gateway, none passes without a token, and nothing without a token reaches the fixture.
import { runConformance, type ModeResult } from './suite.ts';

const started = performance.now();
const report = await runConformance();
const line = (r: ModeResult): string => `${r.mode.padEnd(9)} ${String(r.passed.length).padStart(2)}/${r.scenarios.size} scenarios passed  (${(r.durationMs / 1000).toFixed(1)} s)`;

process.stdout.write([
  'MCP conformance (@modelcontextprotocol/conformance, active server suite)',
  line(report.direct),
  line(report.gateway),
  line(report.noToken),
  `upstream requests: through the gateway ${report.upstream.gatewayRequests}, without a token ${report.upstream.noTokenRequests} (${report.upstream.noTokenBytes} bytes)`,
  `gateway answers without a token: ${Object.entries(report.noTokenStatuses).map(([s, n]) => `${n}× ${s}`).join(', ')}`,
  `total ${((performance.now() - started) / 1000).toFixed(1)} s`,
  ...(report.problems.length === 0 ? ['OK: direct and gateway passes are identical; no scenario passes without a token'] : ['FAILED:', ...report.problems.map((p) => `  - ${p}`)]),
  '',
].join('\n'));
process.exitCode = report.problems.length === 0 ? 0 : 1;
