import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { decodeProtectedHeader } from 'jose';
import { addKey, listKeys, promoteKey, retireKey } from '../../src/identity/keyfile.ts';
import { createIdentityVerifier } from '../../src/identity/upstream.ts';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, PUBLIC_URL, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { RPC } from '../helpers/rpc.ts';

let idp: TestIdp;
let upstream: TestUpstream;
let gw: StartedGateway | undefined;
let relay: Server;
let relayUrl: string;
const keyDir = mkdtempSync(join(tmpdir(), 'mcp-warden-keys-'));
const keyFile = join(keyDir, 'gateway.jwk');

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  // The upstream reaches the gateway's JWKS at a stable address, whatever port the gateway restarts on.
  relay = createServer((_req, res) => {
    if (gw === undefined) return void res.writeHead(503).end();
    void request(`${gw.url}/.well-known/jwks.json`).then(async (r) => res.writeHead(r.statusCode, { 'content-type': 'application/json' }).end(await r.body.text()));
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}/jwks`;
});
afterAll(async () => {
  await gw?.close();
  relay.closeAllConnections();
  await new Promise<void>((r) => relay.close(() => r()));
  await upstream?.close();
  await idp?.close();
  rmSync(keyDir, { recursive: true, force: true });
});

async function restart(): Promise<void> {
  await gw?.close();
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, { root: { identity: { signingKeyFile: keyFile } } }));
}

describe('gateway key rotation', () => {
  it('keeps upstream verification working through add → promote → retire', async () => {
    const verify = createIdentityVerifier({ jwksUrl: relayUrl, audience: AUD, issuer: PUBLIC_URL, jwksCacheMaxAgeMs: 200, jwksCooldownMs: 50 });
    const token = await idp.token(AUD);
    const callAndVerify = async (): Promise<string> => {
      const res = await request(`${(gw as StartedGateway).url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: RPC });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      const assertion = upstream.last()?.headers.get('x-mcp-identity')?.[0] as string;
      const result = await verify({ headers: { 'x-mcp-identity': assertion } });
      expect(result.ok).toBe(true);
      return decodeProtectedHeader(assertion).kid as string;
    };
    await restart(); // first start generates the key file
    const [first] = listKeys(keyFile);
    expect(await callAndVerify()).toBe(first?.kid);

    const second = await addKey(keyFile, 'EdDSA');
    await restart(); // published, not signing
    expect(await callAndVerify()).toBe(first?.kid);
    const published = (await (await request(`${(gw as StartedGateway).url}/.well-known/jwks.json`)).body.json()) as { keys: { kid: string; d?: string }[] };
    expect(published.keys.map((k) => k.kid)).toEqual([first?.kid, second]);
    expect(published.keys.every((k) => k.d === undefined)).toBe(true);

    await new Promise((r) => setTimeout(r, 250)); // the upstream's key cache has turned over
    await promoteKey(keyFile, second);
    await restart();
    expect(await callAndVerify()).toBe(second);

    await retireKey(keyFile, first?.kid as string);
    await restart();
    expect(await callAndVerify()).toBe(second);
    await expect(retireKey(keyFile, second)).rejects.toThrow(/signing key/);
  });
});
