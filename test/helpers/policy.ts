import { loadConfigText, type UpstreamConfig } from '../../src/config/compile.ts';
import type { Principal } from '../../src/auth/principal.ts';

/**
 * Upstreams compiled from YAML exactly as the gateway compiles them (lint included), behind one issuer
 * `idp` (https://idp.test, ES256). `upstreams` is the YAML list, its items indented by two spaces.
 */
export function compileUpstreams(upstreams: string): readonly UpstreamConfig[] {
  return loadConfigText(`
publicUrl: https://gw.test
issuers: [{ name: idp, issuer: https://idp.test, algorithms: [ES256] }]
upstreams:
${upstreams}
identity: { signingKeyFile: /dev/null }
`).upstreams;
}

/** A verified caller of idp with these space-separated scopes and claims (for no client_id, spread and override). */
export function principal(scopes: string, claims: Record<string, unknown> = {}, clientId = 'c'): Principal {
  return { issuerName: 'idp', iss: 'https://idp.test', sub: 'alice', clientId, scopes: new Set(scopes.split(' ').filter(Boolean)), exp: 0, jti: undefined, tokenHash: 'h', claims };
}
