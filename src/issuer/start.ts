// startIssuer: validate, load keys, listen, then serve oidc-provider behind the key schedule.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KeyRing } from './key-ring.ts';
import { issuerFor, validateIssuerOptions, type IssuerSettings } from './options.ts';
import { ProviderHost } from './provider-host.ts';
import { checkReloadable } from './reload.ts';
import type { IssuerOptions, RunningIssuer } from './types.ts';

export async function startIssuer(options: IssuerOptions): Promise<RunningIssuer> {
  let settings = validateIssuerOptions(options);
  const keyRing = await KeyRing.forIssuer(settings);

  const server = createServer();
  await listen(server, settings.host, settings.port);
  const mtls = await mtlsListener(settings.mtls, settings.host).catch(async (error: unknown) => {
    await closeServer(server);
    throw error;
  });
  let host: ProviderHost;
  let url: string;
  try {
    url = issuerFor(settings, (server.address() as AddressInfo).port);
    host = new ProviderHost(settings, url, keyRing, mtls?.url);
  } catch (error) {
    await closeServer(server);
    if (mtls !== undefined) await closeServer(mtls.server);
    throw error;
  }
  server.on('request', host.handle);
  mtls?.server.on('request', host.handle);
  // A rotation made by another process (`mcp-warden keys rotate --issuer`) is picked up from the file.
  watchFile(settings.keysFile, { interval: 1_000 }, () => void keyRing.reload());

  const address = server.address() as AddressInfo;
  return {
    url,
    listenUrl: urlOf('http', address),
    mtlsUrl: mtls?.url,
    // oidc-provider's default route, left unchanged in provider-config.ts.
    jwksUri: new URL('/jwks', url).href,
    async close() {
      unwatchFile(settings.keysFile);
      host.stop();
      await closeServer(server);
      if (mtls !== undefined) await closeServer(mtls.server);
      await keyRing.flush();
    },
    rotateKeys: () => keyRing.rotate(),
    async reload(next: IssuerOptions) {
      // Validated in full first: an invalid or restart-only change leaves the running issuer as it was.
      const validated = validateIssuerOptions({ ...next, ...(options.now === undefined ? {} : { now: options.now }) });
      checkReloadable(settings, validated);
      host.reconfigure(validated);
      settings = validated;
    },
  };
}

function urlOf(scheme: string, address: AddressInfo): string {
  return `${scheme}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
}

/**
 * RFC 8705 §5: the same issuer on a TLS listener that asks for client certificates and verifies them
 * against the CA. Optional at the handshake, so oidc-provider answers a client without one with its
 * own error; only a verified certificate binds a token (provider-config.ts mtlsFeature).
 */
async function mtlsListener(mtls: IssuerSettings['mtls'], host: string): Promise<{ server: Server; url: string } | undefined> {
  if (mtls === undefined) return undefined;
  const server = createTlsServer({ cert: readFileSync(mtls.certFile), key: readFileSync(mtls.keyFile), ca: readFileSync(mtls.clientCaFile), requestCert: true, rejectUnauthorized: false });
  await listen(server, host, mtls.port);
  return { server, url: urlOf('https', server.address() as AddressInfo) };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error === undefined ? resolve() : reject(error)));
    // Idle keep-alive sockets would otherwise hold close() open until they time out.
    server.closeIdleConnections();
  });
}
