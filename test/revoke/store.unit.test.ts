import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.ts';
import { expiryOf } from '../../src/revoke/entries.ts';
import { RevocationStore } from '../../src/revoke/store.ts';

const ISS = 'https://idp.test';
const T = 1_800_000_000; // seconds

function principal(over: { sub?: string; clientId?: string; jti?: string; iat?: number } = {}): Principal {
  const iat = 'iat' in over ? over.iat : T - 10;
  return Object.freeze({ issuerName: 'idp', iss: ISS, sub: over.sub ?? 'alice', clientId: over.clientId ?? 'app', scopes: new Set<string>(), exp: T + 300, jti: over.jti ?? 'j1', tokenHash: 'h', claims: Object.freeze(iat === undefined ? {} : { iat }) });
}

describe('revocation store', () => {
  it('cuts by jti, by subject and by client, each only for its own issuer and identity', () => {
    const s = new RevocationStore(100);
    const now = T * 1000;
    s.add({ kind: 'jti', iss: ISS, jti: 'j-bad', expiresAtMs: now + 1000 }, now);
    s.add({ kind: 'subject', iss: ISS, sub: 'mallory', issuedBeforeS: T, expiresAtMs: now + 1000 }, now);
    s.add({ kind: 'client', iss: ISS, clientId: 'rogue', issuedBeforeS: T, expiresAtMs: now + 1000 }, now);
    expect(s.check(principal({ jti: 'j-bad' }), now)).toBe('revoked');
    expect(s.check(principal({ sub: 'mallory' }), now)).toBe('revoked');
    expect(s.check(principal({ clientId: 'rogue' }), now)).toBe('revoked');
    expect(s.check(principal(), now)).toBeUndefined();
    expect(s.check({ ...principal({ sub: 'mallory' }), iss: 'https://other.test' }, now)).toBeUndefined();
  });

  it('a grant entry cuts one subject through one client, not the subject through another client', () => {
    const s = new RevocationStore(100);
    const now = T * 1000;
    s.add({ kind: 'grant', iss: ISS, sub: 'alice', clientId: 'app', issuedBeforeS: T, expiresAtMs: now + 1000 }, now);
    expect(s.check(principal(), now)).toBe('revoked');
    expect(s.check(principal({ clientId: 'other-app' }), now)).toBeUndefined();
    expect(s.check(principal({ sub: 'bob' }), now)).toBeUndefined();
  });

  it('"issued before T" spares tokens issued after T and cuts tokens without iat', () => {
    const s = new RevocationStore(100);
    const now = T * 1000;
    s.add({ kind: 'subject', iss: ISS, sub: 'alice', issuedBeforeS: T, expiresAtMs: now + 1000 }, now);
    expect(s.check(principal({ iat: T }), now)).toBe('revoked');
    expect(s.check(principal({ iat: T + 1 }), now)).toBeUndefined();
    expect(s.check(principal({ iat: undefined }), now)).toBe('revoked');
  });

  it('an entry lives until no token it can affect is valid (T + max lifetime + skew), then leaves', () => {
    const s = new RevocationStore(100);
    const expiresAtMs = expiryOf(T, 300, 30);
    expect(expiresAtMs).toBe((T + 330) * 1000);
    s.add({ kind: 'subject', iss: ISS, sub: 'alice', issuedBeforeS: T, expiresAtMs }, T * 1000);
    expect(s.check(principal(), expiresAtMs - 1)).toBe('revoked');
    expect(s.check(principal(), expiresAtMs)).toBeUndefined();
    s.sweep(expiresAtMs);
    expect(s.size).toBe(0);
    expect(s.add({ kind: 'jti', iss: ISS, jti: 'late', expiresAtMs: T * 1000 }, T * 1000 + 1)).toBe('expired');
  });

  it('a later revocation of the same identity only widens the entry', () => {
    const s = new RevocationStore(100);
    const now = T * 1000;
    s.add({ kind: 'client', iss: ISS, clientId: 'app', issuedBeforeS: T, expiresAtMs: now + 5000 }, now);
    expect(s.add({ kind: 'client', iss: ISS, clientId: 'app', issuedBeforeS: T - 100, expiresAtMs: now + 1000 }, now)).toBe('covered');
    expect(s.check(principal({ iat: T }), now)).toBe('revoked');
    expect(s.add({ kind: 'client', iss: ISS, clientId: 'app', issuedBeforeS: T + 5, expiresAtMs: now + 9000 }, now)).toBe('added');
    expect(s.check(principal({ iat: T + 5 }), now + 8000)).toBe('revoked');
    expect(s.size).toBe(1);
  });

  it('full of live entries, it fails closed: the issuer of the entry without room is refused until that entry would have expired', () => {
    const s = new RevocationStore(2);
    const now = T * 1000;
    s.add({ kind: 'jti', iss: ISS, jti: 'a', expiresAtMs: now + 1000 }, now);
    s.add({ kind: 'jti', iss: ISS, jti: 'b', expiresAtMs: now + 1000 }, now);
    expect(s.add({ kind: 'jti', iss: ISS, jti: 'c', expiresAtMs: now + 5000 }, now)).toBe('overflow');
    expect(s.size).toBe(2);
    expect(s.check(principal({ jti: 'unrelated' }), now)).toBe('overflow');
    expect(s.overflowing(now)).toEqual([ISS]);
    expect(s.check(principal({ jti: 'unrelated' }), now + 5000)).toBeUndefined();
  });
});
