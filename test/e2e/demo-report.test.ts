import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, type Config } from '../../src/config/compile.ts';
import { startDemoStack, type DemoStack } from '../../src/demo/stack.ts';
import { createLogger } from '../../src/observe/log.ts';
import { directUpstream } from '../../src/rehearse/direct.ts';
import { writeEvidence } from '../../src/rehearse/evidence.ts';
import { audienceMismatch, issuance, issuerMetadata, noToken, registration, resourceMetadata, validCall } from '../../src/rehearse/gateway-drills.ts';
import type { DrillResult } from '../../src/rehearse/report.ts';
import { expiredClientSecret } from '../../src/rehearse/issuer-drills.ts';
import { federation } from '../../src/rehearse/federation.ts';
import { refreshReplay } from '../../src/rehearse/refresh.ts';
import { stepUp } from '../../src/rehearse/step-up.ts';
import { evidenceOf, rehearse, type RehearseOptions } from '../../src/rehearse/run.ts';
import { demoConfig } from '../helpers/demo.ts';

// The fast drills only (no expiry wait, rotation, burst or outage): the report is what is under test.
const DRILLS = [resourceMetadata, issuerMetadata, registration, issuance, validCall, noToken, audienceMismatch, directUpstream];

function chromium(): string | undefined {
  try {
    return execFileSync('/bin/sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

let stack: DemoStack;
let configFile: string;
let config: Config;
let results: DrillResult[];
let options: RehearseOptions;
let dir: string;
beforeAll(async () => {
  configFile = await demoConfig();
  stack = await startDemoStack(configFile, createLogger({ level: 'silent' }));
  config = loadConfig(configFile);
  options = { drills: DRILLS, directUrls: new Map(config.upstreams.map((u) => [u.name, stack.upstreamUrl + u.target.pathname])), gatewayKeyFile: config.identity.signingKeyFile, outage: false };
  results = await rehearse(config, options);
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-report-'));
}, 60_000);
afterAll(async () => {
  await stack?.close();
  if (configFile !== undefined) rmSync(dirname(configFile), { recursive: true, force: true });
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('rehearse --report: the evidence report of a real run against the demo', () => {
  it('writes Markdown with the run facts, a row per control and a row per drill result', () => {
    expect(results.filter((r) => r.status !== 'pass')).toEqual([]);
    const files = writeEvidence(join(dir, 'evidence'), evidenceOf(config, options, results));
    expect(files).toEqual({ markdown: join(dir, 'evidence.md'), html: join(dir, 'evidence.html') });
    const md = readFileSync(files.markdown, 'utf8');
    const lines = md.split('\n');
    expect(lines[0]).toBe('# mcp-warden rehearse: evidence report');
    const sha = createHash('sha256').update(readFileSync(configFile)).digest('hex');
    const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
    expect(lines).toContain(`| Config SHA-256 | \`${sha}\` |`);
    expect(lines).toContain(`| Gateway version | mcp-warden ${version} |`);
    expect(lines).toContain(`| Target: gateway | ${config.publicUrl.origin} |`);
    expect(lines).toContain(`| Target: issuer | ${stack.issuer.url} |`);
    expect(lines).toContain(`| Target: upstream demo (direct) | ${stack.upstreamUrl}/mcp |`);
    expect(lines.find((l) => l.startsWith('| Run |'))).toMatch(/^\| Run \| \d{4}-\d\d-\d\dT[\d:.]+Z → \d{4}-\d\d-\d\dT[\d:.]+Z \|$/);
    expect(lines.find((l) => l.startsWith('| Result |'))).toBe(`| Result | ${results.length} passed, 0 failed, 0 skipped, 0 warnings; exit code 0 (--strict: 0) |`);
    const section = (title: string): string[] => {
      const from = lines.indexOf(title);
      const to = lines.findIndex((l, i) => i > from + 1 && l.startsWith('## '));
      return lines.slice(from, to < 0 ? undefined : to).filter((l) => l.startsWith('| ') && !l.startsWith('|--'));
    };
    const controls = section('## Controls');
    expect(controls.slice(1).map((l) => l.split(' | ')[0])).toEqual(['| OWASP NHI-03', '| OWASP Agentic A-02', '| CSA MAESTRO IAM-01']);
    const drills = section('## Drills').slice(1);
    expect(drills).toHaveLength(results.length);
    expect(drills[0]).toMatch(/^\| 1 \| metadata demo \| resource-metadata \| CSA MAESTRO IAM-01 \| PASS \| \S+Z \| \S+Z \| resource http:\/\/127\.0\.0\.1:\d+\/demo\/mcp \|$/);
    expect(drills.find((l) => l.includes('| direct demo other audience |'))).toMatch(/\| direct-upstream \| OWASP Agentic A-02, CSA MAESTRO IAM-01 \| PASS \|/);
  });

  it('writes a self-contained HTML page that a headless browser renders with every drill row and the timeline', async () => {
    const files = writeEvidence(join(dir, 'run.html'), evidenceOf(config, options, results));
    expect(files).toEqual({ markdown: join(dir, 'run.md'), html: join(dir, 'run.html') });
    const html = readFileSync(files.html, 'utf8');
    // Self-contained: nothing to fetch, nothing to run.
    expect(html).not.toMatch(/<script|<link|\ssrc=|url\(|@import/i);
    const browser = chromium();
    const dom = browser === undefined
      ? html
      : (await promisify(execFile)(browser, ['--headless', '--no-sandbox', '--disable-gpu', '--dump-dom', `file://${files.html}`], { timeout: 60_000 })).stdout;
    expect(dom.match(/<tr class="drill" data-status="pass">/g)).toHaveLength(results.length);
    expect(dom).toMatch(/<svg[^>]*id="timeline"/);
    expect(dom.match(/<g class="bar" data-status="pass">/g)).toHaveLength(results.length);
    expect(dom.match(/<rect /g)).toHaveLength(results.length);
    for (const r of results) expect(dom).toContain(`<td>${r.drill}</td>`);
    expect(dom).toContain(createHash('sha256').update(readFileSync(configFile)).digest('hex'));
  }, 90_000);
});

describe('rehearse: issuer drills say "not applicable", with the reason, when the deployment lacks what they need', () => {
  it('without the embedded issuer (an outside IdP), no sibling can be made; without --step-up-tool, no tool is called', async () => {
    // The same live deployment, seen by a config that does not own its issuer.
    const outside: Config = { ...config, authorizationServer: undefined };
    const results = await rehearse(outside, { drills: [expiredClientSecret, federation, stepUp, refreshReplay] });
    expect(results.map((r) => [r.drill, r.status])).toEqual([
      ['expired client secret', 'skip'], ['federation', 'skip'], ['step-up', 'skip'],
      // Replay runs live against the issuer's own endpoints: its loopback sign-in lets the drill through.
      ['refresh token replay', 'pass'],
    ]);
    for (const r of results.slice(0, 3)) expect(r.detail).toMatch(/^not applicable: /);
    expect(results[2]?.detail).toContain('--step-up-tool <upstream>/<tool>');
  }, 60_000);

  it('a step-up tool that needs no further scope fails: there is nothing to step up to', async () => {
    const results = await rehearse(config, { drills: [stepUp], stepUpTool: { upstream: 'demo', tool: 'get_time' } });
    expect(results).toMatchObject([{ drill: 'step-up', status: 'fail' }]);
    expect(results[0]?.detail).toMatch(/^with the base scopes \(mcp:demo\) get_time answered 200, not 403 insufficient_scope/);
  }, 30_000);
});
