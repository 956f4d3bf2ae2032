import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { expositionProblems } from '../helpers/exposition.ts';
import { postTo } from '../helpers/http.ts';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';

// Issue 24 §3: /metrics passes `promtool check metrics` (run when promtool is on PATH; Debian package
// `prometheus`), and always our own check of the same naming rules.

let idp: TestIdp;
let upstream: TestUpstream;
let gw: StartedGateway;
let text: string;

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url));
  // One allowed and one denied request, so counters and histograms have samples, not only HELP/TYPE.
  expect((await postTo(gw.url + '/mcp', await idp.token(AUD))).status).toBe(200);
  expect((await postTo(gw.url + '/mcp', 'not-a-token')).status).toBe(401);
  const res = await request(gw.adminUrl + '/metrics');
  expect(res.statusCode).toBe(200);
  text = await res.body.text();
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await idp?.close();
});

const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;

describe('/metrics naming (issue 24 §3)', () => {
  it('follows the exposition naming rules: counters end in _total, gauges do not, base units, one HELP and TYPE per family', () => {
    expect(text).toContain('# TYPE mcp_warden_requests_total counter');
    expect(text).toContain('# TYPE mcp_warden_nodejs_active_handles gauge');
    expect(text).not.toMatch(/^# TYPE \S+_total (?:gauge|histogram|summary)$/m);
    expect(expositionProblems(text)).toEqual([]);
  });

  it.runIf(promtool)('passes promtool check metrics', () => {
    const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('the naming check itself finds what promtool finds: a _total gauge, a counter without _total, milliseconds, a duplicate HELP', () => {
    const bad = [
      '# HELP a_total x', '# TYPE a_total gauge', 'a_total 1',
      '# HELP b x', '# TYPE b counter', 'b 1',
      '# HELP c_milliseconds x', '# TYPE c_milliseconds gauge', 'c_milliseconds 1',
      '# HELP d x', '# HELP d y', '# TYPE d gauge', 'd 1',
      'e 1',
    ].join('\n');
    expect(expositionProblems(bad).sort()).toEqual([
      'a_total: non-counter metrics should not have "_total" suffix',
      'b: counter metrics should have "_total" suffix',
      'c_milliseconds: use base unit "seconds" instead of "milliseconds"',
      'd: duplicate HELP',
      'e: sample without a # TYPE of its family',
    ]);
    if (promtool) {
      const run = spawnSync('promtool', ['check', 'metrics'], { input: bad.split('\n').filter((l) => l !== 'e 1' && l !== '# HELP d y').join('\n') + '\n', encoding: 'utf8', timeout: 20_000 });
      expect(run.status).not.toBe(0);
      expect(run.stdout + run.stderr).toContain('non-counter metrics should not have "_total" suffix');
    }
  });
});
