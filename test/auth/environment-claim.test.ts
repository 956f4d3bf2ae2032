import { describe, expect, it } from 'vitest';
import type { JWTPayload } from 'jose';
import { AUD } from '../helpers/gateway.ts';
import { useGatewayFixture, type GatewayFixture } from '../helpers/fixture.ts';
import { bearerProbe } from '../helpers/refused.ts';

// Issue 19 §2: a token that names its environment is accepted only by a gateway of that environment,
// so a development token reused in a shared staging environment is refused before anything is forwarded.

const AT_JWT = { header: { typ: 'at+jwt' } };
const typed = (fx: GatewayFixture, claims: JWTPayload = {}): Promise<string> => fx.idp.token(AUD, claims, AT_JWT);

describe('a staging gateway and the env claim', () => {
  const fx = useGatewayFixture({ issuer: { typ: 'at+jwt', maxTokenLifetimeSeconds: 3_600 }, overrides: () => ({ root: { environment: 'staging' } }) });
  const probe = bearerProbe(fx, { resetBeforeRefusal: true });

  it('refuses a development token (environment_mismatch); the upstream receives nothing', async () => {
    await probe.expectRefused(await typed(fx, { env: 'development' }), 'environment_mismatch');
    await probe.expectRefused(await typed(fx, { env: 'production' }), 'environment_mismatch');
  });

  it('refuses anything but the exact string: another case, an array, a number', async () => {
    for (const env of ['Staging', ['staging'], 1]) await probe.expectRefused(await typed(fx, { env }), 'environment_mismatch');
  });

  it('forwards a staging token, and one that names no environment', async () => {
    expect((await probe.expectForwarded(await typed(fx, { env: 'staging' }))).sub).toBe('alice');
    expect((await probe.expectForwarded(await typed(fx))).sub).toBe('alice');
  });

  it('refuses at runtime a token living past the issuer\'s lifetime cap (the setting production caps at 1 h)', async () => {
    const now = Math.floor(Date.now() / 1000);
    await probe.expectRefused(await typed(fx, { iat: now, exp: now + 3_601 }), 'token_lifetime_exceeded');
  });
});

describe('a development gateway reading a custom environmentClaim', () => {
  const fx = useGatewayFixture({ overrides: () => ({ root: { environment: 'development', environmentClaim: 'deployment' } }) });
  const probe = bearerProbe(fx, { resetBeforeRefusal: true });

  it('refuses a production token by the named claim and ignores env', async () => {
    await probe.expectRefused(await fx.idp.token(AUD, { deployment: 'production' }), 'environment_mismatch');
    expect((await probe.expectForwarded(await fx.idp.token(AUD, { deployment: 'development', env: 'production' }))).sub).toBe('alice');
  });
});
