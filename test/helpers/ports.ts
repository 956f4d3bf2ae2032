import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/*
 * Ports a test must name before anything listens on them (a config file, a callback URL).
 *
 * A port taken with listen(0) and closed again comes from the kernel's ephemeral range, the same range
 * every outgoing connection's source port and every other listen(0) draws from: with many suites
 * connecting in parallel, one of them may hold it by the time the test listens (CI saw exactly that,
 * `EADDRINUSE` in a suite's set-up). So these ports come from below that range, where the kernel never
 * hands out a port by itself, and each vitest worker draws from a slice of its own, so two workers never
 * pick the same one. Each pick is still checked by binding it.
 */

const SLICE = 512;
const FLOOR = 10_000;

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > FLOOR + SLICE) return low;
  } catch {
    // Not Linux: the IANA dynamic range starts at 49152.
  }
  return 49_152;
}

function workerSlice(): { start: number; size: number } {
  const slices = Math.floor((ephemeralLow() - FLOOR) / SLICE);
  const pool = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 0);
  const index = (Number.isInteger(pool) ? pool : 0) % slices;
  return { start: FLOOR + index * SLICE, size: SLICE };
}

const slice = workerSlice();
let next = Math.floor(Math.random() * slice.size);
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function onePort(): Promise<number> {
  for (let tries = 0; tries < slice.size; tries++) {
    const port = slice.start + (next++ % slice.size);
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      // A long run may come round again; by then the earliest ports are long closed.
      if (handedOut.size > slice.size / 2) handedOut.delete(handedOut.values().next().value as number);
      return port;
    }
  }
  throw new Error(`no free port in 127.0.0.1:${slice.start}-${slice.start + slice.size - 1}`);
}

/** Ports free right now on 127.0.0.1, none of which the kernel would hand to anyone else by itself. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await onePort());
  return ports;
}

/** One port free right now on 127.0.0.1 (see freePorts). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}
