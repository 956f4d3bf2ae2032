import type { Config, IssuerConfig } from '../config/compile.ts';
import { ConfigError } from '../config/errors.ts';
import type { IssuerKeys } from './keys.ts';

// Reload and key caches (issue 17 §6): a reload never loses usable keys. The cache follows the key
// source (issuer, jwksUri, the gateway keys it refuses), not the rest of the issuer block.

interface Previous {
  readonly config: Config;
  readonly issuerKeys: ReadonlyMap<string, IssuerKeys>;
}

/**
 * The key cache for `issuer` in the state a reload builds: the previous one itself when the issuer is
 * unchanged; a new one that adopts the previous one's keys when only settings other than the key source
 * changed; else a new, empty one.
 */
export async function carryKeys(issuer: IssuerConfig, previous: Previous | undefined, gatewayThumbprints: ReadonlySet<string>, create: () => IssuerKeys): Promise<IssuerKeys> {
  const old = previous?.issuerKeys.get(issuer.name);
  const before = previous?.config.issuers.find((i) => i.name === issuer.name);
  if (old === undefined || before === undefined || !old.refuses(gatewayThumbprints)) return create();
  if (before.issuer !== issuer.issuer || before.jwksUri !== issuer.jwksUri) return create();
  if (JSON.stringify(before) === JSON.stringify(issuer)) return old;
  const adopted = create();
  await adopted.adopt(old);
  return adopted;
}

/**
 * Refuses a reload that would swap a usable key cache for one that is not usable (a new key source that
 * does not answer yet, or whose set has no key for the new algorithms): the running configuration keeps
 * serving, and the reload can be tried again once the new source answers. The new caches are stopped.
 */
export function refuseKeyLoss(current: ReadonlyMap<string, IssuerKeys>, next: ReadonlyMap<string, IssuerKeys>, config: Config): void {
  const lost = [...next.values()].filter((k) => current.get(k.name)?.usable() === true && !k.usable());
  if (lost.length === 0) return;
  for (const k of next.values()) if (current.get(k.name) !== k) k.stop();
  throw new ConfigError(lost.map((k) => ({
    file: config.file,
    line: undefined,
    key: `issuers.${config.issuers.findIndex((i) => i.name === k.name)}`,
    message: `the new key source has no usable signing key yet (${k.status().lastError ?? 'not fetched'}) while the running one has: not swapped`,
  })));
}
