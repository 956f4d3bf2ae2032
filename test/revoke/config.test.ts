import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfigText } from '../../src/config/compile.ts';
import { createGateway } from '../../src/gateway.ts';
import { createLogger } from '../../src/observe/log.ts';
import { twoUpstreamConfig } from '../helpers/gateway.ts';
import { configProblems } from '../helpers/config.ts';

// The revocation section refuses what would make revocation silently not work.

const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-revoke-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(transmitter: Record<string, unknown>, issuer: Record<string, unknown> = {}): string {
  const base = twoUpstreamConfig({ issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', ...issuer }, 'http://127.0.0.1:9', { root: { revocation: { transmitters: [transmitter] } } });
  return stringify({ ...base, identity: { signingKeyFile: join(dir, 'gw.jwk') } });
}

describe('revocation config', () => {
  it('refuses a transmitter for an unknown issuer, with neither poll nor push, or with an http poll URL off loopback', () => {
    expect(configProblems(config({ issuer: 'nobody', push: { secretFile: 'x' } }))).toEqual([expect.stringMatching(/^revocation\.transmitters\.0\.issuer: names no configured issuer/)]);
    expect(configProblems(config({ issuer: 'idp' }))).toEqual([expect.stringMatching(/^revocation\.transmitters\.0: needs poll, push, or both/)]);
    expect(configProblems(config({ issuer: 'idp', poll: { url: 'http://idp.example.com/ssf/poll' } }))).toEqual([expect.stringMatching(/^revocation\.transmitters\.0\.poll\.url: must be an https URL/)]);
  });

  it('refuses failClosed on a push-only stream (silence cannot be told from an outage)', () => {
    expect(configProblems(config({ issuer: 'idp', push: { secretFile: 'x' }, failClosed: true }))).toEqual([expect.stringMatching(/failClosed: needs poll delivery/)]);
  });

  it('refuses an unknown key in the section', () => {
    expect(configProblems(config({ issuer: 'idp', push: { secretFile: 'x' }, skipVerify: true })).join('\n')).toMatch(/skipVerify/);
  });

  it('defaults the receiver audience to publicUrl and accepts a valid poll transmitter', () => {
    const c = loadConfigText(config({ issuer: 'idp', poll: { url: 'https://idp.example.com/ssf/poll' } }));
    expect(c.revocation.audience).toBe('https://gw.test');
    expect(c.revocation.transmitters[0]).toMatchObject({ staleAfterMs: 60_000, failClosed: false, poll: { intervalMs: 1_000 } });
  });

  it('will not start with a push secret shorter than 32 characters or a secret file it cannot read', async () => {
    writeFileSync(join(dir, 'short.secret'), 'too-short\n');
    const short = loadConfigText(config({ issuer: 'idp', push: { secretFile: join(dir, 'short.secret') } }));
    await expect(createGateway(short, { logger: createLogger({ level: 'silent' }) })).rejects.toThrow(/revocation\.transmitters\.0\.push\.secretFile: the secret must be at least 32 characters/);
    const missing = loadConfigText(config({ issuer: 'idp', push: { secretFile: join(dir, 'absent.secret') } }));
    await expect(createGateway(missing, { logger: createLogger({ level: 'silent' }) })).rejects.toThrow(/cannot read the secret file \(ENOENT\)/);
  });
});
