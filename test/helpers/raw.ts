import { connect } from 'node:net';

/**
 * Sends raw bytes and returns everything the server wrote until it closed the connection or went
 * quiet. Node's http client normalises away the malformed requests the smuggling cases need.
 */
export function rawRequest(port: number, payload: string | Buffer, quietMs = 300, maxMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let quiet: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(quiet);
      clearTimeout(hard);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const hard = setTimeout(finish, maxMs);
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      clearTimeout(quiet);
      quiet = setTimeout(finish, quietMs);
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', (err) => (chunks.length > 0 ? finish() : reject(err)));
  });
}

export function statusOf(raw: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return m === null ? 0 : Number(m[1]);
}
