import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { Config, ListenTls } from '../config/compile.ts';
import type { Logger } from '../observe/log.ts';
import { answeredClosing, oneRequestAtATime } from './connection.ts';

export interface TrafficListener {
  readonly server: Server;
  /** Stops watching the certificate files. */
  stop(): void;
}

/**
 * The traffic listener, hardened: the strict HTTP parser, bounded header and request times, no
 * CONNECT or upgrades, parser errors answered without a body, one request at a time per connection,
 * and TLS certificates renewed in place.
 */
export function createTrafficListener(config: Config, handle: (req: IncomingMessage, res: ServerResponse) => void, logger: Logger): TrafficListener {
  const onRequest = oneRequestAtATime(handle);
  const tls = config.listen.tls;
  const options = {
    // Smuggling defences (SC-110/111): never the lenient parser; bounded header and request times (SC-156).
    insecureHTTPParser: false,
    maxHeaderSize: 16 * 1024,
    headersTimeout: config.limits.headersTimeoutMs,
    requestTimeout: config.limits.requestTimeoutMs,
    requireHostHeader: true,
    // Node checks header and request timeouts only this often (default 30 s): keep it at the timeout's scale.
    connectionsCheckingInterval: Math.min(1_000, config.limits.headersTimeoutMs),
  };
  let server: Server;
  let stop = (): void => undefined;
  if (tls === undefined) {
    server = createServer(options, onRequest);
  } else {
    const read = (): { cert: Buffer; key: Buffer; ca?: Buffer } => ({
      cert: readFileSync(tls.certFile),
      key: readFileSync(tls.keyFile),
      ...(tls.clientCaFile === undefined ? {} : { ca: readFileSync(tls.clientCaFile) }),
    });
    const secure: TlsServer = createTlsServer({ ...options, ...read(), ...clientCertificates(tls) }, onRequest);
    // Certificate renewal without restart: new connections get the new pair once both files are read.
    const reloadCert = (): void => {
      try {
        secure.setSecureContext(read());
        logger.info({ event: 'tls_reloaded' }, 'TLS certificate reloaded');
      } catch {
        logger.error({ event: 'tls_reload_failed' }, 'TLS certificate reload failed; keeping the current one');
      }
    };
    const watched = [tls.certFile, tls.keyFile, ...(tls.clientCaFile === undefined ? [] : [tls.clientCaFile])];
    for (const file of watched) watchFile(file, { interval: 2_000 }, reloadCert);
    stop = () => {
      for (const file of watched) unwatchFile(file);
    };
    server = secure;
  }
  // Issue 17 §8: a bound on client connections; past it Node drops new ones at accept.
  server.maxConnections = config.limits.maxConnections;
  harden(server, onRequest);
  return { server, stop };
}

/**
 * RFC 8705 §3: with a client CA the handshake asks for a certificate and verifies it against that CA.
 * `optional` lets a client without one connect (its certificate-bound tokens are then refused, auth/mtls.ts
 * counts only a verified certificate); `required` ends the handshake instead.
 */
function clientCertificates(tls: ListenTls): { requestCert: boolean; rejectUnauthorized: boolean } {
  if (tls.clientCaFile === undefined) return { requestCert: false, rejectUnauthorized: false };
  return { requestCert: true, rejectUnauthorized: tls.clientCertificate === 'required' };
}

function harden(server: Server, onRequest: (req: IncomingMessage, res: ServerResponse) => void): void {
  // Expect: 100-continue is answered by the pipeline only after authorization (SC-109).
  server.on('checkContinue', onRequest);
  // CONNECT and upgrades are not proxied (SC-127).
  server.on('connect', (_req, socket) => socket.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'));
  server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'));
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return void socket.destroy();
    // Our own answer already ended the connection; it leaves first, the parser's would be a second one.
    if (answeredClosing(socket)) return void (socket as import('node:net').Socket).destroySoon();
    // What the parser refused: headers too large (SC-150), too slow (SC-156), or malformed (SC-110/111).
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });
}
