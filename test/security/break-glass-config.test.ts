import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfigText } from '../../src/config/compile.ts';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';

// Issue 19 §1: a break-glass grant is checked like every other setting, and one that has expired
// refuses the file, so the config always says what emergency access is open.

const REPO = resolve(import.meta.dirname, '../..');
const CLI_TIMEOUT = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-break-glass-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HOUR = 3_600_000;
const iso = (offsetMs: number): string => new Date(Date.now() + offsetMs).toISOString();

interface Grant {
  readonly activatedAt?: string;
  readonly expiresAt?: string;
  readonly extra?: string;
  readonly issuerLine?: string | null;
  readonly upstreams?: string;
  readonly breakGlassOnly?: boolean;
}

function yaml(grant: Grant = {}, root = ''): string {
  return [
    'publicUrl: https://gw.test',
    'issuers:',
    '  - name: idp',
    '    issuer: https://idp.test',
    '    algorithms: [ES256]',
    '  - name: emergency',
    '    issuer: https://break-glass.idp.test',
    '    algorithms: [ES256]',
    `    breakGlassOnly: ${grant.breakGlassOnly ?? true}`,
    '    breakGlassClients: [oncall-cli]',
    'upstreams:',
    '  - name: files',
    '    path: /files/mcp',
    '    target: http://127.0.0.1:3001/mcp',
    '    issuers: [idp, emergency]',
    '  - name: billing',
    '    path: /billing/mcp',
    '    target: http://127.0.0.1:3002/mcp',
    '    issuers: [idp]',
    'identity:',
    '  signingKeyFile: ./gateway.jwk',
    'breakGlass:',
    '  - name: incident-4711',
    '    ticket: INC-4711',
    '    reason: payments outage',
    ...(grant.issuerLine === null ? [] : [grant.issuerLine ?? '    issuer: emergency']),
    `    activatedAt: ${grant.activatedAt ?? iso(-HOUR)}`,
    `    expiresAt: ${grant.expiresAt ?? iso(HOUR)}`,
    `    upstreams: ${grant.upstreams ?? '[files]'}`,
    '    scopes: [mcp:files]',
    ...(grant.extra === undefined ? [] : grant.extra.split('\n')),
    ...(root === '' ? [] : root.split('\n')),
    '',
  ].join('\n');
}

function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  expect(i, `"${needle}" is in the config`).toBeGreaterThanOrEqual(0);
  return i + 1;
}

function problemsOf(text: string): readonly ConfigProblem[] {
  try {
    loadConfigText(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('the config was accepted');
}

function expectRefused(text: string, key: string, needle: string, message: RegExp): void {
  const problems = problemsOf(text);
  const problem = problems.find((p) => p.key === key);
  expect(problem, `a problem at ${key}; got ${JSON.stringify(problems)}`).toBeDefined();
  expect(problem?.line).toBe(lineOf(text, needle));
  expect(problem?.message).toMatch(message);
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['bin/mcp-warden.js', ...args], { cwd: REPO, timeout: 45_000, env: { ...process.env, NODE_NO_WARNINGS: '1' } }, (err, stdout, stderr) => {
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

describe('break-glass grants in the config', () => {
  it('compiles an open grant and warns that it is active and when it expires', () => {
    const expiresAt = iso(2 * HOUR);
    const text = yaml({ expiresAt });
    const config = loadConfigText(text);
    expect(config.breakGlass[0]).toMatchObject({ name: 'incident-4711', ticket: 'INC-4711', issuer: 'emergency', expiresAtMs: Date.parse(expiresAt), maxTokenLifetimeSeconds: 900 });
    const warning = config.warnings.find((w) => w.key === 'breakGlass.0');
    expect(warning?.line).toBe(lineOf(text, '- name: incident-4711'));
    expect(warning?.message).toContain(`is ACTIVE until ${expiresAt} (in 2.0 h)`);
  });

  it('refuses a grant whose expiresAt has passed, naming the ticket to retire', () => {
    const text = yaml({ activatedAt: '2026-01-01T00:00:00Z', expiresAt: '2026-01-02T00:00:00Z' });
    expectRefused(text, 'breakGlass.0.expiresAt', 'expiresAt:', /expired at 2026-01-02T00:00:00Z: remove this grant \(ticket INC-4711\)/);
  });

  it('refuses a window over 72 h, or over a lowered limits.breakGlassMaxWindowSeconds, or ending before it starts', () => {
    expectRefused(yaml({ activatedAt: iso(-HOUR), expiresAt: iso(72 * HOUR) }), 'breakGlass.0.expiresAt', 'expiresAt:', /the window is 73\.0 h; at most 72\.0 h/);
    const lowered = yaml({ activatedAt: iso(-HOUR), expiresAt: iso(12 * HOUR) }, 'limits:\n  breakGlassMaxWindowSeconds: 28800');
    expectRefused(lowered, 'breakGlass.0.expiresAt', 'expiresAt:', /at most 8\.0 h/);
    expectRefused(yaml({ activatedAt: iso(2 * HOUR), expiresAt: iso(HOUR) }), 'breakGlass.0.expiresAt', 'expiresAt:', /must be after activatedAt/);
    expectRefused(yaml({}, 'limits:\n  breakGlassMaxWindowSeconds: 300000'), 'limits.breakGlassMaxWindowSeconds', 'breakGlassMaxWindowSeconds', /259200/);
  });

  it('refuses times without an explicit offset (never the host\'s zone)', () => {
    expectRefused(yaml({ expiresAt: '2030-01-01T10:00:00' }), 'breakGlass.0.expiresAt', 'expiresAt:', /offset/);
    expectRefused(yaml({ activatedAt: 'tomorrow' }), 'breakGlass.0.activatedAt', 'activatedAt:', /offset/);
  });

  it('refuses a grant whose tokens would become ordinary ones once it is removed', () => {
    expectRefused(yaml({ breakGlassOnly: false }), 'breakGlass.0.issuer', 'issuer: emergency', /needs breakGlassOnly: true on that issuer/);
    const client = yaml({ breakGlassOnly: false, extra: '    clientId: someone-else' });
    expectRefused(client, 'breakGlass.0.clientId', 'clientId: someone-else', /list "someone-else" in the breakGlassClients of issuer "emergency"/);
    expect(loadConfigText(yaml({ breakGlassOnly: false, extra: '    clientId: oncall-cli' })).breakGlass[0]?.clientId).toBe('oncall-cli');
  });

  it('refuses a grant without an issuer, an unknown issuer or upstream, or an upstream not accepting its issuer', () => {
    expectRefused(yaml({ issuerLine: null }), 'breakGlass.0.issuer', '- name: incident-4711', /expected string/);
    expectRefused(yaml({ issuerLine: '    issuer: nobody' }), 'breakGlass.0.issuer', 'issuer: nobody', /unknown issuer "nobody"/);
    expectRefused(yaml({ upstreams: '[files, nowhere]' }), 'breakGlass.0.upstreams.1', 'upstreams: [files, nowhere]', /unknown upstream "nowhere"/);
    expectRefused(yaml({ upstreams: '[files, billing]' }), 'breakGlass.0.upstreams.1', 'upstreams: [files, billing]', /does not accept issuer "emergency"/);
  });

  it('refuses a token lifetime over an hour, and two grants of one name', () => {
    expectRefused(yaml({ extra: '    maxTokenLifetimeSeconds: 7200' }), 'breakGlass.0.maxTokenLifetimeSeconds', 'maxTokenLifetimeSeconds', /3600/);
    const twice = yaml({ extra: `  - name: incident-4711\n    ticket: INC-2\n    reason: again\n    issuer: emergency\n    activatedAt: ${iso(-HOUR)}\n    expiresAt: ${iso(HOUR)}\n    upstreams: [files]\n    scopes: [mcp:files]` });
    const problem = problemsOf(twice).find((p) => p.key === 'breakGlass.1.name');
    expect(problem?.message).toMatch(/duplicate break-glass grant name/);
  });

  it('refuses a second issuer entry with the break-glass issuer\'s iss: listed first on an upstream, it would take the emergency tokens as ordinary ones', () => {
    const twin = yaml().replace('upstreams:\n', '  - name: legacy\n    issuer: https://break-glass.idp.test\n    algorithms: [ES256]\nupstreams:\n').replace('issuers: [idp, emergency]', 'issuers: [legacy, idp, emergency]');
    expectRefused(twin, 'issuers.1.issuer', 'issuer: https://break-glass.idp.test', /issuer "legacy" names the same iss: its entry would accept the break-glass tokens of "emergency" as ordinary ones/);
    const clients = yaml({ breakGlassOnly: false, extra: '    clientId: oncall-cli' }).replace('upstreams:\n', '  - name: legacy\n    issuer: https://break-glass.idp.test\n    algorithms: [ES256]\nupstreams:\n');
    expectRefused(clients, 'issuers.1.issuer', 'issuer: https://break-glass.idp.test', /names the same iss/);
  });

  it('never lets an upstream copy a token\'s own break_glass claims into the assertion', () => {
    const text = yaml().replace('    issuers: [idp, emergency]', '    issuers: [idp, emergency]\n    identity: { claims: [email, break_glass_ticket] }');
    expectRefused(text, 'upstreams.0.identity.claims.1', 'identity: { claims', /set by the gateway itself/);
  });

  it('validate exits 1 on an expired grant with file:line: key, and 0 with a warning on an active one', async () => {
    const expired = join(dir, 'expired.yaml');
    const expiredText = yaml({ activatedAt: '2026-01-01T00:00:00Z', expiresAt: '2026-01-02T00:00:00Z' });
    writeFileSync(expired, expiredText);
    const active = join(dir, 'active.yaml');
    writeFileSync(active, yaml());
    const [refused, warned] = await Promise.all([cli('validate', '--config', expired), cli('validate', '--config', active)]);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain(`${expired}:${lineOf(expiredText, 'expiresAt:')}: breakGlass.0.expiresAt: expired at 2026-01-02T00:00:00Z`);
    expect(warned.code, warned.stderr).toBe(0);
    expect(warned.stderr).toMatch(new RegExp(`warning: ${active}:\\d+: breakGlass\\.0: break-glass grant "incident-4711" \\(ticket INC-4711\\) is ACTIVE until`));
  }, CLI_TIMEOUT);
});
