// Shared scaffolding for the issuer tests: temporary key files, token requests, and a tiny
// cookie-carrying user agent that follows the authorization-code redirects.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { ConfigError } from '../../src/config/errors.ts';
import { startIssuer, type IssuerOptions, type RunningIssuer } from '../../src/issuer/index.ts';
import { freePort } from '../helpers/ports.ts';

export const FILES = 'http://127.0.0.1:8080/files/mcp';
export const NOTES = 'http://127.0.0.1:8080/notes/mcp';
export const RESOURCES = [
  { audience: FILES, scopes: ['mcp:files', 'mcp:files:admin'] },
  { audience: NOTES, scopes: ['mcp:notes'] },
] as const;
export const WORKLOAD = { client_id: 'workload', client_secret: 'workload-secret-0123456789abcdef' } as const;

/** A fresh directory per test file, removed by the returned function. */
export async function tempDir(): Promise<{ readonly dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'warden-issuer-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export function startLoopbackIssuer(keysFile: string, overrides: Partial<IssuerOptions> = {}): Promise<RunningIssuer> {
  return startIssuer({
    host: '127.0.0.1',
    port: 0,
    keysFile,
    resources: RESOURCES,
    clients: [{ ...WORKLOAD, grant_types: ['client_credentials'], scope: 'mcp:files mcp:notes' }],
    ...overrides,
  });
}

export const INITIAL_ACCESS_TOKEN = 'iat-0123456789abcdef0123456789abcdef';

/**
 * An https issuer (as behind a TLS terminator) whose registration needs INITIAL_ACCESS_TOKEN; the
 * tests talk to its plain-http listener at `local`.
 */
export async function startHttpsIssuer(keysFile: string, overrides: Partial<IssuerOptions> = {}): Promise<{ readonly issuer: RunningIssuer; readonly local: string }> {
  const port = await freePort();
  const issuer = await startIssuer({
    issuer: 'https://issuer.example.test',
    host: '127.0.0.1',
    port,
    keysFile,
    resources: RESOURCES,
    registration: { initialAccessToken: INITIAL_ACCESS_TOKEN },
    ...overrides,
  });
  return { issuer, local: `http://127.0.0.1:${port}` };
}

/** The ConfigError message a start-up is refused with (an issuer that starts after all is closed, and fails the test). */
export async function startupRefusal(starting: Promise<RunningIssuer>): Promise<string> {
  const error: unknown = await starting.then(
    async (running) => {
      await running.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).message;
}

export interface TokenResponse {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
}

export async function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<TokenResponse> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export function basic(clientId: string, secret: string): Record<string, string> {
  // RFC 6749 §2.3.1: form-encode, then base64.
  const pair = `${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`;
  return { authorization: `Basic ${Buffer.from(pair).toString('base64')}` };
}

export function clientCredentials(issuer: RunningIssuer, form: Record<string, string>, client: { client_id: string; client_secret: string } = WORKLOAD): Promise<TokenResponse> {
  return postForm(new URL('/token', issuer.url).href, { grant_type: 'client_credentials', ...form }, basic(client.client_id, client.client_secret));
}

export function pkcePair(): { readonly verifier: string; readonly challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/**
 * Plays the browser: requests `start` and follows redirects (at most 10), carrying cookies,
 * until one points at `redirectUri`; returns that URL. `base`, when given, is where requests
 * for the issuer's origin are actually sent (an https issuer served on loopback behind a "proxy").
 */
export async function followAuthorization(start: URL, redirectUri: string, base?: { readonly issuer: string; readonly local: string }): Promise<URL> {
  const outcome = await authorizationOutcome(start, redirectUri, base);
  if ('callback' in outcome) return outcome.callback;
  throw new Error(`authorization stopped at ${outcome.path} with ${outcome.status}: ${outcome.text}`);
}

export type AuthorizationOutcome =
  | { readonly callback: URL }
  | { readonly path: string; readonly status: number; readonly text: string };

/** As followAuthorization, but a page the issuer answers itself (an error it will not redirect) is returned. */
export async function authorizationOutcome(start: URL, redirectUri: string, base?: { readonly issuer: string; readonly local: string }): Promise<AuthorizationOutcome> {
  const jar = new Map<string, string>();
  let url = start;
  for (let hop = 0; hop < 10; hop++) {
    const target = base !== undefined && url.origin === new URL(base.issuer).origin ? new URL(url.pathname + url.search, base.local) : url;
    const res = await fetch(target, {
      redirect: 'manual',
      headers: { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; ') },
    });
    for (const cookie of res.headers.getSetCookie()) {
      const pair = cookie.split(';')[0] ?? '';
      const name = pair.slice(0, pair.indexOf('='));
      const value = pair.slice(pair.indexOf('=') + 1);
      if (value === '') jar.delete(name);
      else jar.set(name, value);
    }
    const text = await res.text();
    const location = res.headers.get('location');
    if (res.status < 300 || res.status > 399 || location === null) return { path: target.pathname, status: res.status, text };
    url = new URL(location, url);
    if (url.href.startsWith(redirectUri)) return { callback: url };
  }
  throw new Error('more than 10 redirects');
}

export async function register(url: string, metadata: object, headers: Record<string, string> = {}): Promise<TokenResponse> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(metadata) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export interface CodeFlowRequest {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly resource: string;
  readonly scope: string;
  /** Client authentication at the token endpoint; a public client sends its client_id instead. */
  readonly tokenHeaders?: Record<string, string>;
}

/**
 * A whole authorization-code + PKCE flow against a loopback issuer (which signs in and consents),
 * ending in the token response; an error at /auth or in the redirect comes back as a 400 body.
 */
export async function codeFlow(issuerUrl: string, request: CodeFlowRequest): Promise<TokenResponse> {
  const { verifier, challenge } = pkcePair();
  const start = new URL('/auth', issuerUrl);
  start.search = new URLSearchParams({
    client_id: request.clientId, redirect_uri: request.redirectUri, response_type: 'code', state: 'st',
    code_challenge: challenge, code_challenge_method: 'S256', resource: request.resource, scope: request.scope,
  }).toString();
  const outcome = await authorizationOutcome(start, request.redirectUri);
  if (!('callback' in outcome)) return { status: outcome.status, body: JSON.parse(outcome.text) as Record<string, unknown> };
  const code = outcome.callback.searchParams.get('code');
  if (code === null) return { status: 400, body: Object.fromEntries(outcome.callback.searchParams) };
  const client: Record<string, string> = request.tokenHeaders === undefined ? { client_id: request.clientId } : {};
  return postForm(new URL('/token', issuerUrl).href, {
    grant_type: 'authorization_code', code, redirect_uri: request.redirectUri, code_verifier: verifier, resource: request.resource, ...client,
  }, request.tokenHeaders ?? {});
}

/**
 * Registers beforeAll/afterAll that start a loopback issuer on a fresh keys file in a temp dir and
 * stop it again; read `issuer` and `dir` only once beforeAll has run.
 */
export function useLoopbackIssuer(): { readonly issuer: RunningIssuer; readonly dir: string } {
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let issuer: RunningIssuer | undefined;
  beforeAll(async () => {
    dir = await tempDir();
    issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`);
  });
  afterAll(async () => {
    await issuer?.close();
    await dir?.remove();
  });
  return {
    get issuer(): RunningIssuer {
      if (issuer === undefined) throw new Error('loopback issuer read before beforeAll started it');
      return issuer;
    },
    get dir(): string {
      if (dir === undefined) throw new Error('loopback issuer dir read before beforeAll made it');
      return dir.dir;
    },
  };
}
