import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-policy-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The real CLI process: stdout, stderr and exit code. */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['bin/mcp-warden.js', ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

const CONFIG = resolve('config/sql-analytics.yaml');

describe('mcp-warden policy test <file>', () => {
  it('green: prints one PASS line per case and the summary, exit 0', async () => {
    const run = await cli('policy', 'test', 'config/policy-tests/sql-analytics.yaml');
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('  PASS an analyst runs a select on analytics — allow by rules[1] (cel:');
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('13 passed, 0 failed');
    expect(run.code).toBe(0);
  });

  it('red: names the failing case with its line, what was expected and what was decided, exit 1', async () => {
    const file = join(dir, 'red.yaml');
    writeFileSync(file, `- name: an intern may drop tables
  claims: { scope: mcp:sql, groups: [intern] }
  tool: drop_table
  expect: allow
- name: analytics select
  claims: { scope: mcp:sql }
  tool: run_sql
  arguments: { database: analytics, query: select 1 }
  expect: allow
`);
    const run = await cli('policy', 'test', file, '--config', CONFIG);
    expect(run.stdout).toContain(`  FAIL an intern may drop tables (${file}:1) — expected allow, got deny policy_denied by tools[0] (cel:`);
    expect(run.stdout).toContain('  PASS analytics select — allow by rules[1]');
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('1 passed, 1 failed');
    expect(run.code).toBe(1);
  });

  it('refuses a malformed test file with file:line, exit 1', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, `config: ${CONFIG}\ncases:\n  - name: typo\n    tool: x\n    expect: allow\n    argments: {}\n`);
    const run = await cli('policy', 'test', file);
    expect(run.stderr).toContain(`error: ${file}:3: cases.0: Unrecognized key: "argments"`);
    expect(run.code).toBe(1);
  });

  it('refuses a config whose condition does not compile, with file:line, exit 1', async () => {
    const config = join(dir, 'broken.yaml');
    writeFileSync(config, `publicUrl: http://127.0.0.1:8080
issuers: [{ name: corp, issuer: https://idp.example.com, algorithms: [ES256] }]
upstreams:
  - name: w
    path: /w/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [corp]
    rules:
      - method: tools/call
        tool: run_sql
        when: 'args.database = "analytics"'
identity: { signingKeyFile: ./k.jwk }
`);
    const tests = join(dir, 'cases.yaml');
    writeFileSync(tests, '- { name: x, tool: run_sql, expect: allow }\n');
    const run = await cli('policy', 'test', tests, '--config', config);
    expect(run.stderr).toMatch(new RegExp(`^error: ${config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:11: upstreams\\.0\\.rules\\.0\\.when: CEL syntax error`));
    expect(run.code).toBe(1);
  });
});

describe('mcp-warden policy explain', () => {
  it('prints the decision, the deciding entry, its condition and the entries passed over', async () => {
    const run = await cli('policy', 'explain', '--config', CONFIG,
      '--claims', JSON.stringify({ scope: 'mcp:sql mcp:sql:admin', groups: ['dba'] }),
      '--call', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'run_sql', arguments: { database: 'billing', query: 'select 1' } } }));
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('upstream:  warehouse');
    expect(lines[1]).toBe('call:      tools/call run_sql');
    expect(lines[2]).toMatch(/^decision:  allow by rules\[2\] \(cel:[0-9a-f]{12}\)$/);
    expect(lines[3]).toBe('why:       the first entry meeting the call exactly allowed it');
    expect(lines[4]).toMatch(/^condition: cel:[0-9a-f]{12} = has\(claims.groups\) && "dba" in claims.groups$/);
    expect(lines.slice(5)).toEqual([
      expect.stringMatching(/^passed:    tools\[0\]: condition cel:[0-9a-f]{12} is false, the entry does not apply$/),
      expect.stringMatching(/^passed:    rules\[1\]: condition cel:[0-9a-f]{12} is false, the entry does not apply$/),
    ]);
    expect(run.stdout).not.toContain('billing');
  });

  it('explains a default denial', async () => {
    const run = await cli('policy', 'explain', '--config', CONFIG, '--claims', '{"scope":"mcp:sql"}', '--call', '{"method":"tools/call","params":{"name":"export_everything"}}');
    expect(run.stdout).toContain('decision:  deny policy_denied by default\nwhy:       no entry decided: the upstream\'s default applies\n');
    expect(run.code).toBe(0);
  });
});

describe('mcp-warden pins update', () => {
  const pinConfig = (pinFile: string): string => `publicUrl: http://127.0.0.1:8080
issuers: [{ name: corp, issuer: https://idp.example.com, algorithms: [ES256] }]
upstreams:
  - name: files
    path: /files/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [corp]
    pinning: { onChange: block, file: ${pinFile} }
identity: { signingKeyFile: ./k.jwk }
`;

  it('writes the observed definitions into the pin file, prints each tool and removes the observation, exit 0', async () => {
    const pins = join(dir, 'files.pins.json');
    const config = join(dir, 'pinned.yaml');
    writeFileSync(config, pinConfig(pins));
    writeFileSync(pins, JSON.stringify({ tools: { search: 'a'.repeat(64) } }));
    writeFileSync(`${pins}.observed`, JSON.stringify({ upstream: 'files', tools: { search: { change: 'changed', hash: 'b'.repeat(64), definition: {} }, fetch: { change: 'new', hash: 'c'.repeat(64), definition: {} } } }));
    const run = await cli('pins', 'update', '--config', config);
    expect(run.stdout).toBe(`files: pinned fetch (new, now ${'c'.repeat(12)})\nfiles: pinned search (changed, was ${'a'.repeat(12)}, now ${'b'.repeat(12)})\n`);
    expect(run.code).toBe(0);
    expect(JSON.parse(readFileSync(pins, 'utf8'))).toEqual({ tools: { fetch: 'c'.repeat(64), search: 'b'.repeat(64) } });
    expect(existsSync(`${pins}.observed`)).toBe(false);
    expect((await cli('pins', 'update', '--config', config)).stdout).toBe(`files: ${pins} is up to date (nothing observed)\n`);
  });

  it('refuses a config without a pin file, exit 1', async () => {
    const run = await cli('pins', 'update', '--config', CONFIG);
    expect(run.stderr).toContain('no upstream has a pin file');
    expect(run.code).toBe(1);
  });
});
