// oidc-provider's outbound fetches (Client ID Metadata Documents, client jwks_uri): https only, no
// redirects, 2.5 s, size caps, and its own SSRF guard that refuses special-use addresses (private,
// link-local, loopback) at connect time. `privateHosts` is the one configured exception: hosts that
// are known to live on a private network, fetched with the configured CA.
import { readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';

export interface OutboundSettings {
  readonly privateHosts: readonly string[];
  readonly caFile: string | undefined;
}

type Fetch = (url: string | URL, options: RequestInit & { dispatcher?: unknown }) => Promise<Response>;

export function createOutboundFetch(settings: OutboundSettings): Fetch {
  const privateHosts = new Set(settings.privateHosts.map((h) => h.toLowerCase()));
  const ca = settings.caFile === undefined ? undefined : readFileSync(settings.caFile, 'utf8');
  const privateAgent = privateHosts.size === 0 ? undefined : new Agent({ connect: ca === undefined ? {} : { ca } });
  return async (url, options) => {
    const host = new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, '');
    if (privateAgent === undefined || !privateHosts.has(host)) return globalThis.fetch(url, options as RequestInit);
    const { dispatcher: _ssrfGuard, ...rest } = options;
    // undici's own fetch with its own Agent: the same client, without the special-use address guard.
    return (await undiciFetch(url, { ...(rest as Parameters<typeof undiciFetch>[1]), dispatcher: privateAgent })) as unknown as Response;
  };
}
