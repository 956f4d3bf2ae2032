import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningIssuer } from '../../src/issuer/index.ts';
import { makePki, type TestPki } from '../helpers/certs.ts';
import { FILES, codeFlow, startLoopbackIssuer, tempDir } from './support.ts';

const REDIRECT_URI = 'http://127.0.0.1:53682/callback';

/** An https host for client metadata documents, each path answering what the test put there. */
class DocumentHost {
  readonly answers = new Map<string, { status: number; headers?: Record<string, string>; body: string }>();
  fetches = 0;
  url = '';
  #server: Server | undefined;

  static async start(pki: TestPki): Promise<DocumentHost> {
    const host = new DocumentHost();
    host.#server = createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) }, (req, res) => {
      host.fetches++;
      const answer = host.answers.get(req.url ?? '');
      if (answer === undefined) return void res.writeHead(404).end();
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(answer.body);
    });
    await new Promise<void>((resolve) => host.#server?.listen(0, '127.0.0.1', resolve));
    host.url = `https://127.0.0.1:${(host.#server.address() as AddressInfo).port}`;
    return host;
  }

  /** Publishes a well-formed document at `path` whose client_id is its own URL. */
  publish(path: string, overrides: Record<string, unknown> = {}, headers: Record<string, string> = {}): string {
    const clientId = `${this.url}${path}`;
    const document = { client_id: clientId, client_name: 'a CIMD client', redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none', ...overrides };
    this.answers.set(path, { status: 200, headers, body: JSON.stringify(document) });
    return clientId;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server?.closeAllConnections();
      this.#server?.close(() => resolve());
    });
  }
}

describe('Client ID Metadata Documents', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let pki: TestPki;
  let host: DocumentHost;
  let issuer: RunningIssuer;
  let guarded: RunningIssuer;

  beforeAll(async () => {
    dir = await tempDir();
    pki = makePki();
    host = await DocumentHost.start(pki);
    issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`, { fetch: { privateHosts: ['127.0.0.1'], caFile: pki.ca } });
    guarded = await startLoopbackIssuer(`${dir.dir}/guarded.json`);
  });
  afterAll(async () => {
    await issuer.close();
    await guarded.close();
    await host.close();
    await dir.remove();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  const flow = (on: RunningIssuer, clientId: string, redirectUri = REDIRECT_URI): ReturnType<typeof codeFlow> =>
    codeFlow(on.url, { clientId, redirectUri, resource: FILES, scope: 'mcp:files' });

  it('advertises client_id_metadata_document_supported', async () => {
    const metadata = (await (await fetch(`${issuer.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(metadata['client_id_metadata_document_supported']).toBe(true);
  });

  it('uses an https client_id URL as the client: fetched, matched exactly, and cached by its Cache-Control', async () => {
    const clientId = host.publish('/clients/app.json', {}, { 'cache-control': 'max-age=300' });
    const before = host.fetches;
    const tokens = await flow(issuer, clientId);
    expect(tokens.status).toBe(200);
    expect(decodeJwt(tokens.body['access_token'] as string)).toMatchObject({ client_id: clientId, aud: FILES, scope: 'mcp:files' });
    // Cached: a second flow (two more client look-ups) fetches nothing.
    const fetched = host.fetches - before;
    expect((await flow(issuer, clientId)).status).toBe(200);
    expect(host.fetches - before).toBe(fetched);
  });

  it('refuses a redirect URI the document does not list exactly', async () => {
    const clientId = host.publish('/clients/exact.json');
    const res = await flow(issuer, clientId, 'http://127.0.0.1:53683/callback');
    expect(res.status).toBe(400);
    expect(res.body['error']).toBe('invalid_redirect_uri');
  });

  it('refuses a document whose client_id is not its own URL', async () => {
    const clientId = host.publish('/clients/other.json', { client_id: `${host.url}/clients/somebody-else.json` });
    const res = await flow(issuer, clientId);
    expect(res.status).toBe(400);
    expect(res.body['error']).toBe('invalid_client_metadata');
  });

  it('does not follow a redirect to the document', async () => {
    host.answers.set('/clients/moved.json', { status: 302, headers: { location: `${host.url}/clients/app.json` }, body: '' });
    const res = await flow(issuer, `${host.url}/clients/moved.json`);
    expect(res.status).toBe(400);
    expect(res.body['error']).toBe('invalid_client');
  });

  it('refuses a document over the size cap', async () => {
    const clientId = host.publish('/clients/big.json', { client_name: 'x'.repeat(6 * 1024) });
    const res = await flow(issuer, clientId);
    expect(res.body['error']).toBe('invalid_client');
  });

  it('refuses a document that asks for client_credentials: nobody registered it, nobody consents for it', async () => {
    const clientId = host.publish('/clients/machine.json', { grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [] }, redirect_uris: [], scope: 'mcp:files' });
    const res = await fetch(`${issuer.url}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, resource: FILES }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_client', error_description: 'client is not allowed' });
  });

  it('never fetches from a loopback or private address unless that host is configured', async () => {
    const clientId = host.publish('/clients/app.json');
    const before = host.fetches;
    const res = await flow(guarded, clientId);
    expect(res.body['error']).toBe('invalid_client');
    expect(host.fetches).toBe(before);
  });
});
