import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { startFromFile } from '../../src/serve.ts';
import { createLogger } from '../../src/observe/log.ts';

export const PUBLIC_URL = 'https://gw.test';
export const AUD = `${PUBLIC_URL}/mcp`;
export const AUD_OTHER = `${PUBLIC_URL}/other-mcp`;

export interface StartedGateway {
  readonly url: string;
  readonly adminUrl: string;
  readonly logs: string[];
  readonly configFile: string;
  readonly gateway: Awaited<ReturnType<typeof startFromFile>>;
  close(): Promise<void>;
}

export interface IssuerSpec {
  readonly name?: string;
  readonly issuer: string;
  readonly jwksUri?: string;
  readonly algorithms?: readonly string[];
  readonly [key: string]: unknown;
}

/** A gateway config in the shape of the YAML contract, with two upstreams (/mcp and /other-mcp). */
export function twoUpstreamConfig(issuer: IssuerSpec, upstreamUrl: string, overrides: { mcp?: Record<string, unknown>; other?: Record<string, unknown>; root?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    publicUrl: PUBLIC_URL,
    issuers: [{ name: 'idp', algorithms: ['RS256', 'ES256'], ...issuer }],
    upstreams: [
      { name: 'mcp', path: '/mcp', target: `${upstreamUrl}/echo`, issuers: [issuer.name ?? 'idp'], scopes: ['mcp:tools'], ...overrides.mcp },
      { name: 'other', path: '/other-mcp', target: `${upstreamUrl}/echo/other`, issuers: [issuer.name ?? 'idp'], scopes: ['mcp:tools'], ...overrides.other },
    ],
    identity: { signingKeyFile: 'gateway.jwk' },
    ...overrides.root,
  };
}

/** Starts the gateway through the same code path as `mcp-warden serve --config <file>`. */
export async function startGateway(config: Record<string, unknown>, options: { now?: () => number } = {}): Promise<StartedGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-test-'));
  const identity = { ...(config['identity'] as Record<string, unknown>) };
  const keyFile = String(identity['signingKeyFile'] ?? 'gateway.jwk');
  identity['signingKeyFile'] = isAbsolute(keyFile) ? keyFile : join(dir, keyFile);
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, stringify({ ...config, identity }));
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const gateway = await startFromFile(configFile, createLogger({ destination }), options);
  const { traffic, admin } = gateway.addresses;
  return {
    url: `http://127.0.0.1:${traffic.port}`,
    adminUrl: `http://127.0.0.1:${admin.port}`,
    logs,
    configFile,
    gateway,
    async close() {
      await gateway.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
