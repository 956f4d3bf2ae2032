import { describe, expect, it } from 'vitest';
import { timeClaimsProblem } from '../../src/auth/time-claims.ts';
import { typAccepted } from '../../src/auth/typ.ts';
import type { IssuerConfig } from '../../src/config/compile.ts';

// Pure tables for the two pre-key rules (the live gateway cases are in test/security/).

const NOW = 1_800_000_000;
const issuer = (extra: Partial<IssuerConfig> = {}): IssuerConfig =>
  ({ name: 'idp', issuer: 'https://idp.test', clockSkewSeconds: 30, maxTokenAgeSeconds: undefined, maxTokenLifetimeSeconds: 86_400, ...extra }) as IssuerConfig;

describe('timeClaimsProblem (RFC 7519 §2, §4.1.4-4.1.6, maximum lifetime)', () => {
  it.each([
    [{ exp: NOW + 300, iat: NOW }, undefined],
    [{ exp: NOW + 300 }, undefined],
    [{}, 'claims_invalid'],
    [{ exp: Infinity }, 'claims_invalid'],
    [{ exp: Number.NaN }, 'claims_invalid'],
    [{ exp: NOW + 300, nbf: -1 }, 'claims_invalid'],
    [{ exp: NOW + 300, iat: -Infinity }, 'claims_invalid'],
    [{ exp: NOW - 30 }, 'token_expired'],
    [{ exp: NOW - 29, iat: NOW - 60 }, undefined],
    [{ exp: NOW + 300, nbf: NOW + 31 }, 'token_not_yet_valid'],
    [{ exp: NOW + 300, iat: NOW + 30 }, undefined],
    [{ exp: NOW + 300, iat: NOW + 31 }, 'token_not_yet_valid'],
    [{ exp: NOW + 86_400, iat: NOW }, undefined],
    [{ exp: NOW + 86_401, iat: NOW }, 'token_lifetime_exceeded'],
    [{ exp: NOW + 86_430 }, undefined],
    [{ exp: NOW + 86_431 }, 'token_lifetime_exceeded'],
    [{ exp: (NOW + 300) * 1000, iat: NOW }, 'token_lifetime_exceeded'],
    [{ exp: (NOW + 300) * 1000, iat: NOW * 1000 }, 'token_not_yet_valid'],
  ] as const)('%j → %s', (claims, expected) => {
    expect(timeClaimsProblem(claims, issuer(), NOW)).toBe(expected);
  });

  it('checks maxTokenAgeSeconds before the lifetime, and needs iat for it', () => {
    const aged = issuer({ maxTokenAgeSeconds: 3_600 });
    expect(timeClaimsProblem({ exp: NOW + 60, iat: NOW - 90_000 }, aged, NOW)).toBe('token_too_old');
    expect(timeClaimsProblem({ exp: NOW + 60 }, aged, NOW)).toBe('claims_invalid');
    expect(timeClaimsProblem({ exp: NOW + 60, iat: NOW - 3_630 }, aged, NOW)).toBeUndefined();
  });
});

describe('typAccepted (RFC 8725 §3.11, RFC 9068 §4, RFC 7515 §4.1.9)', () => {
  it.each([
    [undefined, true], ['JWT', true], ['jwt', true], ['application/JWT', true], ['at+jwt', true], ['Application/AT+JWT', true],
    ['mcp-identity+jwt', false], ['secevent+jwt', false], ['logout+jwt', false], ['id+jwt', false], ['dpop+jwt', false],
    ['', false], ['application/', false], ['at+jwt ', false], [1, false], [null, false],
  ] as const)('default: %j → %s', (typ, expected) => {
    expect(typAccepted(typ, undefined)).toBe(expected);
  });

  it.each([[undefined, false], ['JWT', false], ['at+jwt', true], ['APPLICATION/at+JWT', true], ['dpop+jwt', false]] as const)('typ: at+jwt: %j → %s', (typ, expected) => {
    expect(typAccepted(typ, 'at+jwt')).toBe(expected);
  });
});
