import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { InvalidClientError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { decodeJwt } from 'jose';
import { TestUpstream } from '../helpers/upstream.ts';
import { followAuthorization } from '../issuer/support.ts';
import { startGatewayStack, WORKLOAD, type GatewayStack } from '../conformance/stack.ts';

// The MCP SDK client is given nothing but the gateway URL and client credentials: it must find the
// authorization server itself, from the gateway's 401 (WWW-Authenticate resource_metadata) through
// the RFC 9728 protected resource metadata to the issuer's metadata, then get a token for the
// resource the metadata names (RFC 8707) and use it.
const REDIRECT_URI = 'http://127.0.0.1:53682/callback';

let upstream: TestUpstream;
let stack: GatewayStack;

beforeAll(async () => {
  upstream = await TestUpstream.start();
  stack = await startGatewayStack(`${upstream.url}/mcp`, { path: '/tools/mcp', scope: 'mcp:tools' });
});
afterAll(async () => {
  await stack?.close();
  await upstream?.close();
});
beforeEach(() => upstream.reset());

/** fetch that records every request the SDK makes (method, URL, status), in order. */
function recordingFetch(log: string[]): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    log.push(`${init?.method ?? 'GET'} ${url.origin}${url.pathname} ${res.status}`);
    return res;
  };
}

async function whoami(client: Client): Promise<{ identity: string[]; authorization: string[] }> {
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  return JSON.parse((result.content as { text: string }[])[0]?.text ?? '{}') as { identity: string[]; authorization: string[] };
}

function expectOnlyAssertionsUpstream(): void {
  expect(upstream.received.length).toBeGreaterThan(0);
  for (const r of upstream.received) {
    expect(r.headers.has('authorization')).toBe(false);
    expect(r.headers.get('x-mcp-identity')).toHaveLength(1);
  }
}

/** An interactive client: registers itself (RFC 7591) and plays the browser against the loopback issuer, which approves. */
class LoopbackBrowserProvider implements OAuthClientProvider {
  code: string | undefined;
  #client: OAuthClientInformationMixed | undefined;
  #tokens: OAuthTokens | undefined;
  #verifier = '';
  get redirectUrl(): string {
    return REDIRECT_URI;
  }
  get clientMetadata(): OAuthClientMetadata {
    return { client_name: 'mcp-warden e2e', redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' };
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
  async redirectToAuthorization(url: URL): Promise<void> {
    const callback = await followAuthorization(url, REDIRECT_URI);
    this.code = callback.searchParams.get('code') ?? undefined;
  }
  saveCodeVerifier(verifier: string): void {
    this.#verifier = verifier;
  }
  codeVerifier(): string {
    return this.#verifier;
  }
}

describe('an MCP SDK client discovering OAuth from the gateway', () => {
  it('client_credentials: 401 → resource metadata → issuer metadata → token for the resource → tools listed and called', async () => {
    const log: string[] = [];
    // SDK 1.32's client_credentials providers send only their own configured scope (fetchToken reads
    // clientMetadata.scope), never the challenge's scope="…"; without one the issuer grants a
    // scope-less token, which the gateway refuses with 403 insufficient_scope.
    const authProvider = new ClientCredentialsProvider({ clientId: WORKLOAD.client_id, clientSecret: WORKLOAD.client_secret, expectedIssuer: stack.issuer.url, scope: stack.scope });
    const client = new Client({ name: 'e2e-discovery', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(stack.url), { authProvider, fetch: recordingFetch(log) }));
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('whoami');
      const seen = await whoami(client);
      expect(seen.authorization).toEqual([]);
      expect(decodeJwt(seen.identity[0] as string)).toMatchObject({ sub: WORKLOAD.client_id, aud: stack.url, orig_iss: stack.issuer.url, scope: 'mcp:tools' });
    } finally {
      await client.close();
    }

    // The discovery chain, in order: the client was told nothing about the issuer.
    expect(log.slice(0, 5)).toEqual([
      `POST ${stack.url} 401`,
      `GET ${new URL(stack.url).origin}/.well-known/oauth-protected-resource/tools/mcp 200`,
      `GET ${stack.issuer.url}/.well-known/oauth-authorization-server 200`,
      `POST ${stack.issuer.url}/token 200`,
      `POST ${stack.url} 200`,
    ]);
    const token = (await authProvider.tokens())?.access_token ?? '';
    expect(decodeJwt(token)).toMatchObject({ aud: stack.url, client_id: WORKLOAD.client_id, scope: 'mcp:tools' });
    expectOnlyAssertionsUpstream();
    expect(upstream.calls()).toEqual(expect.arrayContaining(['tools/list', 'tools/call:whoami']));
  });

  it('authorization code + PKCE: registers dynamically, is approved on the loopback issuer, then calls a tool', async () => {
    const provider = new LoopbackBrowserProvider();
    const first = new Client({ name: 'e2e-interactive', version: '1.0.0' });
    // The first attempt ends at the authorization redirect, as in a browser-based client.
    await expect(first.connect(new StreamableHTTPClientTransport(new URL(stack.url), { authProvider: provider }))).rejects.toThrow(UnauthorizedError);
    expect(upstream.received).toHaveLength(0);
    const registered = provider.clientInformation();
    expect(registered?.client_id).toBeTruthy();
    expect(provider.code).toBeTruthy();

    const finishing = new StreamableHTTPClientTransport(new URL(stack.url), { authProvider: provider });
    await finishing.finishAuth(provider.code as string);
    const token = provider.tokens()?.access_token ?? '';
    expect(decodeJwt(token)).toMatchObject({ aud: stack.url, client_id: registered?.client_id, sub: 'demo-user', scope: 'mcp:tools' });

    const client = new Client({ name: 'e2e-interactive', version: '1.0.0' });
    await client.connect(finishing);
    try {
      const seen = await whoami(client);
      expect(seen.authorization).toEqual([]);
      expect(decodeJwt(seen.identity[0] as string)).toMatchObject({ sub: 'demo-user', client_id: registered?.client_id, aud: stack.url });
    } finally {
      await client.close();
    }
    expectOnlyAssertionsUpstream();
  });

  it('refuses a client whose credentials the issuer rejects, and the upstream receives nothing', async () => {
    const authProvider = new ClientCredentialsProvider({ clientId: WORKLOAD.client_id, clientSecret: 'not-the-secret-0123456789abcdef', expectedIssuer: stack.issuer.url, scope: stack.scope });
    const client = new Client({ name: 'e2e-discovery', version: '1.0.0' });
    // It got as far as the issuer (so discovery worked) and was turned away there.
    await expect(client.connect(new StreamableHTTPClientTransport(new URL(stack.url), { authProvider }))).rejects.toThrow(InvalidClientError);
    expect(upstream.received).toHaveLength(0);
    expect(upstream.bytes).toBe(0);
  });
});
