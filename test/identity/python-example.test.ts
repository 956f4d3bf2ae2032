import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importJWK, SignJWT, type JWK } from 'jose';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, PUBLIC_URL, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';

// The README's PyJWT example, run as written against a real gateway's assertion (issue 24 §6).
const MARKER = '<!-- readme-test: python-verify';

function readmeSnippet(): string {
  const readme = readFileSync('README.md', 'utf8');
  const at = readme.indexOf(MARKER);
  const block = /```python\n([\s\S]*?)```/.exec(readme.slice(at));
  if (at < 0 || block === null) throw new Error('README has no python-verify block');
  return block[1] as string;
}

/** The first python3 (PATH, then the system's) that has PyJWT and cryptography, or why none does. */
function findPython(): { readonly python: string } | { readonly skip: string } {
  for (const python of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(python, ['-c', 'import jwt, cryptography'], { timeout: 10_000 });
    if (r.status === 0) return { python };
  }
  return { skip: 'no python3 with PyJWT and cryptography (apt-get install python3-jwt python3-cryptography)' };
}

const found = findPython();
if ('skip' in found) process.stderr.write(`python-example.test.ts skipped: ${found.skip}\n`);

let idp: TestIdp;
let upstream: TestUpstream;
let gw: StartedGateway;
beforeAll(async () => {
  if ('skip' in found) return;
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url));
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await idp?.close();
});

/** Runs the README block with its three settings pointed at this gateway; prints the outcome per assertion. */
async function runSnippet(python: string, settings: { jwksUrl: string; issuer: string; audience: string }, assertions: readonly string[]): Promise<string[]> {
  const snippet = readmeSnippet()
    .replace(/^JWKS_URL = .*$/m, `JWKS_URL = ${JSON.stringify(settings.jwksUrl)}`)
    .replace(/^ISSUER = .*$/m, `ISSUER = ${JSON.stringify(settings.issuer)}`)
    .replace(/^AUDIENCE = .*$/m, `AUDIENCE = ${JSON.stringify(settings.audience)}`);
  const harness = `${snippet}
import json, sys
for a in json.load(sys.stdin):
    try:
        c = verify_identity(a)
        print("ok " + c["sub"] + " " + c["scope"])
    except jwt.InvalidTokenError as e:
        print("refused " + type(e).__name__)
`;
  const file = join(gw.configFile, '..', 'verify.py');
  writeFileSync(file, harness);
  // Asynchronous: the gateway serving the JWKS runs in this process.
  const child = spawn(python, [file], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000 });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  child.stdin.end(JSON.stringify(assertions));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`python exited ${code}: ${err}`);
  return out.trim().split('\n');
}

describe.skipIf('skip' in found)('the README PyJWT example verifies a real gateway assertion', () => {
  it('accepts the assertion the upstream received, and refuses a wrong audience, a wrong typ and an altered signature', async () => {
    const python = (found as { python: string }).python;
    const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${await idp.token(AUD)}` }, body: RPC });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    const assertion = upstream.last()?.headers.get('x-mcp-identity')?.[0] as string;
    // Same key, same claims, but typ "JWT": must be refused though the signature is the gateway's.
    const keyFile = (gw.gateway.config.identity.signingKeyFile);
    const jwk = JSON.parse(readFileSync(keyFile, 'utf8')) as JWK;
    const claims = JSON.parse(Buffer.from(assertion.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>;
    const wrongTyp = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: String(jwk.kid), typ: 'JWT' }).sign(await importJWK(jwk, 'EdDSA'));
    const [h, p, sig] = assertion.split('.') as [string, string, string];
    const altered = `${h}.${p}.${sig.startsWith('A') ? 'B' : 'A'}${sig.slice(1)}`;
    const settings = { jwksUrl: `${gw.url}/.well-known/jwks.json`, issuer: PUBLIC_URL, audience: AUD };
    expect(await runSnippet(python, settings, [assertion, wrongTyp, altered])).toEqual(['ok alice mcp:tools', 'refused InvalidTokenError', 'refused InvalidSignatureError']);
    expect(await runSnippet(python, { ...settings, audience: `${AUD}/other` }, [assertion])).toEqual(['refused InvalidAudienceError']);
    expect(await runSnippet(python, { ...settings, issuer: 'https://another.test' }, [assertion])).toEqual(['refused InvalidIssuerError']);
  }, 60_000);
});
