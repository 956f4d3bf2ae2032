import type { IncomingMessage } from 'node:http';
import type { Config, SenderRequirement, UpstreamConfig } from '../config/compile.ts';
import { rawHeader } from '../lib/raw-header.ts';
import { deny, type Denial } from '../reasons.ts';
import type { BearerToken } from './bearer.ts';
import { createDpopNonces, type DpopNonces } from './dpop-nonce.ts';
import { normalisedHtu, ProofKeys, verifyProof } from './dpop-proof.ts';
import type { DpopReplayCache } from './dpop-replay.ts';
import { createCertificateSource, type CertificateThumbprint } from './mtls.ts';
import type { Principal } from './principal.ts';

// RFC 7515 §7.1 compact JWS, bounded: a proof carries a public key and a few short claims.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_PROOF_BYTES = 8_192;
const SHA256_B64URL = /^[A-Za-z0-9_-]{43}$/;

/** How the caller proves possession of its token's key (RFC 9449 DPoP, RFC 8705 mTLS), once the token is verified. */
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

/** RFC 7800 cnf, with the confirmation methods checked here; `unsupported` = a member we cannot check. */
type Binding = { readonly jkt: string | undefined; readonly x5t: string | undefined } | 'unsupported';

const NOTHING_REQUIRED: SenderRequirement = Object.freeze({ dpop: false, mtls: false });

/**
 * RFC 9449 (§7.1, §7.2, §4.3) and RFC 8705 (§3) at the resource server. What a token must prove is the
 * union of its upstream's and its issuer's senderConstraint, plus whatever its own `cnf` binds it to: a
 * setting never waives a binding the token carries. A plain Bearer token where nothing is required costs
 * a map read. The verified-token cache never skips this: possession is judged on every request.
 */
export function createSenderCheck(config: Config, deps: SenderDeps): SenderCheck {
  const { dpop } = config;
  const proofs: ProofContext = {
    deps,
    dpop,
    algorithms: new Set(dpop.algorithms),
    nonces: dpop.nonceRotationSeconds === undefined ? undefined : createDpopNonces(deps.nonceSecret, dpop.nonceRotationSeconds),
    base: config.publicUrl.href.replace(/\/$/, ''),
    keys: new ProofKeys(),
  };
  // RFC 8705: the client certificate of a request, from the listener or a trusted hop.
  const certificate: CertificateThumbprint = createCertificateSource(config);
  return {
    readProof(req, credential, upstream) {
      if (credential.scheme === 'bearer') {
        // §7.2: where only DPoP-bound tokens are accepted, Bearer is refused before any key is used.
        return upstream.dpopRequired ? deny('dpop_required') : undefined;
      }
      const { count, value } = rawHeader(req, 'dpop');
      // §4.3 checks 1-2: exactly one DPoP header holding one compact JWS.
      if (count !== 1 || value === undefined || value.length > MAX_PROOF_BYTES || !COMPACT_JWS.test(value)) return deny('dpop_invalid');
      return value;
    },
    check(req, credential, proof, principal, upstream) {
      const required = upstream.senderRequired.get(principal.issuerName) ?? NOTHING_REQUIRED;
      const cnf = principal.claims['cnf'];
      // The warm Bearer path: nothing bound, nothing required.
      if (cnf === undefined && credential.scheme === 'bearer' && !required.dpop && !required.mtls) return undefined;
      const binding = bindingOf(cnf);
      // A binding this gateway cannot check is refused, never ignored.
      if (binding === 'unsupported') return deny('token_binding_unsupported');
      // RFC 8705 §3 first: no crypto, and it must hold whatever the DPoP outcome.
      const refused = certificateBound(certificate, req, binding.x5t, required.mtls);
      if (refused !== undefined) return refused;
      if (binding.jkt === undefined) {
        // §7.1: the DPoP scheme is for DPoP-bound tokens only.
        if (credential.scheme === 'dpop') return deny('token_binding_mismatch');
        return required.dpop ? deny('dpop_required') : undefined;
      }
      if (credential.scheme === 'bearer') return deny('dpop_required'); // §7.2 downgrade of a bound token
      if (proof === undefined) return deny('dpop_invalid');
      return proven(proofs, req, proof, principal, binding.jkt);
    },
  };
}

/** What checking a DPoP proof needs, built once per config. */
interface ProofContext {
  readonly deps: SenderDeps;
  readonly dpop: Config['dpop'];
  readonly algorithms: ReadonlySet<string>;
  readonly nonces: DpopNonces | undefined;
  /** The public URL without its trailing slash: htu is compared on it, never on Host. */
  readonly base: string;
  /** Imported proof keys and their thumbprints (dpop-proof.ts), filled only by verified proofs. */
  readonly keys: ProofKeys;
}

// RFC 8705 §3: a certificate-bound token (or any token where mtls is required) needs the certificate
// its cnf names, presented on this connection or vouched for by a trusted hop.
function certificateBound(certificate: CertificateThumbprint, req: IncomingMessage, x5t: string | undefined, required: boolean): Denial | undefined {
  if (x5t === undefined) return required ? deny('mtls_required') : undefined;
  const presented = certificate(req);
  if (presented === undefined) return deny('certificate_missing');
  return presented === x5t ? undefined : deny('certificate_mismatch');
}

// §4.3 and §11.1 for a bound token with its proof (the cache never skips this).
async function proven(ctx: ProofContext, req: IncomingMessage, proof: string, principal: Principal, jkt: string): Promise<Denial | undefined> {
  const { deps, dpop, algorithms, nonces, base, keys } = ctx;
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
    keys,
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

/** RFC 7800 cnf with the confirmation methods checked here: RFC 9449 §6.1 `jkt`, RFC 8705 §3.1 `x5t#S256`. */
function bindingOf(cnf: unknown): Binding {
  if (cnf === undefined) return { jkt: undefined, x5t: undefined };
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) return 'unsupported';
  const members = cnf as Record<string, unknown>;
  const keys = Object.keys(members);
  if (keys.length === 0 || keys.some((k) => k !== 'jkt' && k !== 'x5t#S256')) return 'unsupported';
  const jkt = members['jkt'];
  const x5t = members['x5t#S256'];
  // Both are base64url SHA-256 values: 43 characters.
  if (jkt !== undefined && (typeof jkt !== 'string' || !SHA256_B64URL.test(jkt))) return 'unsupported';
  if (x5t !== undefined && (typeof x5t !== 'string' || !SHA256_B64URL.test(x5t))) return 'unsupported';
  return { jkt, x5t } as Binding;
}

function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}
