import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningIssuer } from '../../src/issuer/index.ts';
import { clientCredentials, FILES, startLoopbackIssuer, startupRefusal, tempDir } from './support.ts';

async function jwks(issuer: RunningIssuer): Promise<JSONWebKeySet> {
  return (await (await fetch(issuer.jwksUri)).json()) as JSONWebKeySet;
}

async function kids(issuer: RunningIssuer): Promise<string[]> {
  return (await jwks(issuer)).keys.map((k) => k.kid ?? '').sort();
}

async function token(issuer: RunningIssuer): Promise<{ readonly value: string; readonly kid: string }> {
  const { status, body } = await clientCredentials(issuer, { resource: FILES, scope: 'mcp:files' });
  expect(status).toBe(200);
  const value = body['access_token'] as string;
  return { value, kid: decodeProtectedHeader(value).kid ?? '' };
}

describe('signing key rotation on an injected clock', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let now = Date.UTC(2030, 0, 1);
  const clock = { now: () => now, rotationGraceSeconds: 60, accessTokenTtlSeconds: 300 };
  let issuer: RunningIssuer;
  let file: string;

  beforeAll(async () => {
    dir = await tempDir();
    file = `${dir.dir}/keys/issuer.json`;
    issuer = await startLoopbackIssuer(file, clock);
  });
  afterAll(async () => {
    await issuer.close();
    await dir.remove();
  });

  it('creates the keys file readable by its owner only', async () => {
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await kids(issuer)).toHaveLength(1);
  });

  it('publishes first, signs after the grace period, and drops the old key after the token lifetime', async () => {
    const [oldKid] = await kids(issuer);
    const before = await token(issuer);
    expect(before.kid).toBe(oldKid);

    await issuer.rotateKeys();
    const both = await kids(issuer);
    expect(both).toHaveLength(2);
    expect(both).toContain(oldKid);
    const newKid = both.find((kid) => kid !== oldKid) ?? '';
    // Published, not yet signing: verifiers get to cache it first.
    expect((await token(issuer)).kid).toBe(oldKid);

    now += 59_999;
    expect((await token(issuer)).kid).toBe(oldKid);
    now += 1;
    const after = await token(issuer);
    expect(after.kid).toBe(newKid);
    // Tokens from either key verify against the published set during the overlap.
    const set = createLocalJWKSet(await jwks(issuer));
    await expect(jwtVerify(before.value, set, { issuer: issuer.url, audience: FILES })).resolves.toBeDefined();
    await expect(jwtVerify(after.value, set, { issuer: issuer.url, audience: FILES })).resolves.toBeDefined();

    // The last token signed by the old key expires 300 s after the new key took over.
    now += 299_999;
    expect(await kids(issuer)).toHaveLength(2);
    now += 1;
    expect(await kids(issuer)).toEqual([newKid]);
    expect((await token(issuer)).kid).toBe(newKid);
  });

  it('keeps the schedule across a restart, mid-rotation', async () => {
    const [current] = await kids(issuer);
    await issuer.rotateKeys();
    await issuer.close();
    issuer = await startLoopbackIssuer(file, clock);

    const published = await kids(issuer);
    expect(published).toHaveLength(2);
    expect((await token(issuer)).kid).toBe(current);
    now += 60_000;
    const next = published.find((kid) => kid !== current);
    expect((await token(issuer)).kid).toBe(next);
    now += 300_000;
    expect(await kids(issuer)).toEqual([next]);

    // The retired private key leaves the file too.
    await issuer.close();
    const onDisk = JSON.parse(await readFile(file, 'utf8')) as { keys: { kid: string }[] };
    expect(onDisk.keys.map((k) => k.kid)).toEqual([next]);
    issuer = await startLoopbackIssuer(file, clock);
    expect(await kids(issuer)).toEqual([next]);
  });
});

describe('signing key rotation on the real clock', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let issuer: RunningIssuer;

  beforeAll(async () => {
    dir = await tempDir();
    issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`, { rotationGraceSeconds: 1, accessTokenTtlSeconds: 1 });
  });
  afterAll(async () => {
    await issuer.close();
    await dir.remove();
  });

  it('switches keys after the grace period and retires the old one a token lifetime later', async () => {
    const [oldKid] = await kids(issuer);
    const started = Date.now();
    await issuer.rotateKeys();
    expect(await kids(issuer)).toHaveLength(2);
    expect((await token(issuer)).kid).toBe(oldKid);
    expect(Date.now() - started).toBeLessThan(1000);

    await sleep(1200 - (Date.now() - started));
    expect((await token(issuer)).kid).not.toBe(oldKid);
    expect(await kids(issuer)).toHaveLength(2);

    await sleep(2300 - (Date.now() - started));
    expect(await kids(issuer)).not.toContain(oldKid);
    expect(await kids(issuer)).toHaveLength(1);
  });
});

describe('keys file protection', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    await dir.remove();
  });

  it('refuses a keys file that others can read', async () => {
    const file = `${dir.dir}/keys.json`;
    const issuer = await startLoopbackIssuer(file);
    await issuer.close();
    await chmod(file, 0o644);
    expect(await startupRefusal(startLoopbackIssuer(file))).toMatch(/mode 644.*chmod 600/);
  });

  it('refuses a keys file made for another algorithm', async () => {
    const file = `${dir.dir}/es256.json`;
    const issuer = await startLoopbackIssuer(file);
    await issuer.close();
    await expect(startLoopbackIssuer(file, { signingAlg: 'EdDSA' })).rejects.toThrow(/holds ES256 keys but signingAlg is EdDSA/);
  });

  it('refuses a keys file that is not one', async () => {
    const file = `${dir.dir}/garbage.json`;
    await writeFile(file, '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}', { mode: 0o600 });
    await expect(startLoopbackIssuer(file)).rejects.toThrow(/is not a keys file/);
  });
});
