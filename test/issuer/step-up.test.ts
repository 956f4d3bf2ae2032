import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { auth, UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { startTestDemo } from './demo-stack.ts';
import { FILES, clientCredentials, codeFlow, followAuthorization, register, useLoopbackIssuer } from './support.ts';

const REDIRECT_URI = 'http://127.0.0.1:53682/callback';

describe('step-up at the issuer', () => {
  const fx = useLoopbackIssuer();

  it('lets a client registered with the first challenge scope ask later for the admin scope of the resource', async () => {
    const reg = await register(`${fx.issuer.url}/reg`, { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none', scope: 'mcp:files' });
    expect(reg.status).toBe(201);
    // RFC 7591 §3.2.1: the server says what the client may ask for, which is every resource scope.
    expect(reg.body['scope']).toBe('mcp:files mcp:files:admin mcp:notes');
    const clientId = reg.body['client_id'] as string;
    const first = await codeFlow(fx.issuer.url, { clientId, redirectUri: REDIRECT_URI, resource: FILES, scope: 'mcp:files' });
    expect(first.body['scope']).toBe('mcp:files');
    const stepped = await codeFlow(fx.issuer.url, { clientId, redirectUri: REDIRECT_URI, resource: FILES, scope: 'mcp:files mcp:files:admin' });
    expect(stepped.status).toBe(200);
    expect(decodeJwt(stepped.body['access_token'] as string)).toMatchObject({ aud: FILES, scope: 'mcp:files mcp:files:admin' });
  });

  it('never grants a scope the resource does not declare, even to a widened client', async () => {
    const reg = await register(`${fx.issuer.url}/reg`, { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none', scope: 'mcp:files' });
    const result = await codeFlow(fx.issuer.url, { clientId: reg.body['client_id'] as string, redirectUri: REDIRECT_URI, resource: FILES, scope: 'mcp:files mcp:notes' });
    expect(result.status).toBe(200);
    // mcp:notes belongs to another resource: narrowed away, not put into a token for this one.
    expect(decodeJwt(result.body['access_token'] as string)['scope']).toBe('mcp:files');
  });

  it('keeps a client_credentials client to exactly the scope it registered (nobody consents for it)', async () => {
    const reg = await register(`${fx.issuer.url}/reg`, { grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'mcp:files' });
    expect(reg.body['scope']).toBe('mcp:files');
    const client = { client_id: reg.body['client_id'] as string, client_secret: reg.body['client_secret'] as string };
    const admin = await clientCredentials(fx.issuer, { resource: FILES, scope: 'mcp:files mcp:files:admin' }, client);
    expect(admin.status).toBe(400);
    expect(admin.body['error']).toBe('invalid_scope');
  });
});

/** An interactive SDK client that plays the browser against the loopback demo issuer, which consents. */
class BrowserProvider implements OAuthClientProvider {
  code: string | undefined;
  authorizationUrls: URL[] = [];
  #client: OAuthClientInformationMixed | undefined;
  #tokens: OAuthTokens | undefined;
  #verifier = '';
  readonly grantTypes: readonly string[];
  constructor(grantTypes: readonly string[]) {
    this.grantTypes = grantTypes;
  }
  get redirectUrl(): string {
    return REDIRECT_URI;
  }
  get clientMetadata(): OAuthClientMetadata {
    return { client_name: 'step-up e2e', redirect_uris: [REDIRECT_URI], grant_types: [...this.grantTypes], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.#client;
  }
  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.#client = info;
  }
  tokens(): OAuthTokens | undefined {
    return this.#tokens;
  }
  saveTokens(tokens: OAuthTokens): void {
    this.#tokens = tokens;
  }
  dropTokens(): void {
    this.#tokens = undefined;
  }
  async redirectToAuthorization(url: URL): Promise<void> {
    this.authorizationUrls.push(url);
    this.code = (await followAuthorization(url, REDIRECT_URI)).searchParams.get('code') ?? undefined;
  }
  saveCodeVerifier(verifier: string): void {
    this.#verifier = verifier;
  }
  codeVerifier(): string {
    return this.#verifier;
  }
}

async function connected(url: string, provider: BrowserProvider): Promise<Client> {
  const first = new Client({ name: 'step-up', version: '1.0.0' });
  await expect(first.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }))).rejects.toThrow(UnauthorizedError);
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await transport.finishAuth(provider.code as string);
  const client = new Client({ name: 'step-up', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

function text(result: Awaited<ReturnType<Client['callTool']>>): string {
  return (result.content as { text: string }[])[0]?.text ?? '';
}

describe('step-up through the gateway with the MCP SDK client', () => {
  let demo: Awaited<ReturnType<typeof startTestDemo>>;
  let url: string;

  beforeAll(async () => {
    demo = await startTestDemo();
    url = demo.stack.config.upstreams[0]?.audience as string;
  });
  afterAll(async () => demo?.close());

  it('goes from 403 insufficient_scope to a successful admin call: the SDK re-authorizes with the scope the 403 named', async () => {
    const provider = new BrowserProvider(['authorization_code']);
    const client = await connected(url, provider);
    try {
      expect(decodeJwt(provider.tokens()?.access_token ?? '')['scope']).toBe('mcp:demo');
      // The SDK answers the 403 by sending the user to authorize the named scope (SEP-835).
      await expect(client.callTool({ name: 'admin_reset', arguments: {} })).rejects.toThrow(UnauthorizedError);
      const stepUp = provider.authorizationUrls.at(-1) as URL;
      expect(stepUp.searchParams.get('scope')?.split(' ')).toContain('mcp:demo:admin');
      const transport = client.transport as StreamableHTTPClientTransport;
      await transport.finishAuth(provider.code as string);
      expect(decodeJwt(provider.tokens()?.access_token ?? '')['scope']).toBe('mcp:demo mcp:demo:admin');
      expect(text(await client.callTool({ name: 'admin_reset', arguments: {} }))).toBe('reset requested by demo-user');
    } finally {
      await client.close();
    }
  });

  it('with the default registration (refresh_token too), the SDK refreshes instead of re-authorizing; a new authorization for the named scope then succeeds', async () => {
    const provider = new BrowserProvider(['authorization_code', 'refresh_token']);
    const client = await connected(url, provider);
    try {
      expect(provider.tokens()?.refresh_token).toBeTruthy();
      // SDK 1.32: its upscoping refreshes the token, and a refresh cannot add a scope (RFC 6749 §6),
      // so the retry meets the same 403. That is the SDK's to fix; the issuer grants step-up as soon
      // as the client asks for it with an authorization request.
      await expect(client.callTool({ name: 'admin_reset', arguments: {} })).rejects.toThrow(StreamableHTTPError);
      provider.dropTokens();
      const resource = new URL(url);
      expect(await auth(provider, { serverUrl: resource, scope: 'mcp:demo mcp:demo:admin' })).toBe('REDIRECT');
      expect(await auth(provider, { serverUrl: resource, authorizationCode: provider.code as string })).toBe('AUTHORIZED');
      expect(text(await client.callTool({ name: 'admin_reset', arguments: {} }))).toBe('reset requested by demo-user');
    } finally {
      await client.close();
    }
  });
});
