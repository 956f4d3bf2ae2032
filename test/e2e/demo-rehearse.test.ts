import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { loadConfig } from '../../src/config/compile.ts';
import { startDemoStack, type DemoStack } from '../../src/demo/stack.ts';
import { createLogger } from '../../src/observe/log.ts';
import { rehearse } from '../../src/rehearse/run.ts';
import { exitCode } from '../../src/rehearse/report.ts';
import { asMetadata, clientCredentials, register } from '../../src/rehearse/tokens.ts';
import { demoConfig } from '../helpers/demo.ts';
import { freePorts } from '../helpers/ports.ts';

let stack: DemoStack;
let configFile: string;
const logs: string[] = [];
beforeAll(async () => {
  configFile = await demoConfig();
  stack = await startDemoStack(configFile, createLogger({ destination: new Writable({ write: (c: Buffer, _e, cb) => { logs.push(c.toString()); cb(); } }) }));
});
afterAll(async () => {
  await stack?.close();
  if (configFile !== undefined) rmSync(dirname(configFile), { recursive: true, force: true });
});

describe('the one-command demo', () => {
  it('an MCP SDK client registers with the embedded issuer, gets a token, lists and calls tools through the gateway', async () => {
    const config = stack.config;
    const demo = config.upstreams[0];
    const meta = await asMetadata(stack.issuer.url);
    expect(meta?.registration_endpoint).toBeDefined();
    const client = await register(meta?.registration_endpoint as string, ['mcp:demo'], undefined);
    if (typeof client === 'string') throw new Error(client);
    const token = await clientCredentials(meta?.token_endpoint as string, client, demo?.audience as string, ['mcp:demo']);
    const sdk = new Client({ name: 'demo-e2e', version: '1.0.0' });
    await sdk.connect(new StreamableHTTPClientTransport(new URL(demo?.audience as string), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    // admin_reset needs mcp:demo:admin: the listing hides it.
    expect((await sdk.listTools()).tools.map((t) => t.name).sort()).toEqual(['get_time', 'whoami']);
    const who = await sdk.callTool({ name: 'whoami', arguments: {} });
    const identity = JSON.parse((who.content as { text: string }[])[0]?.text ?? '{}') as { sub: string; scopes: string[]; originalIssuer: string };
    expect(identity).toMatchObject({ sub: client.clientId, scopes: ['mcp:demo'], originalIssuer: stack.issuer.url });
    await sdk.close();
  });

  it('rehearse passes every drill against the running demo (exit 0), leaving no copy of the issuer keys', async () => {
    const copies = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('mcp-warden-rehearse-'));
    const before = new Set(copies());
    const config = loadConfig(configFile);
    // Both demo endpoints, reached without the gateway, with the gateway's key file read locally.
    const directUrls = new Map(config.upstreams.map((u) => [u.name, stack.upstreamUrl + u.target.pathname]));
    const results = await rehearse(config, { directUrls, gatewayKeyFile: config.identity.signingKeyFile, stepUpTool: { upstream: 'demo', tool: 'admin_reset' } });
    // The expired-token drill copies the issuer's private keys for a sibling issuer; the copy must not outlive it.
    expect(copies().filter((n) => !before.has(n))).toEqual([]);
    const failed = results.filter((r) => r.status !== 'pass');
    expect(failed).toEqual([]);
    expect(results.map((r) => r.drill)).toEqual([
      'metadata demo', 'metadata ops', 'issuer metadata', 'registration', 'issuance', 'valid call', 'no token', 'audience mismatch',
      'tampered signature', 'unknown signing key', 'insufficient scope', 'expired token', 'expired client secret', 'refresh token replay', 'federation untrusted issuer', 'federation wrong audience',
      'federation replayed jti', 'step-up', 'key rotation', 'dpop',
      ...['demo', 'ops'].flatMap((u) => ['no assertion', 'valid assertion', 'other audience', 'expired assertion', 'foreign key'].map((what) => `direct ${u} ${what}`)),
      'rate limit', 'key-fetch outage', 'revocation kill switch',
    ]);
    // The kill switch: the demo issuer revokes a client; the gateway (polling each second) refuses its cached token and ends its stream.
    const kill = results.find((r) => r.drill === 'revocation kill switch')?.detail ?? '';
    expect(kill).toMatch(/^http:\/\/127\.0\.0\.1:\d+: refused after \d+ ms; stream: ended after \d+ ms$/);
    console.log(`demo revocation drill: ${kill}`);
    // The demo's tools/list bucket (4/s, burst 8): a burst gets 429, the 1 s wait then 200.
    expect(results.find((r) => r.drill === 'rate limit')?.detail).toMatch(/^429 with Retry-After 1 s on demo \(listings\); after the wait 200$/);
    expect(exitCode(results, true)).toBe(0);
  }, 120_000);

  it('rehearse fails, naming the drill, when the issuer metadata names another issuer', async () => {
    const config = loadConfig(configFile);
    // The same deployment, but the config expects a different issuer identifier than the AS reports.
    const wrong = { ...config, upstreams: config.upstreams.map((u) => ({ ...u, issuers: u.issuers.map((i) => ({ ...i, issuer: i.issuer + '/tenant' })) })) };
    const results = await rehearse(wrong, { outage: false });
    expect(results.find((r) => r.drill === 'issuer metadata')).toMatchObject({ status: 'fail' });
    expect(exitCode(results, false)).toBe(1);
  }, 60_000);

  it('rehearse fails the outage-free drills when the issuer (and so its JWKS) is down', async () => {
    const config = loadConfig(configFile);
    const [dead] = await freePorts(1);
    const down = { ...config, upstreams: config.upstreams.map((u) => ({ ...u, issuers: u.issuers.map((i) => ({ ...i, issuer: `http://127.0.0.1:${dead}`, jwksUri: `http://127.0.0.1:${dead}/jwks` })) })) };
    const results = await rehearse(down, { outage: false });
    expect(results.find((r) => r.drill === 'issuer metadata')).toMatchObject({ status: 'fail' });
    expect(exitCode(results, false)).toBe(1);
  }, 60_000);
});
