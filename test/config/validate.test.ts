import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfigText } from '../../src/config/compile.ts';
import { ConfigError, formatProblem } from '../../src/config/errors.ts';
import { nearestKey } from '../../src/config/suggest.ts';

// Issue 24 §2: one run of `validate` names every problem it can find, schema and semantic, each with
// file:line: key, and suggests the nearest known key for a mistyped one.

const REPO = resolve(import.meta.dirname, '../..');
const CLI_TIMEOUT = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-validate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Two schema errors (a port that is not a number, a timeout below its minimum), a typo (scopse), and two
// semantic errors the schema cannot see (an HS256 allow-list, an issuer nobody configured).
const BROKEN = `publicUrl: http://127.0.0.1:8080
listen:
  port: eighty
issuers:
  - name: idp
    issuer: https://idp.test
    jwksUri: https://idp.test/jwks
    algorithms: [HS256]
upstreams:
  - name: mcp
    path: /mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [idp, nobody]
    scopse: [mcp:tools]
    timeoutMs: 5
identity:
  signingKeyFile: ./gateway.jwk
`;

/** Each expected line of output: line number, key, and the start of the message. */
const EXPECTED: readonly (readonly [line: number, key: string, message: string])[] = [
  [3, 'listen.port', 'Invalid input: expected number'],
  [8, 'issuers.0.algorithms.0', '"HS256" is not allowed'],
  [13, 'upstreams.0.issuers.1', 'unknown issuer "nobody"'],
  [14, 'upstreams.0.scopse', 'unknown key; did you mean `scopes`?'],
  [15, 'upstreams.0.timeoutMs', 'Too small'],
];

function problemsOf(text: string): string[] {
  try {
    loadConfigText(text, 'config.yaml', {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map(formatProblem);
  }
  throw new Error('the config was accepted');
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['bin/mcp-warden.js', ...args], { cwd: REPO, timeout: 30_000, env: { ...process.env, NODE_NO_WARNINGS: '1' } }, (err, stdout, stderr) => {
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

describe('validate names every problem in one run', () => {
  it('reports two schema errors, a mistyped key with its suggestion and the semantic errors together, in file order', () => {
    const problems = problemsOf(BROKEN);
    expect(problems).toHaveLength(EXPECTED.length);
    EXPECTED.forEach(([line, key, message], i) => expect(problems[i]).toContain(`config.yaml:${line}: ${key}: ${message}`));
  });

  it('maps a semantic problem back to its entry when an earlier entry the schema refused was set aside', () => {
    const text = [
      'publicUrl: http://127.0.0.1:8080',
      'issuers:',
      '  - { name: idp, issuer: https://idp.test, algorithms: [RS256] }',
      'upstreams:',
      '  - name: a', // no target: this whole entry is set aside for the semantic checks
      '    path: /a',
      '    issuers: [idp]',
      '  - name: b',
      '    path: /b',
      '    target: ftp://b.test/mcp',
      '    issuers: [idp]',
      'identity:',
      '  signingKeyFile: ./gateway.jwk',
      '  ttlSecond: 3',
      '',
    ].join('\n');
    expect(problemsOf(text)).toEqual([
      'config.yaml:5: upstreams.0.target: Invalid input: expected string, received undefined',
      'config.yaml:10: upstreams.1.target: must be an absolute http(s) URL',
      'config.yaml:14: identity.ttlSecond: unknown key; did you mean `ttlSeconds`?',
    ]);
  });

  it('does not echo a schema error as a semantic one, and suggests nothing for a key far from every known key', () => {
    const text = BROKEN.replace('    algorithms: [HS256]\n', '    algorithms: HS256\n    colour: blue\n');
    const problems = problemsOf(text);
    expect(problems.filter((p) => p.includes('issuers.0.algorithms'))).toEqual([expect.stringContaining('config.yaml:8: issuers.0.algorithms: Invalid input')]);
    expect(problems).toContain('config.yaml:9: issuers.0.colour: unknown key');
  });

  it('suggests by edit distance: a swapped pair, a missing letter and a case slip; nothing past a third of the length', () => {
    expect(nearestKey('scopse', ['scopes', 'issuers'])).toBe('scopes');
    expect(nearestKey('jwksUr', ['jwksUri', 'jwks'])).toBe('jwksUri');
    expect(nearestKey('publicURL', ['publicUrl', 'listen'])).toBe('publicUrl');
    expect(nearestKey('colour', ['scopes', 'clients'])).toBeUndefined();
  });

  it('the real CLI: validate prints every problem as error: file:line: key and exits 1; serve refuses to start with the same list', async () => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, BROKEN);
    const [validate, serve] = await Promise.all([cli('validate', '--config', file), cli('serve', '--config', file)]);
    const expected = EXPECTED.map(([line, key, message]) => `error: ${file}:${line}: ${key}: ${message}`);
    for (const run of [validate, serve]) {
      expect(run.code, run.stdout + run.stderr).toBe(1);
      const lines = run.stderr.trim().split('\n');
      expect(lines).toHaveLength(expected.length);
      expected.forEach((e, i) => expect(lines[i]).toContain(e));
    }
    expect(serve.stderr).toBe(validate.stderr);
  }, CLI_TIMEOUT);
});
