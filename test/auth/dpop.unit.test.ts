import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { DpopReplayCache } from '../../src/auth/dpop-replay.ts';
import { createDpopNonces } from '../../src/auth/dpop-nonce.ts';
import type { CryptoKey } from 'jose';
import { ProofKeys } from '../../src/auth/dpop-proof.ts';

const base = (upstreamExtra = '', root = ''): string => `publicUrl: https://gw.test
issuers:
  - name: idp
    issuer: https://idp.test
    jwksUri: https://idp.test/jwks
    algorithms: [RS256]
upstreams:
  - name: mcp
    path: /mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [idp]
${upstreamExtra}
identity:
  signingKeyFile: ./gateway.jwk
${root}
`;

function problemKeys(text: string): string[] {
  try {
    loadConfigText(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => p.key);
  }
  throw new Error('the config was accepted');
}

describe('DPoP configuration', () => {
  it('defaults to no sender constraint, with the asymmetric proof allow-list and a 60 s window', () => {
    const config = loadConfigText(base());
    expect(config.upstreams[0]?.senderConstraint).toBe('none');
    expect(config.dpop).toEqual({ algorithms: ['ES256', 'EdDSA', 'PS256', 'RS256'], proofMaxAgeSeconds: 60, clockSkewSeconds: 5, replayCacheEntries: 100_000, nonceRotationSeconds: undefined });
  });

  it('refuses mtls (not implemented, so never a value that does nothing), symmetric or none proof algorithms, and unknown keys', () => {
    expect(problemKeys(base('    senderConstraint: mtls'))).toContain('upstreams.0.senderConstraint');
    expect(problemKeys(base('', 'dpop:\n  algorithms: [HS256]'))).toContain('dpop.algorithms.0');
    expect(problemKeys(base('', 'dpop:\n  algorithms: [none]'))).toContain('dpop.algorithms.0');
    expect(problemKeys(base('', 'dpop:\n  skipReplayCheck: true')).some((k) => k.startsWith('dpop'))).toBe(true);
    expect(problemKeys(base('', 'dpop:\n  proofMaxAgeSeconds: 3600'))).toContain('dpop.proofMaxAgeSeconds');
  });
});

describe('DPoP jti replay cache', () => {
  it('refuses a jti while it is live, forgets it once expired, and refuses new proofs when full of live ones', () => {
    const cache = new DpopReplayCache(2);
    expect(cache.record('a', 1_000, 0)).toBe('fresh');
    expect(cache.record('a', 1_000, 500)).toBe('replayed');
    expect(cache.record('b', 1_500, 500)).toBe('fresh');
    expect(cache.record('c', 1_500, 600)).toBe('full');
    expect(cache.record('c', 2_000, 1_000)).toBe('fresh'); // 'a' expired and swept
    expect(cache.record('a', 2_000, 1_100)).toBe('full'); // 'b' and 'c' still live
    expect(cache.record('a', 2_500, 1_600)).toBe('fresh'); // 'b' expired and swept
  });

  it('keeps every live entry when a reload changes its size', () => {
    const old = new DpopReplayCache(1_000);
    expect(old.record('x', 5_000, 0)).toBe('fresh');
    const resized = new DpopReplayCache(2_000, old);
    expect(resized.record('x', 5_000, 100)).toBe('replayed');
  });
});

describe('DPoP nonces', () => {
  it('accepts the current and previous period only, and agrees across instances with the same secret', () => {
    const secret = Buffer.alloc(32, 7);
    const a = createDpopNonces(secret, 60);
    const b = createDpopNonces(secret, 60);
    const n0 = a.current(0);
    expect(b.current(30_000)).toBe(n0);
    expect(a.accepts(n0, 60_000)).toBe(true);
    expect(a.accepts(n0, 120_000)).toBe(false);
    expect(createDpopNonces(Buffer.alloc(32, 8), 60).accepts(n0, 0)).toBe(false);
  });
});

describe('DPoP proof key cache', () => {
  it('holds at most its bound of keys, forgetting the oldest first', () => {
    const keys = new ProofKeys(2);
    const entry = (thumbprint: string) => ({ thumbprint, key: {} as CryptoKey });
    keys.remember('a', entry('A'));
    keys.remember('b', entry('B'));
    keys.remember('c', entry('C'));
    expect(keys.get('a')).toBeUndefined();
    expect(keys.get('b')?.thumbprint).toBe('B');
    expect(keys.get('c')?.thumbprint).toBe('C');
  });
});
