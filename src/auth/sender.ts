import type { IncomingMessage } from 'node:http';
import type { Config, UpstreamConfig } from '../config/compile.ts';
import { rawHeader } from '../lib/raw-header.ts';
import { deny, type Denial } from '../reasons.ts';
import type { BearerToken } from './bearer.ts';
import { createDpopNonces, type DpopNonces } from './dpop-nonce.ts';
import { normalisedHtu, verifyProof } from './dpop-proof.ts';
import type { DpopReplayCache } from './dpop-replay.ts';
import type { Principal } from './principal.ts';

// RFC 7515 §7.1 compact JWS, bounded: a proof carries a public key and a few short claims.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_PROOF_BYTES = 8_192;

/** How the caller proves possession of its token's key (RFC 9449 DPoP), once the token is verified. */
export interface SenderCheck {
  /** Before any key is used: the scheme this upstream accepts and the DPoP header's syntax; the proof text. */
  readProof(req: IncomingMessage, credential: BearerToken, upstream: UpstreamConfig): string | undefined | Denial;
  /**
   * After the token is verified (cached or not): the token's binding, proven on every request.
   * Synchronous undefined for an unbound Bearer token, so the warm Bearer path awaits nothing more.
   */
  check(req: IncomingMessage, credential: BearerToken, proof: string | undefined, principal: Principal, upstream: UpstreamConfig): Denial | Promise<Denial | undefined> | undefined;
}

export interface SenderDeps {
  readonly now: () => number;
  readonly replay: DpopReplayCache;
  /** The gateway's shared secret (derived from its key file) the stateless nonces are keyed with. */
  readonly nonceSecret: Buffer;
}

/**
 * RFC 9449 at the resource server (§7.1, §7.2, §4.3). A token with `cnf` is always held to its binding,
 * whatever the upstream's senderConstraint; a plain Bearer token on an upstream without one costs one
 * property read. The verified-token cache never skips this: the proof is judged on every request.
 */
export function createSenderCheck(config: Config, deps: SenderDeps): SenderCheck {
  const { dpop } = config;
  const algorithms: ReadonlySet<string> = new Set(dpop.algorithms);
  const nonces: DpopNonces | undefined = dpop.nonceRotationSeconds === undefined ? undefined : createDpopNonces(deps.nonceSecret, dpop.nonceRotationSeconds);
  const base = config.publicUrl.href.replace(/\/$/, '');
  return {
    readProof(req, credential, upstream) {
      if (credential.scheme === 'bearer') {
        // §7.2: where only DPoP-bound tokens are accepted, Bearer is refused before any key is used.
        return upstream.senderConstraint === 'dpop' ? deny('dpop_required') : undefined;
      }
      const { count, value } = rawHeader(req, 'dpop');
      // §4.3 checks 1-2: exactly one DPoP header holding one compact JWS.
      if (count !== 1 || value === undefined || value.length > MAX_PROOF_BYTES || !COMPACT_JWS.test(value)) return deny('dpop_invalid');
      return value;
    },
    check(req, credential, proof, principal) {
      const cnf = principal.claims['cnf'];
      if (cnf === undefined && credential.scheme === 'bearer') return undefined; // the warm Bearer path
      const jkt = boundThumbprint(cnf);
      // A binding this gateway cannot check (x5t#S256 without mTLS, or anything else) is refused, never ignored.
      if (jkt === undefined) return deny('token_binding_mismatch');
      if (credential.scheme === 'bearer') return deny('dpop_required'); // §7.2 downgrade of a bound token
      if (proof === undefined) return deny('dpop_invalid');
      return proven(req, proof, principal, jkt);
    },
  };

  // §4.3 and §11.1 for a bound token with its proof (the cache never skips this).
  async function proven(req: IncomingMessage, proof: string, principal: Principal, jkt: string): Promise<Denial | undefined> {
    const nowMs = deps.now();
    const accepted = await verifyProof(proof, {
      method: req.method ?? '',
      htu: normalisedHtu(base + pathOf(req.url ?? '/')) ?? '', // the public URL, never Host (§4.3 check 9)
      ath: Buffer.from(principal.tokenHash, 'hex').toString('base64url'),
      jkt,
      nowMs,
      algorithms,
      maxAgeSeconds: dpop.proofMaxAgeSeconds,
      skewSeconds: dpop.clockSkewSeconds,
      nonces,
    });
    if (accepted === 'dpop_nonce_required') return { ...deny('dpop_nonce_required'), dpopNonce: (nonces as DpopNonces).current(nowMs) };
    if (typeof accepted === 'string') return deny(accepted);
    // §11.1: one use per proof, per key, while its iat is acceptable.
    const expiresAtMs = (accepted.iat + dpop.proofMaxAgeSeconds + 2 * dpop.clockSkewSeconds) * 1000;
    const seen = deps.replay.record(`${jkt} ${accepted.jti}`, expiresAtMs, nowMs);
    if (seen === 'replayed') return deny('dpop_replayed');
    if (seen === 'full') return deny('dpop_unavailable');
    return undefined;
  }
}

/** RFC 7800 cnf with the one confirmation method checked here: RFC 9449 §6.1 `jkt`, nothing else. */
function boundThumbprint(cnf: unknown): string | undefined {
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) return undefined;
  const members = Object.keys(cnf);
  const jkt = (cnf as Record<string, unknown>)['jkt'];
  return members.length === 1 && typeof jkt === 'string' && /^[A-Za-z0-9_-]{43}$/.test(jkt) ? jkt : undefined;
}

function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}
