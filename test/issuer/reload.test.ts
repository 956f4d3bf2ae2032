import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.ts';
import type { IssuerOptions, RunningIssuer } from '../../src/issuer/index.ts';
import { freePorts } from '../helpers/ports.ts';
import { startTestDemo } from './demo-stack.ts';
import { FILES, RESOURCES, WORKLOAD, clientCredentials, codeFlow, postForm, register, startLoopbackIssuer, tempDir } from './support.ts';

const REDIRECT_URI = 'http://127.0.0.1:53682/callback';
const LATER = 'http://127.0.0.1:8080/later/mcp';
const WORKLOAD_CLIENT = { ...WORKLOAD, grant_types: ['client_credentials'], scope: 'mcp:files mcp:notes' };

describe('reloading a running issuer', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let issuer: RunningIssuer;
  let base: IssuerOptions;

  beforeAll(async () => {
    dir = await tempDir();
    base = { host: '127.0.0.1', port: 0, keysFile: `${dir.dir}/keys.json`, resources: RESOURCES, clients: [WORKLOAD_CLIENT] };
    issuer = await startLoopbackIssuer(base.keysFile, base);
  });
  afterAll(async () => {
    await issuer.close();
    await dir.remove();
  });

  it("serves a new upstream's audience after a reload; registrations, refresh tokens and issued tokens survive", async () => {
    const reg = await register(`${issuer.url}/reg`, { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none', scope: 'mcp:files' });
    const clientId = reg.body['client_id'] as string;
    const before = await codeFlow(issuer.url, { clientId, redirectUri: REDIRECT_URI, resource: FILES, scope: 'mcp:files' });
    expect((await clientCredentials(issuer, { resource: LATER, scope: 'mcp:later' })).body['error']).toBe('invalid_target');

    await issuer.reload({ ...base, resources: [...RESOURCES, { audience: LATER, scopes: ['mcp:later'] }], clients: [{ ...WORKLOAD_CLIENT, scope: 'mcp:files mcp:notes mcp:later' }] });

    const later = await clientCredentials(issuer, { resource: LATER, scope: 'mcp:later' });
    expect(later.status).toBe(200);
    const refreshed = await postForm(`${issuer.url}/token`, { grant_type: 'refresh_token', refresh_token: before.body['refresh_token'] as string, client_id: clientId });
    expect(refreshed.status).toBe(200);
    // Same keys: the access token from before the reload still verifies.
    await expect(jwtVerify(before.body['access_token'] as string, createRemoteJWKSet(new URL(issuer.jwksUri)), { issuer: issuer.url, audience: FILES })).resolves.toBeDefined();
  });

  it('keeps serving the running configuration when the new one is invalid', async () => {
    const error = await issuer.reload({ ...base, resources: [{ audience: 'not a url', scopes: ['x'] }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((await clientCredentials(issuer, { resource: FILES, scope: 'mcp:files' })).status).toBe(200);
  });

  it('refuses to reload a change that needs a restart, naming the key', async () => {
    const error = await issuer.reload({ ...base, accessTokenTtlSeconds: 600 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/accessTokenTtlSeconds: changed, but takes effect only on a restart/);
    const token = await clientCredentials(issuer, { resource: FILES, scope: 'mcp:files' });
    expect(token.body['expires_in']).toBe(300);
  });

  it('stops serving an audience the new configuration no longer names', async () => {
    // A static client may not keep a scope no resource declares any more.
    const stale = await issuer.reload({ ...base, resources: [RESOURCES[0]] }).catch((e: unknown) => e);
    expect((stale as ConfigError).message).toMatch(/clients\[0\]\.scope: "mcp:notes" is not a scope of any resource/);
    await issuer.reload({ ...base, resources: [RESOURCES[0]], clients: [{ ...WORKLOAD_CLIENT, scope: 'mcp:files' }] });
    expect((await clientCredentials(issuer, { resource: RESOURCES[1].audience, scope: 'mcp:notes' })).body['error']).toBe('invalid_target');
    await issuer.reload(base);
  });
});

function yaml(issuerPort: number, keysFile: string, extraUpstream: string): string {
  return `
publicUrl: http://127.0.0.1:8080
issuers: [{ name: local, issuer: "http://127.0.0.1:${issuerPort}", algorithms: [ES256] }]
upstreams:
  - { name: files, path: /files/mcp, target: "http://127.0.0.1:3001/mcp", issuers: [local], scopes: [mcp:files] }
${extraUpstream}
identity: { signingKeyFile: ./gateway.jwk }
authorizationServer:
  issuer: "http://127.0.0.1:${issuerPort}"
  listen: { host: 127.0.0.1, port: ${issuerPort} }
  keysFile: ${keysFile}
`;
}

async function waitFor<T>(attempt: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await attempt().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('mcp-warden issuer reloads on SIGHUP and on a config change', () => {
  it('answers JSON after a SIGHUP, picks up a new upstream from the file, and keeps the old config on an invalid one', async () => {
    const dir = await tempDir();
    const [port] = (await freePorts(1)) as [number];
    const file = `${dir.dir}/warden.yaml`;
    writeFileSync(file, yaml(port, `${dir.dir}/keys.json`, ''));
    const child = spawn(process.execPath, ['bin/mcp-warden.js', 'issuer', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(async () => ((await fetch(`${url}/jwks`)).ok ? true : undefined), 'the issuer');
      const reg = await register(`${url}/reg`, { grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'mcp:files' });
      const client = { client_id: reg.body['client_id'] as string, client_secret: reg.body['client_secret'] as string };
      const issuerRef = { url } as RunningIssuer;

      child.kill('SIGHUP');
      await waitFor(async () => (stderr.includes('reloaded') ? true : undefined), 'the SIGHUP reload');
      const afterHup = await clientCredentials(issuerRef, { resource: 'http://127.0.0.1:8080/files/mcp', scope: 'mcp:files' }, client);
      expect(afterHup.status).toBe(200);
      expect(typeof afterHup.body['access_token']).toBe('string');

      writeFileSync(file, yaml(port, `${dir.dir}/keys.json`, '  - { name: later, path: /later/mcp, target: "http://127.0.0.1:3002/mcp", issuers: [local], scopes: [mcp:later] }'));
      await waitFor(async () => (stderr.split('reloaded').length > 2 ? true : undefined), 'the file-change reload');
      // A client registered before the reload keeps working; a new one may ask for the new audience.
      expect((await clientCredentials(issuerRef, { resource: 'http://127.0.0.1:8080/files/mcp', scope: 'mcp:files' }, client)).status).toBe(200);
      const reg2 = await register(`${url}/reg`, { grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'mcp:later' });
      const laterClient = { client_id: reg2.body['client_id'] as string, client_secret: reg2.body['client_secret'] as string };
      const later = await clientCredentials(issuerRef, { resource: LATER, scope: 'mcp:later' }, laterClient);
      expect(later.status).toBe(200);
      expect(later.body['scope']).toBe('mcp:later');

      writeFileSync(file, 'publicUrl: [not, valid\n');
      await waitFor(async () => (stderr.includes('not reloaded') ? true : undefined), 'the refused reload');
      expect((await clientCredentials(issuerRef, { resource: LATER, scope: 'mcp:later' }, laterClient)).status).toBe(200);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      await dir.remove();
    }
  }, 30_000);
});

describe('the demo on SIGHUP', () => {
  it('reloads the gateway and the issuer together, and a registered client still gets tokens', async () => {
    const demo = await startTestDemo();
    try {
      const issuerUrl = demo.stack.issuer.url;
      const audience = demo.stack.config.upstreams[0]?.audience as string;
      const reg = await register(`${issuerUrl}/reg`, { grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'mcp:demo' });
      const client = { client_id: reg.body['client_id'] as string, client_secret: reg.body['client_secret'] as string };
      expect(await demo.stack.reload()).toEqual([]);
      const token = await clientCredentials(demo.stack.issuer, { resource: audience, scope: 'mcp:demo' }, client);
      expect(token.status).toBe(200);
    } finally {
      await demo.close();
    }
  });
});
