import type { Config, UpstreamConfig } from '../config/compile.ts';
import type { DrillContext, Live, RecordResult, RehearseTarget, Unavailable } from './drill.ts';
import { asMetadata, clientCredentials, register, type AsMetadata } from './tokens.ts';

type Shared = Omit<DrillContext, 'record'>;

function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= f());
}

/** The state drills share within one run: metadata, the client and the token source are fetched once. */
export function createShared(config: Config, target: RehearseTarget): Shared {
  const upstream = config.upstreams[0] as UpstreamConfig;
  const issuer = upstream.issuers.find((i) => i.introspection === undefined);
  const metadata = once(async (): Promise<AsMetadata | undefined> => issuer === undefined ? undefined : asMetadata(issuer.issuer));
  const client = once(async () => {
    if (target.client !== undefined) return { client: target.client, status: 'skip' as const, detail: 'using the given client' };
    const endpoint = (await metadata())?.registration_endpoint;
    if (endpoint === undefined) return { client: undefined, status: 'skip' as const, detail: 'no registration endpoint; pass --client-id/--client-secret' };
    const registered = await register(endpoint, upstream.allScopes, config.authorizationServer?.registration?.initialAccessToken);
    if (typeof registered === 'string') return { client: undefined, status: 'fail' as const, detail: registered };
    return { client: registered, status: 'pass' as const, detail: `registered client ${registered.clientId}` };
  });
  const live = once(async (): Promise<Live | Unavailable> => {
    if (issuer === undefined) return { status: 'skip', reason: `upstream ${upstream.name} has no JWT issuer` };
    const tokenEndpoint = (await metadata())?.token_endpoint;
    const c = (await client()).client;
    if (c === undefined || tokenEndpoint === undefined) return { status: 'skip', reason: 'no client to obtain tokens with' };
    const token = (u: UpstreamConfig, scopes: readonly string[] = u.scopes): Promise<string> => clientCredentials(tokenEndpoint, c, u.audience, scopes);
    try {
      return { client: c, tokenEndpoint, good: await token(upstream), token };
    } catch (err) {
      return { status: 'fail', reason: (err as Error).message };
    }
  });
  return { config, target, upstream, issuer, urlOf: (u) => target.baseUrl + u.path, metadata, client, live };
}

export function contextFor(shared: Shared, record: RecordResult): DrillContext {
  return { ...shared, record };
}
