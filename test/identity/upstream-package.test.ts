import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, PUBLIC_URL, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';

const run = promisify(execFile);
const PKG = 'packages/upstream-verifier';

interface PackageJson {
  readonly name: string;
  readonly dependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly bundleDependencies?: unknown;
  readonly exports: Record<string, { readonly default: string }>;
}
const pkg = JSON.parse(readFileSync(`${PKG}/package.json`, 'utf8')) as PackageJson;
const root = JSON.parse(readFileSync('package.json', 'utf8')) as PackageJson;
const tsconfig = JSON.parse(readFileSync(`${PKG}/tsconfig.json`, 'utf8')) as { files: string[] };

/** Every module specifier a source file imports or re-exports, with whether the import is type-only. */
function importsOf(file: string): { readonly spec: string; readonly typeOnly: boolean }[] {
  const text = readFileSync(file, 'utf8');
  const found: { spec: string; typeOnly: boolean }[] = [];
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+'([^']+)'/gm)) found.push({ spec: m[3] as string, typeOnly: m[2] !== undefined });
  for (const m of text.matchAll(/^\s*import\s+'([^']+)'/gm)) found.push({ spec: m[1] as string, typeOnly: false });
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) found.push({ spec: m[1] as string, typeOnly: false });
  return found;
}

/** The package's source and everything it reaches through relative imports. */
function importGraph(entry: string): Map<string, { readonly spec: string; readonly typeOnly: boolean }[]> {
  const graph = new Map<string, { readonly spec: string; readonly typeOnly: boolean }[]>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop() as string;
    if (graph.has(file)) continue;
    const imports = importsOf(file);
    graph.set(file, imports);
    for (const i of imports) if (i.spec.startsWith('.')) todo.push(resolve(dirname(file), i.spec));
  }
  return graph;
}

let idp: TestIdp;
let upstream: TestUpstream;
let gw: StartedGateway;
beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url));
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await idp?.close();
});

describe('the upstream verifier as its own package (packages/upstream-verifier)', () => {
  it('depends on jose only, in the same range as the gateway', () => {
    expect(pkg.dependencies).toEqual({ jose: root.dependencies?.['jose'] });
    expect([pkg.peerDependencies, pkg.optionalDependencies, pkg.bundleDependencies]).toEqual([undefined, undefined, undefined]);
  });

  it('is built from the file the gateway exports as mcp-warden/upstream (one source, no copy), whose imports reach only jose and type-only Node built-ins', () => {
    expect(tsconfig.files.map((f) => resolve(PKG, f))).toEqual([resolve('src/identity/upstream.ts')]);
    expect(root.exports['./upstream']?.default).toBe('./dist/identity/upstream.js');
    const graph = importGraph(resolve('src/identity/upstream.ts'));
    const bare = [...graph.values()].flat().filter((i) => !i.spec.startsWith('.'));
    const builtins = new Set(builtinModules.map((m) => `node:${m}`));
    expect(bare.filter((i) => i.spec !== 'jose' && !(builtins.has(i.spec) && i.typeOnly))).toEqual([]);
    expect(bare.some((i) => i.spec === 'jose')).toBe(true);
  });

  it('built with its own tsconfig, plain Node runs it and verifies an assertion from a real gateway; the emitted code imports jose and nothing else', async () => {
    await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', `${PKG}/tsconfig.json`], { timeout: 60_000 });
    const built = resolve(PKG, pkg.exports['.']?.default as string);
    expect([...readFileSync(built, 'utf8').matchAll(/^\s*(?:import|export)\b[^'";]*?from\s+'([^']+)'/gm)].map((m) => m[1])).toEqual(['jose']);
    const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${await idp.token(AUD)}` }, body: RPC });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    const assertion = upstream.last()?.headers.get('x-mcp-identity')?.[0] as string;
    const script = `import { createIdentityVerifier } from ${JSON.stringify(built)};
const verify = createIdentityVerifier({ jwksUrl: process.env.JWKS, audience: process.env.AUD, issuer: process.env.ISS });
const ok = await verify({ headers: { 'x-mcp-identity': process.env.ASSERTION } });
const wrong = await createIdentityVerifier({ jwksUrl: process.env.JWKS, audience: process.env.AUD + '/other' })({ headers: { 'x-mcp-identity': process.env.ASSERTION } });
console.log(JSON.stringify({ ok: ok.ok, sub: ok.identity?.sub, wrong }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000, env: { ...process.env, JWKS: `${gw.url}/.well-known/jwks.json`, AUD, ISS: PUBLIC_URL, ASSERTION: assertion } });
    expect(JSON.parse(stdout)).toEqual({ ok: true, sub: 'alice', wrong: { ok: false, error: 'audience_mismatch' } });
  }, 90_000);
});
