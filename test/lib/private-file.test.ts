import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { privateModeProblem, writePrivateFile } from '../../src/lib/private-file.ts';
import { generateGatewayJwk, loadGatewayKeys } from '../../src/identity/keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-private-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the one permission rule for private key files', () => {
  it.each([
    [0o600, true], [0o400, true], [0o440, true], [0o640, true],
    [0o660, false], [0o620, false], [0o604, false], [0o644, false], [0o666, false], [0o601, false],
  ])('mode %o is %s', (mode, accepted) => {
    expect(privateModeProblem(0o100000 | mode) === undefined).toBe(accepted);
  });

  it('lets the gateway read a Secret mounted 0440 with fsGroup, and refuses a group-writable one', async () => {
    const file = join(dir, 'gateway.jwk');
    writeFileSync(file, JSON.stringify(await generateGatewayJwk()));
    chmodSync(file, 0o440);
    await expect(loadGatewayKeys(file, 'config.yaml')).resolves.toMatchObject({ signer: { alg: 'EdDSA' } });
    chmodSync(file, 0o660);
    await expect(loadGatewayKeys(file, 'config.yaml')).rejects.toThrow(/writable by its group or accessible to other users \(mode 660\)/);
  });

  it('writes 0600 whole, and an exclusive write never replaces an existing file', async () => {
    const file = join(dir, 'written.json');
    await writePrivateFile(file, 'first\n', { exclusive: true });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await expect(writePrivateFile(file, 'second\n', { exclusive: true })).rejects.toThrow(/EEXIST/);
    expect(readFileSync(file, 'utf8')).toBe('first\n');
    await writePrivateFile(file, 'replaced\n');
    expect(readFileSync(file, 'utf8')).toBe('replaced\n');
  });

  it('two replicas starting at once on an absent key file both start, with the one key the first wrote', async () => {
    const file = join(dir, 'shared', 'gateway.jwk');
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadGatewayKeys(file, 'config.yaml')));
    expect(new Set(keys.map((k) => k.signer.kid)).size).toBe(1);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
