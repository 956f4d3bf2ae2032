import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';

// Issue 19 §1: the README's break-glass alert rules are valid Prometheus rules (promtool check rules,
// when promtool is on PATH: Debian package `prometheus`) and fire on the series the gateway exports.

const README = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');
const MARKER = '<!-- break-glass-alert-rules -->\n```yaml\n';
const start = README.indexOf(MARKER);
const rulesText = start < 0 ? '' : README.slice(start + MARKER.length, README.indexOf('```', start + MARKER.length));
const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-alerts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Rule {
  readonly alert: string;
  readonly expr: string;
}

describe('the README break-glass alert rules', () => {
  it('are one rule group whose expressions read only metrics the gateway exports', () => {
    expect(start).toBeGreaterThan(0);
    const doc = parse(rulesText) as { groups: { rules: Rule[] }[] };
    const rules = doc.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(['McpWardenBreakGlassActive', 'McpWardenBreakGlassUsed', 'McpWardenBreakGlassLongOpen']);
    const metricsSource = readFileSync(resolve(import.meta.dirname, '../../src/observe/metrics.ts'), 'utf8');
    for (const r of rules) {
      for (const name of r.expr.match(/mcp_warden_[a-z_]+/g) ?? []) expect(metricsSource).toContain(`name: '${name}'`);
    }
  });

  it.runIf(promtool)('pass promtool check rules', () => {
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, rulesText);
    const run = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 20_000 });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('SUCCESS: 3 rules found');
  });

  it.runIf(promtool)('fire in promtool test rules: an open grant, its use, and a window open for more than a day', () => {
    writeFileSync(join(dir, 'rules.yaml'), rulesText);
    const labels = 'grant="incident-4711",ticket="INC-4711"';
    const test = {
      rule_files: ['rules.yaml'],
      evaluation_interval: '1m',
      tests: [{
        interval: '1m',
        input_series: [
          { series: `mcp_warden_break_glass_active{${labels}}`, values: '1x10' },
          // Expires two days after the series start (Unix time 0 in promtool).
          { series: `mcp_warden_break_glass_expiry_timestamp_seconds{${labels}}`, values: `${2 * 86_400}x10` },
          { series: 'mcp_warden_break_glass_requests_total{grant="incident-4711",upstream="files",outcome="allow"}', values: '0+1x10' },
        ],
        alert_rule_test: [
          { eval_time: '5m', alertname: 'McpWardenBreakGlassActive', exp_alerts: [{ exp_labels: { severity: 'warning', grant: 'incident-4711', ticket: 'INC-4711' }, exp_annotations: { summary: 'Break-glass grant incident-4711 (INC-4711) is open' } }] },
          { eval_time: '5m', alertname: 'McpWardenBreakGlassUsed', exp_alerts: [{ exp_labels: { severity: 'critical', grant: 'incident-4711', upstream: 'files' }, exp_annotations: { summary: 'Requests through break-glass grant incident-4711 at files' } }] },
          { eval_time: '5m', alertname: 'McpWardenBreakGlassLongOpen', exp_alerts: [{ exp_labels: { severity: 'warning', grant: 'incident-4711', ticket: 'INC-4711' }, exp_annotations: { summary: 'Break-glass grant incident-4711 stays open for more than another day' } }] },
        ],
      }],
    };
    const file = join(dir, 'rules.test.yaml');
    writeFileSync(file, stringify(test));
    const run = spawnSync('promtool', ['test', 'rules', file], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    expect(run.status, run.stdout + run.stderr).toBe(0);
  });
});
