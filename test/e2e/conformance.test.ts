import { describe, expect, it } from 'vitest';
import { runConformance } from '../conformance/suite.ts';

// The whole of `npm run conformance` (about 10 s on loopback): the MCP conformance active server
// suite against our fixture server direct, through the gateway with a token from the embedded
// issuer, and through the gateway without one. Each of the three runs is killed after 40 s.
describe('MCP conformance through the gateway', () => {
  it('passes through the gateway exactly the scenarios that pass direct; without a token none passes and nothing reaches the upstream', async () => {
    const report = await runConformance({ timeoutMs: 40_000 });
    expect(report.problems).toEqual([]);
    // The active suite of @modelcontextprotocol/conformance 0.1.16: 30 scenarios, all passing direct.
    expect(report.direct.scenarios.size).toBeGreaterThanOrEqual(30);
    expect(report.direct.passed).toHaveLength(report.direct.scenarios.size);
    expect([...report.gateway.passed].sort()).toEqual([...report.direct.passed].sort());
    expect(report.noToken.passed).toEqual([]);
    expect(report.upstream.gatewayRequests).toBeGreaterThan(0);
    expect(report.upstream.noTokenRequests).toBe(0);
    expect(report.upstream.noTokenBytes).toBe(0);
    // One 401 per scenario; the dns-rebinding probe's foreign Origin is refused with 403 before the token is looked at.
    expect(Object.keys(report.noTokenStatuses).sort()).toEqual(['401', '403']);
  }, 150_000);
});
