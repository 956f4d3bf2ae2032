// startIssuer: validate, load keys, listen, then serve oidc-provider behind the key schedule.
import { unwatchFile, watchFile } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KeyRing } from './key-ring.ts';
import { issuerFor, validateIssuerOptions } from './options.ts';
import { ProviderHost } from './provider-host.ts';
import { checkReloadable } from './reload.ts';
import type { IssuerOptions, RunningIssuer } from './types.ts';

export async function startIssuer(options: IssuerOptions): Promise<RunningIssuer> {
  let settings = validateIssuerOptions(options);
  const keyRing = await KeyRing.forIssuer(settings);

  const server = createServer();
  await listen(server, settings.host, settings.port);
  let host: ProviderHost;
  let url: string;
  try {
    url = issuerFor(settings, (server.address() as AddressInfo).port);
    host = new ProviderHost(settings, url, keyRing);
  } catch (error) {
    await closeServer(server);
    throw error;
  }
  server.on('request', host.handle);
  // A rotation made by another process (`mcp-warden keys rotate --issuer`) is picked up from the file.
  watchFile(settings.keysFile, { interval: 1_000 }, () => void keyRing.reload());

  const address = server.address() as AddressInfo;
  return {
    url,
    listenUrl: `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    // oidc-provider's default route, left unchanged in provider-config.ts.
    jwksUri: new URL('/jwks', url).href,
    async close() {
      unwatchFile(settings.keysFile);
      host.stop();
      await closeServer(server);
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
