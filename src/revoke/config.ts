import type { IssuerConfig } from '../config/compile.ts';
import type { RawConfig } from '../config/schema.ts';
import { isSecureOrLoopback, parseUrl } from '../config/urls.ts';

export interface PollConfig {
  readonly url: URL;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly maxEvents: number;
  readonly authorizationFile: string | undefined;
}

export interface TransmitterConfig {
  /** The issuer whose tokens these events revoke; SETs carry its iss and are signed with its keys. */
  readonly issuer: IssuerConfig;
  readonly poll: PollConfig | undefined;
  readonly push: { readonly secretFile: string } | undefined;
  readonly staleAfterMs: number;
  readonly failClosed: boolean;
}

export interface RevocationConfig {
  /** RFC 8417 §2.2 aud: the value every SET must name this receiver by. */
  readonly audience: string;
  readonly maxEntries: number;
  readonly maxSeenSets: number;
  readonly transmitters: readonly TransmitterConfig[];
}

type Problem = (at: readonly (string | number)[], message: string) => void;

/** The revocation section → its frozen runtime form; problems are reported with their key path. */
export function compileRevocation(raw: RawConfig['revocation'], issuers: ReadonlyMap<string, IssuerConfig>, publicUrl: string, problem: Problem): RevocationConfig {
  const seen = new Set<string>();
  const transmitters = raw.transmitters.flatMap((t, i): TransmitterConfig[] => {
    const at = (...rest: (string | number)[]): (string | number)[] => ['transmitters', i, ...rest];
    const issuer = issuers.get(t.issuer);
    if (issuer === undefined) return problem(at('issuer'), `names no configured issuer (${t.issuer})`), [];
    // SETs are verified with the issuer's JWKS: an introspection-only issuer has none.
    if (issuer.introspection !== undefined) return problem(at('issuer'), 'an introspection issuer has no key set to verify SETs with'), [];
    if (seen.has(t.issuer)) return problem(at('issuer'), 'one transmitter per issuer'), [];
    seen.add(t.issuer);
    if (t.poll === undefined && t.push === undefined) return problem(at(), 'needs poll, push, or both'), [];
    const url = t.poll === undefined ? undefined : parseUrl(t.poll.url);
    if (t.poll !== undefined && (url === undefined || !isSecureOrLoopback(url))) return problem(at('poll', 'url'), 'must be an https URL (http only on loopback)'), [];
    if (t.failClosed && t.poll === undefined) return problem(at('failClosed'), 'needs poll delivery: a push stream cannot tell silence from an outage'), [];
    const poll = t.poll === undefined || url === undefined ? undefined : Object.freeze({ ...t.poll, url, authorizationFile: t.poll.authorizationFile });
    return [Object.freeze({ issuer, poll, push: t.push === undefined ? undefined : Object.freeze({ ...t.push }), staleAfterMs: t.staleAfterSeconds * 1000, failClosed: t.failClosed })];
  });
  return Object.freeze({ audience: raw.audience ?? publicUrl, maxEntries: raw.maxEntries, maxSeenSets: raw.maxSeenSets, transmitters: Object.freeze(transmitters) });
}

