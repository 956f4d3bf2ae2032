import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Counts every byte that reaches the server's sockets ("the upstream received nothing" is asserted here) and tracks them for closing. */
export function meterSockets(server: Server, sockets: Set<Socket>, onBytes: (n: number) => void): void {
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('data', (d: Buffer) => onBytes(d.length));
    s.on('close', () => sockets.delete(s));
  });
}
