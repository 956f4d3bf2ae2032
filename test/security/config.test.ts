import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { loadConfigText } from '../../src/config/compile.ts';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, PUBLIC_URL, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { RPC } from '../helpers/rpc.ts';

// Unsafe configuration never starts: each case is checked through loadConfigText (the problem, its key
// and line) and through the real CLI (`mcp-warden validate` exits 1 naming file:line: key).

const REPO = resolve(import.meta.dirname, '../..');
// Each CLI run loads the TypeScript sources afresh (about 2 s, more on a loaded machine).
const CLI_TIMEOUT = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-config-sec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The base config as YAML text; `issuer` and `upstream` add lines inside the first issuer / upstream. */
function yaml(parts: { root?: string; issuer?: string; issuers?: string; upstream?: string; upstreams?: string; publicUrl?: string | null } = {}): string {
  return [
    ...(parts.publicUrl === null ? [] : [`publicUrl: ${parts.publicUrl ?? PUBLIC_URL}`]),
    'issuers:',
    '  - name: idp',
    ...(parts.issuer ?? '    issuer: https://idp.test\n    jwksUri: https://idp.test/jwks\n    algorithms: [RS256]').split('\n'),
    ...(parts.issuers === undefined ? [] : parts.issuers.split('\n')),
    'upstreams:',
    '  - name: mcp',
    '    path: /mcp',
    '    target: http://127.0.0.1:3001/mcp',
    ...(parts.upstream ?? '    issuers: [idp]\n    scopes: [mcp:tools]').split('\n'),
    ...(parts.upstreams === undefined ? [] : parts.upstreams.split('\n')),
    'identity:',
    '  signingKeyFile: ./gateway.jwk',
    ...(parts.root === undefined ? [] : parts.root.split('\n')),
    '',
  ].join('\n');
}

/** 1-based line of the first line containing `needle` (the line a problem must point at). */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  expect(i, `"${needle}" is in the config`).toBeGreaterThanOrEqual(0);
  return i + 1;
}

function problemsOf(text: string, env: Record<string, string> = {}): readonly ConfigProblem[] {
  try {
    loadConfigText(text, 'config.yaml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('the config was accepted');
}

/** Asserts the config is refused with a problem at `key` on the line containing `needle`. */
function expectRefused(text: string, key: string, needle: string, message?: RegExp): void {
  const problems = problemsOf(text);
  const problem = problems.find((p) => p.key === key);
  expect(problem, `a problem at ${key}; got ${JSON.stringify(problems)}`).toBeDefined();
  expect(problem?.line).toBe(lineOf(text, needle));
  if (message !== undefined) expect(problem?.message).toMatch(message);
}

let fileCount = 0;
function writeConfig(text: string): string {
  const file = join(dir, `config-${++fileCount}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** The real CLI, with this Node (v24, which runs the TypeScript sources). */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['bin/mcp-warden.js', ...args], { cwd: REPO, timeout: 30_000, env: { ...process.env, NODE_NO_WARNINGS: '1' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      done({ code, stdout, stderr });
    });
  });
}

/** `mcp-warden validate` exits 1 and prints `error: <file>:<line>: <key>: …` for each expected problem. */
async function expectValidateRefuses(text: string, expected: readonly (readonly [key: string, needle: string])[]): Promise<void> {
  const file = writeConfig(text);
  const { code, stderr, stdout } = await cli('validate', '--config', file);
  expect(code, stdout + stderr).toBe(1);
  for (const [key, needle] of expected) expect(stderr).toContain(`error: ${file}:${lineOf(text, needle)}: ${key}: `);
}

describe('unsafe configuration refuses to start', () => {
  it('SC-161 an upstream never runs without its audience: "" and a missing publicUrl refuse; an omitted one is publicUrl + path', async () => {
    expectRefused(yaml({ upstream: '    issuers: [idp]\n    audience: ""' }), 'upstreams.0.audience', 'audience: ""');
    expectRefused(yaml({ upstream: '    issuers: [idp]\n    audience: "   "' }), 'upstreams.0.audience', 'audience: "   "', /absolute URI/);
    expectRefused(yaml({ upstream: '    issuers: [idp]\n    audience: mcp' }), 'upstreams.0.audience', 'audience: mcp', /absolute URI/);
    expectRefused(yaml({ upstream: '    issuers: [idp]\n    audience: https://gw.test/mcp#frag' }), 'upstreams.0.audience', 'audience: https', /fragment/);
    // An audience from an environment variable that is empty is still an empty audience.
    const fromEnv = yaml({ upstream: '    issuers: [idp]\n    audience: ${MCP_AUDIENCE}' });
    expect(problemsOf(fromEnv, { MCP_AUDIENCE: '' }).map((p) => p.key)).toContain('upstreams.0.audience');
    expect(problemsOf(fromEnv, {}).some((p) => p.line === lineOf(fromEnv, 'MCP_AUDIENCE'))).toBe(true);
    // Without publicUrl there is nothing to derive an audience from.
    expectRefused(yaml({ publicUrl: null }), 'publicUrl', 'issuers:');

    // Omitted: derived from publicUrl + path, so jose is always given an audience to check.
    const derived = loadConfigText(yaml());
    expect(derived.upstreams[0]?.audience).toBe(AUD);

    const refused = yaml({ publicUrl: null, upstream: '    issuers: [idp]\n    audience: ""' });
    await expectValidateRefuses(refused, [['publicUrl', 'issuers:'], ['upstreams.0.audience', 'audience: ""']]);
    // Positive control for the CLI itself.
    const ok = await cli('validate', '--config', writeConfig(yaml()));
    expect(ok.code, ok.stderr).toBe(0);
  }, CLI_TIMEOUT);

  it('SC-162 refuses an issuer without its exact iss, and an upstream without issuers', async () => {
    expectRefused(yaml({ issuer: '    jwksUri: https://idp.test/jwks\n    algorithms: [RS256]' }), 'issuers.0.issuer', '- name: idp');
    expectRefused(yaml({ issuer: '    issuer: ""\n    jwksUri: https://idp.test/jwks\n    algorithms: [RS256]' }), 'issuers.0.issuer', 'issuer: ""');
    expectRefused(yaml({ upstream: '    scopes: [mcp:tools]' }), 'upstreams.0.issuers', '- name: mcp');
    expectRefused(yaml({ upstream: '    issuers: []' }), 'upstreams.0.issuers', 'issuers: []');
    expectRefused(yaml({ upstream: '    issuers: [nobody]' }), 'upstreams.0.issuers.0', 'issuers: [nobody]', /unknown issuer/);
    const text = yaml({ issuer: '    jwksUri: https://idp.test/jwks\n    algorithms: [RS256]', upstream: '    issuers: []' });
    await expectValidateRefuses(text, [['issuers.0.issuer', '- name: idp'], ['upstreams.0.issuers', 'issuers: []']]);
  }, CLI_TIMEOUT);

  it('SC-163 refuses HMAC issuers whatever the secret: HS* is never allowed, and there is no key for a shared secret', async () => {
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      expectRefused(yaml({ issuer: `    issuer: https://idp.test\n    jwksUri: https://idp.test/jwks\n    algorithms: [${alg}]` }), 'issuers.0.algorithms.0', `algorithms: [${alg}]`, /not allowed/);
    }
    expectRefused(yaml({ issuer: '    issuer: https://idp.test\n    algorithms: [RS256]\n    secret: secret' }), 'issuers.0.secret', 'secret: secret');
    await expectValidateRefuses(
      yaml({ issuer: '    issuer: https://idp.test\n    jwksUri: https://idp.test/jwks\n    algorithms: [HS256]', issuers: '  - name: b\n    issuer: https://b.test\n    algorithms: [HS512]' }),
      [['issuers.0.algorithms.0', 'algorithms: [HS256]'], ['issuers.1.algorithms.0', 'algorithms: [HS512]']],
    );
  }, CLI_TIMEOUT);

  it('SC-164 refuses wildcards: issuer "*", audience "*", allowedOrigins ["*"], clients ["*"], tools "*"', async () => {
    expectRefused(yaml({ issuer: '    issuer: "*"\n    algorithms: [RS256]' }), 'issuers.0.issuer', 'issuer: "*"', /wildcard/);
    expectRefused(yaml({ upstream: '    issuers: [idp]\n    audience: "*"' }), 'upstreams.0.audience', 'audience: "*"', /wildcard/);
    expectRefused(yaml({ upstream: '    issuers: [idp]\n    audience: https://*.gw.test/mcp' }), 'upstreams.0.audience', 'audience: https', /wildcard/);
    expectRefused(yaml({ upstream: '    issuers: [idp]\n    allowedOrigins: ["*"]' }), 'upstreams.0.allowedOrigins.0', 'allowedOrigins', /wildcard/);
    expectRefused(yaml({ upstream: '    issuers: [idp]\n    allowedOrigins: ["https://*.evil.test"]' }), 'upstreams.0.allowedOrigins.0', 'allowedOrigins', /wildcard/);
    // Origin "null" (sandboxed frames, file://) is no origin to trust either.
    expectRefused(yaml({ upstream: '    issuers: [idp]\n    allowedOrigins: ["null"]' }), 'upstreams.0.allowedOrigins.0', 'allowedOrigins', /origin/);
    expectRefused(yaml({ upstream: '    issuers: [idp]\n    clients: ["*"]' }), 'upstreams.0.clients.0', 'clients', /wildcard/);
    expectRefused(yaml({ upstream: '    issuers: [idp]\n    default: deny\n    tools: "*"' }), 'upstreams.0.tools', 'tools: "*"');
    await expectValidateRefuses(
      yaml({ issuer: '    issuer: "*"\n    algorithms: [RS256]', upstream: '    issuers: [idp]\n    audience: "*"\n    allowedOrigins: ["*"]\n    clients: ["*"]' }),
      [['issuers.0.issuer', 'issuer: "*"'], ['upstreams.0.audience', 'audience: "*"'], ['upstreams.0.allowedOrigins.0', 'allowedOrigins'], ['upstreams.0.clients.0', 'clients']],
    );
  }, CLI_TIMEOUT);

  it('SC-165 refuses algorithms with none, HS mixed into RS, a wrong case, an empty list, or none given at all', async () => {
    const issuer = (algs: string): string => `    issuer: https://idp.test\n    jwksUri: https://idp.test/jwks\n    ${algs}`;
    expectRefused(yaml({ issuer: issuer('algorithms: [none]') }), 'issuers.0.algorithms.0', 'algorithms: [none]', /not allowed/);
    expectRefused(yaml({ issuer: issuer('algorithms: [RS256, HS256]') }), 'issuers.0.algorithms.1', 'algorithms: [RS256, HS256]', /not allowed/);
    expectRefused(yaml({ issuer: issuer('algorithms: [RS256, None]') }), 'issuers.0.algorithms.1', 'algorithms: [RS256, None]', /not allowed/);
    expectRefused(yaml({ issuer: issuer('algorithms: [rs256]') }), 'issuers.0.algorithms.0', 'algorithms: [rs256]', /not allowed/);
    expectRefused(yaml({ issuer: issuer('algorithms: []') }), 'issuers.0.algorithms', 'algorithms: []');
    expectRefused(yaml({ issuer: '    issuer: https://idp.test\n    jwksUri: https://idp.test/jwks' }), 'issuers.0.algorithms', '- name: idp', /required/);
    // A second algorithms key cannot quietly replace the first (YAML duplicate keys are an error).
    expectRefused(yaml({ issuer: issuer('algorithms: [RS256]\n    algorithms: [none]') }), '', 'algorithms: [none]', /unique/);
    await expectValidateRefuses(
      yaml({ issuer: issuer('algorithms: [none]'), issuers: '  - name: b\n    issuer: https://b.test\n    algorithms: [RS256, HS256]\n  - name: c\n    issuer: https://c.test' }),
      [['issuers.0.algorithms.0', 'algorithms: [none]'], ['issuers.1.algorithms.1', 'algorithms: [RS256, HS256]'], ['issuers.2.algorithms', '- name: c']],
    );
  }, CLI_TIMEOUT);

  it('SC-166 refuses plain-http key sets, issuers and introspection endpoints off loopback (look-alikes included)', async () => {
    const withUri = (jwksUri: string): string => yaml({ issuer: `    issuer: https://idp.test\n    jwksUri: ${jwksUri}\n    algorithms: [RS256]` });
    for (const uri of ['http://idp.test/jwks', 'HTTP://idp.test/jwks', 'http://127.0.0.1.nip.io/jwks', 'http://localhost.evil.test/jwks', 'http://0.0.0.0/jwks', 'file:///etc/passwd', 'https://user:pass@idp.test/jwks']) {
      expectRefused(withUri(uri), 'issuers.0.jwksUri', `jwksUri: ${uri}`);
    }
    expectRefused(yaml({ issuer: '    issuer: http://idp.test\n    algorithms: [RS256]' }), 'issuers.0.issuer', 'issuer: http://idp.test', /https/);
    expectRefused(
      yaml({ issuer: '    issuer: https://idp.test\n    introspection:\n      endpoint: http://idp.test/introspect\n      clientId: gw\n      clientSecret: s' }),
      'issuers.0.introspection.endpoint', 'endpoint: http://idp.test', /https/,
    );
    // Positive control: loopback is the one relaxation (STYLE rule 14).
    for (const uri of ['http://127.0.0.1:9400/jwks', 'http://localhost:9400/jwks', 'http://[::1]:9400/jwks']) expect(() => loadConfigText(withUri(uri))).not.toThrow();
    await expectValidateRefuses(
      yaml({ issuer: '    issuer: http://idp.test\n    jwksUri: http://idp.test/jwks\n    algorithms: [RS256]' }),
      [['issuers.0.issuer', 'issuer: http://idp.test'], ['issuers.0.jwksUri', 'jwksUri: http://idp.test/jwks']],
    );
  }, CLI_TIMEOUT);

  it('SC-167 refuses clock skew over 300 s, an unbounded or huge JWKS cache age, and a zero fetch timeout', async () => {
    const issuer = (extra: string): string => `    issuer: https://idp.test\n    jwksUri: https://idp.test/jwks\n    algorithms: [RS256]\n${extra}`;
    expectRefused(yaml({ issuer: issuer('    clockSkewSeconds: 301') }), 'issuers.0.clockSkewSeconds', 'clockSkewSeconds');
    expectRefused(yaml({ issuer: issuer('    clockSkewSeconds: 86400') }), 'issuers.0.clockSkewSeconds', 'clockSkewSeconds');
    for (const [key, value] of [
      ['cacheMaxAgeSeconds', '.inf'], ['cacheMaxAgeSeconds', '1e12'], ['cacheMaxAgeSeconds', '.nan'], ['timeoutMs', '0'], ['timeoutMs', '-1'],
      ['cooldownSeconds', '0'], ['staleIfErrorSeconds', '.inf'],
    ] as const) {
      expectRefused(yaml({ issuer: issuer(`    jwks:\n      ${key}: ${value}`) }), `issuers.0.jwks.${key}`, `${key}: ${value}`);
    }
    // The boundary itself is accepted (with a warning past two minutes).
    expect(loadConfigText(yaml({ issuer: issuer('    clockSkewSeconds: 300') })).warnings.map((w) => w.key)).toContain('issuers.0.clockSkewSeconds');
    await expectValidateRefuses(
      yaml({ issuer: issuer('    clockSkewSeconds: 301\n    jwks:\n      cacheMaxAgeSeconds: .inf\n      timeoutMs: 0') }),
      [['issuers.0.clockSkewSeconds', 'clockSkewSeconds'], ['issuers.0.jwks.cacheMaxAgeSeconds', 'cacheMaxAgeSeconds'], ['issuers.0.jwks.timeoutMs', 'timeoutMs']],
    );
  }, CLI_TIMEOUT);
});

describe('token claim settings', () => {
  const issuer = (extra: string): string => `    issuer: https://idp.test\n    jwksUri: https://idp.test/jwks\n    algorithms: [RS256]\n${extra}`;

  it('maxTokenLifetimeSeconds defaults to 24 h, may be lowered, warns above 24 h and never exceeds 7 days', () => {
    expect(loadConfigText(yaml()).issuers[0]?.maxTokenLifetimeSeconds).toBe(86_400);
    const lowered = loadConfigText(yaml({ issuer: issuer('    maxTokenLifetimeSeconds: 300') }));
    expect(lowered.issuers[0]?.maxTokenLifetimeSeconds).toBe(300);
    expect(lowered.warnings.map((w) => w.key)).not.toContain('issuers.0.maxTokenLifetimeSeconds');
    const raised = loadConfigText(yaml({ issuer: issuer('    maxTokenLifetimeSeconds: 604800') }));
    expect(raised.warnings.find((w) => w.key === 'issuers.0.maxTokenLifetimeSeconds')?.line).toBe(lineOf(yaml({ issuer: issuer('    maxTokenLifetimeSeconds: 604800') }), 'maxTokenLifetimeSeconds'));
    for (const value of ['604801', '.inf', '0', '-1', '1.5', '"3600"']) {
      expectRefused(yaml({ issuer: issuer(`    maxTokenLifetimeSeconds: ${value}`) }), 'issuers.0.maxTokenLifetimeSeconds', 'maxTokenLifetimeSeconds');
    }
  });

  it('scopeClaim is scope (default) or scp, never both or another claim; scp is for JWT issuers only', () => {
    expect(loadConfigText(yaml()).issuers[0]?.scopeClaim).toBe('scope');
    expect(loadConfigText(yaml({ issuer: issuer('    scopeClaim: scp') })).issuers[0]?.scopeClaim).toBe('scp');
    for (const value of ['both', '[scope, scp]', 'roles', 'SCP']) {
      expectRefused(yaml({ issuer: issuer(`    scopeClaim: ${value}`) }), 'issuers.0.scopeClaim', 'scopeClaim');
    }
    const introspecting = '    issuer: https://idp.test\n    introspection:\n      endpoint: https://idp.test/introspect\n      clientId: gw\n      clientSecret: s\n    scopeClaim: scp';
    expectRefused(yaml({ issuer: introspecting }), 'issuers.0.scopeClaim', 'scopeClaim', /introspection/);
  });

  it('validate prints the lifetime warning and exits 0', async () => {
    const file = writeConfig(yaml({ issuer: issuer('    maxTokenLifetimeSeconds: 172800') }));
    const { code, stderr } = await cli('validate', '--config', file);
    expect(code, stderr).toBe(0);
    expect(stderr).toContain(`warning: ${file}:${lineOf(readFileSync(file, 'utf8'), 'maxTokenLifetimeSeconds')}: issuers.0.maxTokenLifetimeSeconds: `);
  }, CLI_TIMEOUT);
});

describe('the gateway signing key (SC-168)', () => {
  const keys = join(dir, 'keys');
  mkdirSync(keys, { mode: 0o700 });
  const keyFile = (name: string, content: string, mode = 0o600): string => {
    const file = join(keys, name);
    writeFileSync(file, content);
    chmodSync(file, mode);
    return file;
  };
  const ed25519 = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A', alg: 'EdDSA' };
  const gatewayWith = (signingKeyFile: string): Promise<StartedGateway> =>
    startGateway(twoUpstreamConfig({ issuer: 'http://127.0.0.1:9', jwksUri: 'http://127.0.0.1:9/jwks' }, 'http://127.0.0.1:9', { root: { identity: { signingKeyFile } } }));

  async function expectStartRefused(signingKeyFile: string, message: RegExp): Promise<void> {
    let error: unknown;
    try {
      const g = await gatewayWith(signingKeyFile);
      await g.close();
    } catch (err) {
      error = err;
    }
    expect(error, `${signingKeyFile}: ${String(error)}`).toBeInstanceOf(ConfigError);
    const problem = (error as ConfigError).problems[0];
    expect(problem?.key).toBe('identity.signingKeyFile');
    expect(problem?.file).toMatch(/config\.yaml$/);
    expect(problem?.message).toMatch(message);
  }

  it('SC-168 refuses to start with a malformed, empty, world-readable, public-only, symmetric or unreadable key file', async () => {
    mkdirSync(join(keys, 'a-directory.jwk'), { mode: 0o700 });
    writeFileSync(join(keys, 'a-file'), '');
    const cases: [string, RegExp][] = [
      [keyFile('not-json.jwk', 'not json'), /is not JSON/],
      [keyFile('empty-file.jwk', ''), /is not JSON/],
      [keyFile('no-keys.jwk', JSON.stringify({ keys: [] })), /holds no key/],
      [keyFile('world-readable.jwk', JSON.stringify(ed25519), 0o644), /accessible to other users/],
      [keyFile('group-readable.jwk', JSON.stringify(ed25519), 0o604), /accessible to other users/],
      [keyFile('public-only.jwk', JSON.stringify({ ...ed25519, d: undefined })), /not a private EdDSA or ES256 JWK/],
      [keyFile('hmac.jwk', JSON.stringify({ kty: 'oct', k: 'c2VjcmV0', alg: 'HS256' })), /not a private EdDSA or ES256 JWK/],
      [keyFile('rsa.jwk', JSON.stringify({ kty: 'RSA', n: 'AQAB', e: 'AQAB', d: 'AQAB', alg: 'RS256' })), /not a private EdDSA or ES256 JWK/],
      [keyFile('garbage-d.jwk', JSON.stringify({ ...ed25519, x: 'AAAA', d: 'AAAA' })), /cannot be imported/],
      [join(keys, 'a-directory.jwk'), /cannot read/],
      [join(keys, 'a-file', 'gateway.jwk'), /cannot read/],
    ];
    for (const [file, message] of cases) await expectStartRefused(file, message);
  });

  it('SC-168 refuses to start, with a ConfigError, when the key file is absent and cannot be created (dangling symlink)', async () => {
    const link = join(keys, 'dangling.jwk');
    symlinkSync(join(keys, 'missing-secret-mount', 'gateway.jwk'), link);
    await expectStartRefused(link, /./);
  });

  it('SC-168 an absent key file is generated owner-only (0600) and signs every assertion (never an unsigned one)', async () => {
    const idp = await TestIdp.start();
    const upstream = await TestUpstream.start();
    const file = join(keys, 'fresh', 'gateway.jwk');
    const gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, { root: { identity: { signingKeyFile: file } } }));
    try {
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const kid = (JSON.parse(readFileSync(file, 'utf8')) as { kid: string }).kid;
      const jwks = (await (await fetch(`${gw.url}/.well-known/jwks.json`)).json()) as Parameters<typeof createLocalJWKSet>[0];
      expect(jwks.keys.map((k) => k.kid)).toEqual([kid]);
      expect(JSON.stringify(jwks)).not.toContain('"d"');
      const res = await fetch(`${gw.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${await idp.token(AUD)}`, 'content-type': 'application/json' }, body: RPC });
      expect(res.status).toBe(200);
      const assertion = upstream.last()?.headers.get('x-mcp-identity') ?? [];
      expect(assertion).toHaveLength(1);
      const { protectedHeader } = await jwtVerify(assertion[0] as string, createLocalJWKSet(jwks), { issuer: PUBLIC_URL, audience: AUD });
      expect(protectedHeader.kid).toBe(kid);
    } finally {
      await gw.close();
      await upstream.close();
      await idp.close();
    }
  });

  it('SC-168 serve and validate both name file:line: identity.signingKeyFile for a key file serve cannot use', async () => {
    for (const [name, content, mode] of [['cli-malformed.jwk', 'not json', 0o600], ['cli-world-readable.jwk', JSON.stringify(ed25519), 0o644]] as const) {
      const key = keyFile(name, content, mode);
      const text = yaml().replace('signingKeyFile: ./gateway.jwk', `signingKeyFile: ${key}`);
      const file = writeConfig(text.replace('publicUrl:', 'listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\npublicUrl:'));
      const where = `${file}:${lineOf(readFileSync(file, 'utf8'), 'signingKeyFile')}: identity.signingKeyFile: `;
      const [serve, validate] = await Promise.all([cli('serve', '--config', file), cli('validate', '--config', file)]);
      expect.soft(serve.code, serve.stderr).toBe(1);
      expect.soft(serve.stderr, 'serve names file:line: key').toContain(`error: ${where}`);
      expect.soft(validate.code, `validate: ${validate.stdout}`).toBe(1);
      expect.soft(validate.stderr, 'validate names file:line: key').toContain(`error: ${where}`);
    }
  }, CLI_TIMEOUT);
});

describe('routes that are not configured (SC-170)', () => {
  const fx = useGatewayFixture();

  it('SC-170 answers an unconfigured route with 404 (with or without a token), and a route without a policy block does not load', async () => {
    const good = await fx.idp.token(AUD);
    for (const path of ['/unconfigured', '/unconfigured/mcp', '/mcpx', '/other', '/.well-known/oauth-protected-resource/unconfigured', '/.well-known/openid-configuration']) {
      for (const authorization of [undefined, `Bearer ${good}`]) {
        fx.upstream.reset();
        const res = await fetch(fx.gw.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) }, body: RPC });
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
        expect(res.headers.get('www-authenticate')).toBeNull();
        expect(await res.json()).toEqual({ error: 'not_found', error_description: 'not found', reason: 'route_unknown' });
        expect(fx.upstream.bytes).toBe(0);
      }
    }
    // Every upstream must name its issuers: there is no route without a policy.
    expectRefused(yaml({ upstream: '    scopes: [mcp:tools]' }), 'upstreams.0.issuers', '- name: mcp');
  });
});
