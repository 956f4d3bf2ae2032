import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig, loadConfigText } from '../../src/config/compile.ts';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';

// Issue 19 §2: `environment: production` refuses at start every setting that belongs to a development
// machine, all at once, each naming file:line:key; staging and development loosen only what the
// README's rule × environment table says.

const REPO = resolve(import.meta.dirname, '../..');
const CLI_TIMEOUT = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-profile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A production config that passes every rule. */
const CLEAN = `environment: production
publicUrl: https://gw.example.com
issuers:
  - name: corp
    issuer: https://idp.example.com
    jwksUri: https://idp.example.com/jwks
    algorithms: [ES256]
    typ: at+jwt
    maxTokenLifetimeSeconds: 3600
    environments: [production, staging]
upstreams:
  - name: files
    path: /files/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [corp]
identity:
  signingKeyFile: ./gateway.jwk
`;

/** Every production refusal in one file, each on a line of its own. */
const DIRTY = `environment: production
publicUrl: https://gw.example.com
issuers:
  - name: laptop
    issuer: http://127.0.0.1:9400
    jwksUri: http://127.0.0.1:9400/jwks
    algorithms: [ES256]
    environments: [development, production]
  - name: plain
    issuer: http://idp.example.com
    algorithms: [ES256]
    typ: at+jwt
    maxTokenLifetimeSeconds: 7200
  - name: loop
    issuer: https://localhost:9443
    algorithms: [ES256]
    typ: at+jwt
    maxTokenLifetimeSeconds: 600
upstreams:
  - name: files
    path: /files/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [laptop, plain, loop]
    identity:
      informationalHeaders: true
identity:
  signingKeyFile: ./gateway.jwk
authorizationServer:
  issuer: http://127.0.0.1:9400
  listen: { host: 127.0.0.1, port: 9400 }
  keysFile: ./issuer-keys.json
  clients:
    - client_id: ci
      client_secret: "0123456789abcdef0123456789abcdef"
      grant_types: [client_credentials]
`;

/** key → a needle on the line the problem must name, and what its message says. */
const DIRTY_PROBLEMS: readonly (readonly [key: string, needle: string, message: RegExp])[] = [
  ['issuers.0.issuer', 'issuer: http://127.0.0.1:9400', /must use https/],
  ['issuers.0.jwksUri', 'jwksUri: http://127.0.0.1:9400/jwks', /must use https/],
  ['issuers.0.environments', 'environments: [development, production]', /also listed as development/],
  ['issuers.0.typ', '- name: laptop', /typ: at\+jwt/],
  ['issuers.0.maxTokenLifetimeSeconds', '- name: laptop', /tokens may live 86400 s; set maxTokenLifetimeSeconds to at most 3600/],
  ['issuers.1.issuer', 'issuer: http://idp.example.com', /must use https/],
  ['issuers.1.maxTokenLifetimeSeconds', 'maxTokenLifetimeSeconds: 7200', /at most 3600/],
  ['issuers.2.issuer', 'issuer: https://localhost:9443', /loopback address is a development issuer/],
  ['upstreams.0.identity.informationalHeaders', 'informationalHeaders: true', /unsigned identity headers/],
  ['authorizationServer.issuer', 'issuer: http://127.0.0.1:9400', /signs in a demo user and consents by itself/],
  ['authorizationServer.registration.initialAccessToken', 'authorizationServer:', /open to anyone/],
  ['authorizationServer.clients.0.client_secret', 'client_secret:', /never rotates/],
];

function lineOf(text: string, needle: string, after = 0): number {
  const i = text.split('\n').findIndex((l, n) => n >= after && l.includes(needle));
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

/** The line a DIRTY problem names: authorizationServer.issuer is the second "issuer: http://127.0.0.1:9400". */
function dirtyLine(key: string, needle: string): number {
  return lineOf(DIRTY, needle, key.startsWith('authorizationServer') ? lineOf(DIRTY, 'authorizationServer:') - 1 : 0);
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['bin/mcp-warden.js', ...args], { cwd: REPO, timeout: 45_000, env: { ...process.env, NODE_NO_WARNINGS: '1' } }, (err, stdout, stderr) => {
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

describe('the production profile', () => {
  it('accepts a config of https issuers with at+jwt and lifetimes within the cap', () => {
    expect(loadConfigText(CLEAN).environment).toBe('production');
  });

  it('refuses every development setting at once, each with its own line and key', () => {
    const problems = problemsOf(DIRTY);
    for (const [key, needle, message] of DIRTY_PROBLEMS) {
      const problem = problems.find((p) => p.key === key);
      expect(problem, `a problem at ${key}; got ${JSON.stringify(problems.map((p) => p.key))}`).toBeDefined();
      expect(problem?.line, key).toBe(dirtyLine(key, needle));
      expect(problem?.message).toMatch(message);
    }
  });

  it('caps token lifetimes at limits.productionMaxTokenLifetimeSeconds, which can only be lowered', () => {
    const lowered = CLEAN + 'limits:\n  productionMaxTokenLifetimeSeconds: 900\n';
    const problem = problemsOf(lowered).find((p) => p.key === 'issuers.0.maxTokenLifetimeSeconds');
    expect(problem?.line).toBe(lineOf(lowered, 'maxTokenLifetimeSeconds: 3600'));
    expect(problem?.message).toMatch(/at most 900/);
    const raised = CLEAN + 'limits:\n  productionMaxTokenLifetimeSeconds: 7200\n';
    expect(problemsOf(raised).map((p) => p.key)).toEqual(['limits.productionMaxTokenLifetimeSeconds']);
  });

  it('refuses an issuer listed for another environment only', () => {
    const text = CLEAN.replace('environments: [production, staging]', 'environments: [staging]');
    const problem = problemsOf(text).find((p) => p.key === 'issuers.0.environments');
    expect(problem?.line).toBe(lineOf(text, 'environments: [staging]'));
    expect(problem?.message).toMatch(/listed for staging, not for production/);
  });

  it('validate prints every refusal as file:line: key and exits 1', async () => {
    const file = join(dir, 'dirty.yaml');
    writeFileSync(file, DIRTY);
    const { code, stderr } = await cli('validate', '--config', file);
    expect(code, stderr).toBe(1);
    for (const [key, needle] of DIRTY_PROBLEMS) expect(stderr).toContain(`${file}:${dirtyLine(key, needle)}: ${key}: `);
  }, CLI_TIMEOUT);
});

describe('staging and development loosen only what they say', () => {
  const laptop = CLEAN.replace('https://idp.example.com/jwks', 'http://127.0.0.1:9400/jwks').replace('issuer: https://idp.example.com', 'issuer: http://127.0.0.1:9400');

  it('staging accepts a loopback issuer, long lifetimes and informational headers, but still requires at+jwt', () => {
    const staging = laptop.replace('environment: production', 'environment: staging').replace('    maxTokenLifetimeSeconds: 3600\n', '').replace('    issuers: [corp]', '    issuers: [corp]\n    identity: { informationalHeaders: true }');
    expect(loadConfigText(staging).environment).toBe('staging');
    const untyped = staging.replace('    typ: at+jwt\n', '');
    expect(problemsOf(untyped).map((p) => [p.key, p.line])).toEqual([['issuers.0.typ', lineOf(untyped, '- name: corp')]]);
  });

  it('staging refuses an issuer also listed as development', () => {
    const text = laptop.replace('environment: production', 'environment: staging').replace('environments: [production, staging]', 'environments: [staging, development]');
    const problem = problemsOf(text).find((p) => p.key === 'issuers.0.environments');
    expect(problem?.message).toMatch(/also listed as development: its tokens must not be accepted in staging/);
  });

  it('development accepts untyped tokens from a loopback issuer, yet not an issuer listed for production only', () => {
    const dev = laptop.replace('environment: production', 'environment: development').replace('    typ: at+jwt\n', '').replace('environments: [production, staging]', 'environments: [development]');
    expect(loadConfigText(dev).environment).toBe('development');
    const prodIssuer = dev.replace('environments: [development]', 'environments: [production]');
    expect(problemsOf(prodIssuer).map((p) => p.key)).toEqual(['issuers.0.environments']);
  });

  it('issuer environments need a top-level environment; without one no profile applies', () => {
    const none = laptop.replace('environment: production\n', '');
    const problem = problemsOf(none).find((p) => p.key === 'issuers.0.environments');
    expect(problem?.message).toMatch(/needs a top-level environment/);
    expect(loadConfigText(none.replace('    environments: [production, staging]\n', '')).environment).toBeUndefined();
  });

  it('the demo config is a development profile and validates (test/e2e/demo-rehearse starts it)', () => {
    const demo = loadConfig(join(REPO, 'config/demo.yaml'));
    expect(demo.environment).toBe('development');
    expect(demo.warnings.filter((w) => w.key.startsWith('issuers') || w.key.startsWith('authorizationServer'))).toEqual([]);
  });
});
