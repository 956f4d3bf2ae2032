import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/**
 * One HTTP/1.1 request with the request-target and headers exactly as given (order, case, duplicates
 * kept; Node's client does not normalise the path). Host is gw.test unless the test gives another.
 */
export function sendExact(port: number, method: string, path: string, headers: readonly (readonly [string, string])[], body?: string | Buffer): Promise<Reply> {
  const flat: string[] = headers.some(([name]) => name.toLowerCase() === 'host') ? [] : ['Host', 'gw.test'];
  for (const [name, value] of headers) flat.push(name, value);
  if (body !== undefined) flat.push('Content-Length', String(Buffer.byteLength(body)));
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: flat, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface RawReply {
  readonly text: string;
  /** Status of the first response. */
  readonly status: number;
  /** Status lines of every response on the connection, in order. */
  readonly statuses: readonly number[];
  /** Headers of the first response, lower-cased names. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly body: string;
  /** The server ended the connection (rather than the client giving up after maxMs). */
  readonly closedByServer: boolean;
  /** From connecting to the end of the exchange. */
  readonly ms: number;
  /** Filler body bytes the client managed to hand to the socket before the server closed it. */
  readonly bodyBytesWritten: number;
}

/**
 * Raw bytes to the gateway, for what Node's client would normalise away; then, when `bodyBytes` is
 * given, up to that many bytes of filler body in 64 KB chunks (with backpressure). Collects every
 * answer until the server closes or maxMs passes.
 */
export function rawExchange(port: number, payload: string, maxMs = 3_000, bodyBytes = 0): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let written = 0;
    let done = false;
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(hard);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ ...parseFirstResponse(text), statuses: statusLines(text), closedByServer, ms: Date.now() - started, bodyBytesWritten: written });
    };
    const hard = setTimeout(() => finish(false), maxMs);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = (): void => {
      while (written < bodyBytes && !socket.destroyed) {
        written += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    socket.on('connect', () => {
      socket.write(payload, 'latin1');
      pump();
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    // EPIPE/ECONNRESET while still sending body: the server closed on us, which is the point.
    socket.on('error', (err) => (chunks.length > 0 || written > 0 ? finish(true) : reject(err)));
  });
}

/**
 * Writes the pieces to the gateway with a pause of gapMs after each (separate TCP segments on
 * loopback; strings as latin1) and collects every answer until the server closes or maxMs passes;
 * with closeEarly the client hangs up right after the last piece.
 */
export function segmentedExchange(port: number, pieces: readonly (string | Buffer)[], options: { gapMs: number; maxMs: number; closeEarly?: boolean }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(hard);
      socket.destroy();
      resolve(Buffer.concat(got).toString('latin1'));
    };
    const hard = setTimeout(finish, options.maxMs);
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', (e) => (got.length > 0 ? finish() : reject(e)));
    socket.on('connect', async () => {
      for (const piece of pieces) {
        if (socket.destroyed) return;
        if (typeof piece === 'string') socket.write(piece, 'latin1');
        else socket.write(piece);
        await new Promise((r) => setTimeout(r, options.gapMs));
      }
      if (options.closeEarly === true) finish();
    });
  });
}

/** Status, lower-cased headers and body of the first response in raw bytes read as latin1. */
export function parseFirstResponse(text: string): { text: string; status: number; headers: Map<string, string[]>; body: string } {
  const [head = '', ...rest] = text.split('\r\n\r\n');
  const headers = new Map<string, string[]>();
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    const name = line.slice(0, i).toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(i + 1).trim()]);
  }
  return { text, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), headers, body: rest.join('\r\n\r\n') };
}

/** Status codes of the responses in a byte stream, each framed by its Content-Length or chunked coding. */
function statusLines(text: string): number[] {
  const out: number[] = [];
  let at = 0;
  while (at < text.length) {
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(text.slice(at, at + 13));
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (m === null || headEnd < 0) break;
    out.push(Number(m[1]));
    const head = text.slice(at, headEnd).toLowerCase();
    at = headEnd + 4;
    const length = /\r\ncontent-length: *(\d+)/.exec(head);
    if (/\r\ntransfer-encoding: *chunked/.test(head)) {
      for (;;) {
        const lineEnd = text.indexOf('\r\n', at);
        if (lineEnd < 0) return out;
        const size = parseInt(text.slice(at, lineEnd), 16);
        at = lineEnd + 2 + size + 2;
        if (size === 0 || Number.isNaN(size)) break;
      }
    } else if (length !== null) at += Number(length[1]);
    else if (!/^HTTP\/1\.1 (?:1\d\d|204|304) /.test(text.slice(headEnd - head.length, headEnd))) break;
  }
  return out;
}
