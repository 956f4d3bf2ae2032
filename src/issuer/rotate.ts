import { KeyRing } from './key-ring.ts';
import { validateIssuerOptions } from './options.ts';
import type { IssuerOptions } from './types.ts';

/**
 * `mcp-warden keys rotate --issuer`: rotates the embedded issuer's keys in its keys file. A running
 * issuer re-reads the file: the new key is published now, signs after the grace period, and the old
 * one is dropped one token lifetime later.
 */
export async function rotateIssuerKeys(options: IssuerOptions): Promise<void> {
  const settings = validateIssuerOptions(options);
  const ring = await KeyRing.forIssuer(settings);
  await ring.rotate();
  await ring.flush();
}
