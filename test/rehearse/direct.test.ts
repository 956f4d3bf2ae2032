import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { loadConfigText, type Config } from '../../src/config/compile.ts';
import { generateKeyFile } from '../../src/identity/keyfile.ts';
import { loadGatewayKeys } from '../../src/identity/keys.ts';
import { createIdentityVerifier } from '../../src/identity/upstream.ts';
import { directUpstream } from '../../src/rehearse/direct.ts';
import { rehearse } from '../../src/rehearse/run.ts';
import type { DrillResult } from '../../src/rehearse/report.ts';

type Check = (req: IncomingMessage) => Promise<boolean>;

/** A tiny MCP endpoint: answers initialize with a result when `check` admits the request, else 401. */
async function mcpUpstream(check: Check): Promise<{ url: string; hits: number; server: Server }> {
  const state = { url: '', hits: 0, server: undefined as unknown as Server };
  state.server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.hits++;
    req.resume();
    req.on('end', () => {
      void check(req).then((ok) => {
        const body = ok
          ? { jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 't', version: '1' } } }
          : { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'identity assertion rejected' } };
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
  });
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}/mcp`;
  return state;
}

const PUBLIC = 'http://127.0.0.1:1';
let dir: string;
let keyFile: string;
let otherKeyFile: string;
let jwks: JSONWebKeySet;
let config: Config;
const servers: Server[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-direct-'));
  keyFile = join(dir, 'gateway.jwk');
  otherKeyFile = join(dir, 'other-gateway.jwk');
  await generateKeyFile(keyFile, 'EdDSA');
  await generateKeyFile(otherKeyFile, 'EdDSA');
  jwks = (await loadGatewayKeys(keyFile, keyFile)).publicJwks as JSONWebKeySet;
  // Port 1 on loopback: nothing listens, and the drill must not try (it only calls --direct-url targets).
  config = loadConfigText(`
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
publicUrl: ${PUBLIC}
issuers:
  - { name: idp, issuer: ${PUBLIC}/idp, jwksUri: ${PUBLIC}/idp/jwks, algorithms: [ES256] }
upstreams:
  - { name: files, path: /files/mcp, target: http://127.0.0.1:2/mcp, issuers: [idp], scopes: [mcp:files] }
  - { name: mail, path: /mail/mcp, target: http://127.0.0.1:3/mcp, issuers: [idp], scopes: [mcp:mail] }
identity: { signingKeyFile: ${keyFile} }
`, join(dir, 'config.yaml'));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); })));
  rmSync(dir, { recursive: true, force: true });
});

async function drill(check: Check, gatewayKeyFile = keyFile): Promise<{ results: DrillResult[]; hits: number }> {
  const up = await mcpUpstream(check);
  servers.push(up.server);
  const results = await rehearse(config, { drills: [directUpstream], directUrls: new Map([['files', up.url]]), gatewayKeyFile, outage: false });
  return { results, hits: up.hits };
}

const line = (results: readonly DrillResult[], what: string): DrillResult | undefined => results.find((r) => r.drill === `direct files ${what}`);
const FILES_AUD = `${PUBLIC}/files/mcp`;

describe('rehearse: upstreams proven to check the assertion (#19 point 3)', () => {
  it('an upstream using mcp-warden/upstream refuses all four, and accepts the valid control: PASS', async () => {
    const verify = createIdentityVerifier({ keys: jwks, audience: FILES_AUD, issuer: PUBLIC });
    const { results, hits } = await drill(async (req) => (await verify(req)).ok);
    expect(results.map((r) => [r.drill, r.status])).toEqual([
      ['direct files no assertion', 'pass'],
      ['direct files valid assertion', 'pass'],
      ['direct files other audience', 'pass'],
      ['direct files expired assertion', 'pass'],
      ['direct files foreign key', 'pass'],
    ]);
    expect(line(results, 'other audience')?.detail).toBe('refused: 401');
    expect(results.every((r) => r.id === 'direct-upstream' && r.controls.includes('OWASP Agentic A-02'))).toBe(true);
    // five probes, nothing else (no session was opened, so no DELETE)
    expect(hits).toBe(5);
  });

  it('an upstream that checks signatures but not audience fails the other-audience drill, by name', async () => {
    const keys = createLocalJWKSet(jwks);
    const { results } = await drill(async (req) => {
      const jwt = req.headers['x-mcp-identity'];
      if (typeof jwt !== 'string') return false;
      return jwtVerify(jwt, keys).then(() => true, () => false);
    });
    expect(line(results, 'other audience')).toMatchObject({ status: 'fail', detail: `200 with a result: accepted an assertion for ${PUBLIC}/mail/mcp: validates signatures but not audience` });
    for (const what of ['no assertion', 'valid assertion', 'expired assertion', 'foreign key']) expect(line(results, what)?.status).toBe('pass');
  });

  it('an upstream that checks nothing fails all four', async () => {
    const { results } = await drill(async () => true);
    expect(line(results, 'valid assertion')?.status).toBe('pass');
    for (const what of ['no assertion', 'other audience', 'expired assertion', 'foreign key']) expect(line(results, what)?.status).toBe('fail');
    expect(line(results, 'no assertion')?.detail).toMatch(/^200 with a result: accepted a call without any assertion/);
    expect(line(results, 'other audience')?.detail).toMatch(/checks neither audience nor signatures$/);
    expect(line(results, 'foreign key')?.detail).toMatch(/signed by a key the gateway does not publish$/);
  });

  it('an upstream that refuses even a valid assertion (here: another gateway\'s key file) proves nothing: the control fails', async () => {
    const verify = createIdentityVerifier({ keys: jwks, audience: FILES_AUD, issuer: PUBLIC });
    const { results } = await drill(async (req) => (await verify(req)).ok, otherKeyFile);
    expect(line(results, 'valid assertion')).toMatchObject({ status: 'fail' });
    expect(line(results, 'valid assertion')?.detail).toMatch(/^401: a valid assertion must be accepted/);
    expect(line(results, 'other audience')).toBeUndefined();
  });

  it('an answer that is neither a refusal nor a result (500) is inconclusive, not a refusal', async () => {
    const up = createServer((_req, res) => void res.writeHead(500).end('boom'));
    servers.push(up);
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(up.address() as AddressInfo).port}/mcp`;
    const results = await rehearse(config, { drills: [directUpstream], directUrls: new Map([['files', url]]), gatewayKeyFile: keyFile });
    expect(line(results, 'no assertion')).toMatchObject({ status: 'fail' });
    expect(line(results, 'no assertion')?.detail).toMatch(/^inconclusive: 500/);
    expect(line(results, 'valid assertion')?.status).toBe('fail');
  });

  it('without --gateway-key only the no-assertion drill runs; the others say what they need', async () => {
    const { results } = await drill(async () => false, join(dir, 'absent.jwk'));
    expect(line(results, 'no assertion')?.status).toBe('pass');
    expect(line(results, 'valid assertion')).toMatchObject({ status: 'skip', detail: `--gateway-key ${join(dir, 'absent.jwk')}: no such file` });
    const none = await rehearse(config, { drills: [directUpstream] });
    expect(none).toMatchObject([{ drill: 'direct upstream', status: 'skip' }]);
  });
});
