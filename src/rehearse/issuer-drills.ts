import { CLOCK_TOLERANCE_SECONDS } from '../issuer/provider-config.ts';
import { NHI } from './controls.ts';
import type { Drill } from './drill.ts';
import { siblingUnavailable, withSibling } from './sibling.ts';
import { clientCredentials, register } from './tokens.ts';

/** The token endpoint's answer as a word: the access token works, or the error it named. */
async function attempt(get: () => Promise<string>): Promise<string> {
  return get().then(() => 'issued', (err: Error) => err.message);
}

/**
 * #18: no secret lives forever. Live: the deployment's registration gave an expiring secret. Then a
 * sibling of the embedded issuer with a 1-second secret lifetime: the secret works, and once past
 * expiry and the issuer's clock tolerance it is refused (RFC 6749 §5.2 invalid_client).
 */
export const expiredClientSecret: Drill = {
  id: 'expired-client-secret', title: 'expired client secret', controls: [NHI],
  async run(ctx) {
    const given = (await ctx.client()).client;
    if (given?.secretExpiresAt === 0) return ctx.record(this.title, 'fail', `the deployment registered ${given.clientId} with a secret that never expires (client_secret_expires_at 0)`);
    const na = siblingUnavailable(ctx);
    if (na !== undefined) return ctx.record(this.title, 'skip', na);
    const a = ctx.upstream;
    const out = await withSibling(ctx, { registration: { clientSecretTtlSeconds: 1 } }, async (sibling) => {
      const client = await register(`${sibling.listenUrl}/reg`, a.scopes, undefined);
      if (typeof client === 'string') return { ok: false, text: `registration with a 1 s secret lifetime: ${client}` };
      const token = (): Promise<string> => clientCredentials(`${sibling.listenUrl}/token`, client, a.audience, a.scopes);
      const before = await attempt(token);
      const waitMs = ((client.secretExpiresAt ?? 0) + CLOCK_TOLERANCE_SECONDS + 1) * 1000 - Date.now();
      await new Promise((r) => setTimeout(r, Math.max(0, waitMs)));
      const after = await attempt(token);
      return { ok: before === 'issued' && after.includes('(invalid_client)'), text: `before expiry: ${before}; ${Math.round(waitMs / 1000)} s later: ${after}` };
    });
    const live = given?.secretExpiresAt === undefined ? '' : `; the deployment's secrets expire (${given.clientId} at ${new Date(given.secretExpiresAt * 1000).toISOString()})`;
    ctx.record(this.title, out.ok ? 'pass' : 'fail', out.text + live);
  },
};
