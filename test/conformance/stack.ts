// The gateway stack the conformance suite and the real-client tests run through: the embedded
// issuer (oidc-provider) as the gateway's only issuer, the gateway started from a YAML file the way
// `mcp-warden serve` starts it, and one MCP server as its upstream. publicUrl is the gateway's real
// loopback address, so the URLs it advertises (RFC 9728 metadata, resource_metadata) are reachable.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { startIssuer, type RunningIssuer } from '../../src/issuer/index.ts';
import { createLogger } from '../../src/observe/log.ts';
import { startFromFile, type ServedGateway } from '../../src/serve.ts';
import { freePorts } from '../helpers/ports.ts';

/** A confidential client the issuer knows from configuration (client_credentials only). */
export const WORKLOAD = { client_id: 'warden-workload', client_secret: 'warden-workload-secret-0123456789abcdef' } as const;

export interface AuditLine {
  readonly decision?: string;
  readonly reason?: string;
  readonly status?: number;
  readonly rpcMethod?: string;
}

export interface StackOptions {
  /** The upstream's public path. Default /conformance/mcp. */
  readonly path?: string;
  /** The one scope the upstream requires. Default mcp:conformance. */
  readonly scope?: string;
}

export interface GatewayStack {
  /** The public URL of the upstream (its audience): what clients are pointed at. */
  readonly url: string;
  readonly scope: string;
  readonly issuer: RunningIssuer;
  readonly gateway: ServedGateway;
  /** Every audit line ("decision") the gateway has written, parsed. */
  readonly decisions: AuditLine[];
  /** An access token for the upstream from the embedded issuer (client_credentials, RFC 8707 resource). */
  token(): Promise<string>;
  close(): Promise<void>;
}

export async function startGatewayStack(upstreamUrl: string, options: StackOptions = {}): Promise<GatewayStack> {
  const path = options.path ?? '/conformance/mcp';
  const scope = options.scope ?? 'mcp:conformance';
  const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-conformance-'));
  const [port, adminPort] = await freePorts(2) as [number, number];
  const publicUrl = `http://127.0.0.1:${port}`;
  const audience = publicUrl + path;
  const closers: (() => Promise<void>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  const close = async (): Promise<void> => {
    for (const c of closers.splice(0)) await c().catch(() => undefined);
  };
  try {
    const issuer = await startIssuer({
      host: '127.0.0.1',
      port: 0,
      keysFile: join(dir, 'issuer-keys.json'),
      resources: [{ audience, scopes: [scope] }],
      clients: [{ ...WORKLOAD, grant_types: ['client_credentials'], scope }],
      accessTokenTtlSeconds: 900,
    });
    closers.unshift(() => issuer.close());
    const configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, stringify({
      listen: { host: '127.0.0.1', port },
      admin: { host: '127.0.0.1', port: adminPort },
      publicUrl,
      issuers: [{ name: 'embedded', issuer: issuer.url, algorithms: ['ES256'], typ: 'at+jwt' }],
      upstreams: [{ name: 'mcp', path, target: upstreamUrl, issuers: ['embedded'], scopes: [scope] }],
      identity: { signingKeyFile: join(dir, 'gateway.jwk') },
    }));
    const decisions: AuditLine[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line === '') continue;
          const parsed = JSON.parse(line) as AuditLine & { event?: string };
          if (parsed.event === 'decision') decisions.push(parsed);
        }
        cb();
      },
    });
    const gateway = await startFromFile(configFile, createLogger({ destination }));
    closers.unshift(() => gateway.shutdown(2_000));
    return {
      url: audience,
      scope,
      issuer,
      gateway,
      decisions,
      token: () => clientCredentialsToken(issuer.url, audience, scope),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function clientCredentialsToken(issuer: string, resource: string, scope: string): Promise<string> {
  const basic = Buffer.from(`${encodeURIComponent(WORKLOAD.client_id)}:${encodeURIComponent(WORKLOAD.client_secret)}`).toString('base64');
  const res = await fetch(new URL('/token', issuer), {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
  });
  const body = (await res.json()) as { access_token?: string; error?: string };
  if (res.status !== 200 || body.access_token === undefined) throw new Error(`token endpoint answered ${res.status} ${body.error ?? ''}`);
  return body.access_token;
}
