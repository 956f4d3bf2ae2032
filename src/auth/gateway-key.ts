import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Config } from '../config/compile.ts';
import { ConfigError } from '../config/errors.ts';

// The gateway's own signing keys must never be trusted as an issuer's: a token the gateway signed (an
// identity assertion, or anything signed with a leaked copy of its key file) would then verify as that
// issuer's access token. Compared by RFC 7638 thumbprint, so a copied key under another kid is caught.

/** The issuer's key set publishes one of the gateway's own public keys. */
export class GatewayKeyPublished extends Error {
  readonly issuer: string;
  readonly kids: readonly string[];
  constructor(issuer: string, kids: readonly string[]) {
    super(`the key set of issuer "${issuer}" publishes the gateway's own signing key (kid ${kids.join(', ')})`);
    this.name = 'GatewayKeyPublished';
    this.issuer = issuer;
    this.kids = kids;
  }
}

export interface GatewayKeysFound {
  /** Entries of the set that must never verify: the gateway's keys, and keys that cannot be vetted. */
  readonly dropped: ReadonlySet<unknown>;
  /** kids of the gateway's keys found (for the log and the start-up error). */
  readonly kids: readonly string[];
}

/**
 * Every entry of a fetched JWK Set is vetted, whatever its kid, use or alg, so a conflict is reported
 * even where the algorithm allow-list would also have kept the key out.
 */
export async function gatewayKeysIn(body: unknown, gatewayThumbprints: ReadonlySet<string> | undefined): Promise<GatewayKeysFound> {
  const dropped = new Set<unknown>();
  const kids: string[] = [];
  if (gatewayThumbprints === undefined || gatewayThumbprints.size === 0) return { dropped, kids };
  for (const key of (body as { keys: unknown[] }).keys) {
    if (typeof key !== 'object' || key === null) continue;
    let thumbprint: string;
    try {
      thumbprint = await calculateJwkThumbprint(key as JWK);
    } catch {
      dropped.add(key); // without its required members a key cannot be vetted (nor imported)
      continue;
    }
    if (!gatewayThumbprints.has(thumbprint)) continue;
    dropped.add(key);
    const kid = (key as JWK).kid;
    kids.push(typeof kid === 'string' ? kid.replace(/[^\x21-\x7e]/g, '?').slice(0, 64) : '(none)');
  }
  return { dropped, kids };
}

/**
 * Starts new key caches together; when one set publishes the gateway's own key, stops them all and
 * refuses the configuration (start fails; a reload keeps the running one).
 */
export async function startKeys(keys: Iterable<{ start(): Promise<void>; stop(): void }>, config: Config): Promise<void> {
  const list = [...keys];
  const results = await Promise.allSettled(list.map((k) => k.start()));
  const problems = results.flatMap((r) => (r.status === 'rejected' && r.reason instanceof GatewayKeyPublished ? [r.reason] : []));
  const other = results.find((r) => r.status === 'rejected' && !(r.reason instanceof GatewayKeyPublished));
  if (problems.length === 0 && other === undefined) return;
  for (const k of list) k.stop();
  if (other !== undefined) throw (other as PromiseRejectedResult).reason;
  throw new ConfigError(problems.map((p) => ({
    file: config.file,
    line: undefined,
    key: `issuers.${config.issuers.findIndex((i) => i.name === p.issuer)}`,
    message: `${p.message}: a token the gateway signed would verify as this issuer's; give the gateway another identity.signingKeyFile, or remove that key from the issuer`,
  })));
}
