import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { announceReady, serveIpc } from './ipc.ts';

// Holds many SSE streams, each on its own connection, and measures event delivery latency: the
// upstream stamps each event with process.hrtime (CLOCK_MONOTONIC, common to all processes here) just
// before writing it; this client subtracts that from its own clock on arrival.

interface Stream {
  readonly req: ClientRequest;
  res: IncomingMessage | undefined;
}

const streams: Stream[] = [];
let recording = false;
let latencies: number[] = [];
let events = 0;

function onData(state: { buf: string }, chunk: Buffer): void {
  const now = process.hrtime.bigint();
  state.buf += chunk.toString('latin1');
  let end: number;
  while ((end = state.buf.indexOf('\n\n')) !== -1) {
    const event = state.buf.slice(0, end);
    state.buf = state.buf.slice(end + 2);
    const m = /"t":"(\d+)"/.exec(event);
    if (m === null) continue;
    events++;
    if (recording) latencies.push(Number(now - BigInt(m[1] as string)) / 1e6);
  }
}

function openOne(url: URL, headers: Record<string, string>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(ok);
    };
    const req = request(url, { method: 'GET', headers, agent: false });
    const stream: Stream = { req, res: undefined };
    const timer = setTimeout(() => {
      req.destroy();
      done(false);
    }, timeoutMs);
    req.on('response', (res) => {
      stream.res = res;
      if (res.statusCode !== 200) {
        res.resume();
        return done(false);
      }
      const state = { buf: '' };
      res.on('data', (c: Buffer) => onData(state, c));
      res.on('error', () => undefined);
      streams.push(stream);
      done(true);
    });
    req.on('error', () => done(false));
    req.end();
  });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

let tokens: readonly string[] = [];
let used = 0;

serveIpc({
  tokens: (arg) => {
    tokens = arg as string[];
    used = 0;
    return tokens.length;
  },
  /** Opens `count` more streams, `parallel` at a time; resolves with how many opened. */
  open: async (arg) => {
    const { url, headers, count, parallel, timeoutMs, maxFailures } = arg as { url: string; headers: Record<string, string>; count: number; parallel: number; timeoutMs: number; maxFailures: number };
    // One token per stream, as many clients would hold them (the gateway caps streams per identity).
    const headersFor = (i: number): Record<string, string> => (tokens.length === 0 ? headers : { ...headers, authorization: `Bearer ${tokens[(used + i) % tokens.length] as string}` });
    const target = new URL(url);
    let opened = 0;
    let failed = 0;
    let next = 0;
    const started = Date.now();
    const worker = async (): Promise<void> => {
      // A target that stops opening streams (a connection cap) is reported, not waited on forever.
      while (next < count && failed < maxFailures) {
        const i = next++;
        if (await openOne(target, headersFor(i), timeoutMs)) opened++;
        else failed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
    used += next;
    return { opened, failed, total: streams.length, seconds: (Date.now() - started) / 1000 };
  },
  measure: async (arg) => {
    const { seconds } = arg as { seconds: number };
    latencies = [];
    const before = events;
    // This process's own event-loop delay beyond the 10 ms sampling interval: if high, the client bounds latency.
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    recording = true;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    recording = false;
    loop.disable();
    const sorted = latencies.sort((a, b) => a - b);
    return { events: events - before, p50ms: percentile(sorted, 50), p99ms: percentile(sorted, 99), maxms: sorted[sorted.length - 1] ?? NaN, clientLoopP99ms: Math.max(0, loop.percentile(99) / 1e6 - 10), open: streams.filter((s) => s.res !== undefined && !s.res.destroyed && !s.res.complete).length };
  },
  closeAll: () => {
    for (const s of streams.splice(0)) s.req.destroy();
    return true;
  },
  exit: () => {
    for (const s of streams.splice(0)) s.req.destroy();
    setImmediate(() => process.exit(0));
  },
});

announceReady({});
