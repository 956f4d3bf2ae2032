import { Agent, request } from 'node:http';
import { announceReady, serveIpc } from './ipc.ts';

// Added latency below saturation: an open-loop client sending a fixed rate over 50 keep-alive
// connections, each latency measured from the request's scheduled time (no coordinated omission).
// Under wrk's closed loop every target is saturated, so its p99 mostly measures queueing (c / rps).

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

serveIpc({
  run: async (arg) => {
    const { url, rate, seconds, connections, headers, body } = arg as { url: string; rate: number; seconds: number; connections: number; headers: Record<string, string>; body: string };
    const agent = new Agent({ keepAlive: true, maxSockets: connections });
    const target = new URL(url);
    const lat: number[] = [];
    let bad = 0;
    let inflight = 0;
    const total = Math.round(rate * seconds);
    const t0 = performance.now();
    const fire = (scheduled: number): void => {
      inflight++;
      const req = request(target, { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
        res.resume();
        res.on('end', () => {
          inflight--;
          if (res.statusCode !== 200) bad++;
          lat.push(performance.now() - scheduled);
        });
      });
      req.on('error', () => {
        inflight--;
        bad++;
      });
      req.end(body);
    };
    let sent = 0;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
        while (sent < due) fire(t0 + (sent++ / rate) * 1000);
        if (sent >= total) {
          clearInterval(tick);
          resolve();
        }
      }, 1);
    });
    const deadline = performance.now() + 10_000;
    while (inflight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    agent.destroy();
    const sorted = lat.sort((a, b) => a - b);
    return { requests: sorted.length, bad, p50ms: percentile(sorted, 50), p99ms: percentile(sorted, 99) };
  },
  exit: () => setImmediate(() => process.exit(0)),
});

announceReady({});
