import { http, json } from './http.ts';

export interface Client {
  readonly clientId: string;
  readonly clientSecret: string;
  /** RFC 7591 §3.2.1 client_secret_expires_at of a registered client (0: never). */
  readonly secretExpiresAt?: number;
}

export interface AsMetadata {
  readonly issuer?: string;
  readonly jwks_uri?: string;
  readonly token_endpoint?: string;
  readonly registration_endpoint?: string;
  readonly authorization_endpoint?: string;
  readonly grant_types_supported?: readonly string[];
}

/** RFC 8414 then OIDC discovery, the same order the gateway uses. */
export async function asMetadata(issuer: string): Promise<AsMetadata | undefined> {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  for (const candidate of [`${url.origin}/.well-known/oauth-authorization-server${path}`, `${url.origin}${path}/.well-known/openid-configuration`]) {
    const reply = await http(candidate);
    if (reply.status === 200) return json<AsMetadata>(reply);
  }
  return undefined;
}

/** RFC 7591 registration of a client_credentials client for the given scopes. */
export async function register(endpoint: string, scopes: readonly string[], initialAccessToken: string | undefined): Promise<Client | string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (initialAccessToken !== undefined) headers['authorization'] = `Bearer ${initialAccessToken}`;
  const reply = await http(endpoint, {
    method: 'POST',
    headers,
    body: JSON.stringify({ client_name: 'mcp-warden rehearse', grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', scope: scopes.join(' ') }),
  });
  const body = json<{ client_id?: string; client_secret?: string; client_secret_expires_at?: number }>(reply);
  if (reply.status !== 201 || body?.client_id === undefined || body.client_secret === undefined) return `registration answered ${reply.status}`;
  return { clientId: body.client_id, clientSecret: body.client_secret, secretExpiresAt: body.client_secret_expires_at ?? 0 };
}

/** client_credentials with an RFC 8707 resource indicator. */
export async function clientCredentials(tokenEndpoint: string, client: Client, resource: string, scopes: readonly string[]): Promise<string> {
  const basic = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64');
  const form = new URLSearchParams({ grant_type: 'client_credentials', resource });
  if (scopes.length > 0) form.set('scope', scopes.join(' '));
  const reply = await http(tokenEndpoint, { method: 'POST', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
  const body = json<{ access_token?: string; error?: string }>(reply);
  if (reply.status !== 200 || body?.access_token === undefined) throw new Error(`token endpoint answered ${reply.status}${body?.error === undefined ? '' : ` (${body.error})`}`);
  return body.access_token;
}
