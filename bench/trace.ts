// `node bench/trace.ts` (issue 24 §4): what tracing costs a request, measured on the stage namer
// itself, without HTTP (an end-to-end run cannot resolve nanoseconds on a shared machine).
// off: the per-request work an untraced gateway adds (trace-context check on the forwarded headers,
// the injector lookup); the stage namer returns the stage itself, so a stage call costs nothing more.
// on: nine stage spans and the request span through the SDK, exported to nowhere reachable.
import { EventEmitter } from 'node:events';
import type { RequestContext } from '../src/observe/context.ts';
import { createTracing, injectTraceContext } from '../src/observe/trace.ts';
import { keepValidTraceContext } from '../src/observe/traceparent.ts';

const N = Number(process.env['BENCH_N'] ?? 200_000);
const STAGES = ['admission', 'authenticate', 'authorize.upstream', 'messages', 'authorize.messages', 'limits.streams', 'limits.calls', 'forward-identity', 'proxy'];
const step = { kind: 'next' };
const stage = (_ctx: RequestContext): typeof step => step;

function fakeContext(): RequestContext {
  const res = Object.assign(new EventEmitter(), { statusCode: 200 });
  const req = { method: 'POST', headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } };
  return { req, res, record: { outcome: 'allow', upstream: 'mcp', rpcMethod: 'tools/call', tool: 'search', status: 200 }, upstream: { path: '/mcp' } } as unknown as RequestContext;
}

function perRequest(stages: ((ctx: RequestContext) => unknown)[]): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const ctx = fakeContext();
    for (const s of stages) s(ctx);
    const headers: Record<string, string | string[]> = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'vendor=abc' };
    keepValidTraceContext(headers);
    injectTraceContext(ctx, headers);
    (ctx.res as unknown as EventEmitter).emit('close');
  }
  return Number(process.hrtime.bigint() - started) / N;
}

function baseline(): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const ctx = fakeContext();
    for (let s = 0; s < STAGES.length; s++) stage(ctx);
    const headers: Record<string, string | string[]> = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'vendor=abc' };
    if (headers['traceparent'] === undefined) throw new Error('unreachable');
    (ctx.res as unknown as EventEmitter).emit('close');
  }
  return Number(process.hrtime.bigint() - started) / N;
}

const off = await createTracing(undefined);
const on = await createTracing({ otlpEndpoint: 'http://127.0.0.1:9/v1/traces', serviceName: 'bench', sampleRatio: 1, headers: {}, timeoutMs: 100 });
const offStages = STAGES.map((name) => off.stage(name, stage));
const onStages = STAGES.map((name) => on.stage(name, stage));
console.log(`stage namer off returns the stage itself: ${offStages.every((s) => s === stage)}`);
for (let round = 0; round < 3; round++) {
  const b = baseline();
  const o = perRequest(offStages);
  const t = perRequest(onStages);
  console.log(`round ${round + 1}: ${N} requests, ns per request: no tracing code ${b.toFixed(0)}, tracing off ${o.toFixed(0)} (+${(o - b).toFixed(0)}), tracing on ${t.toFixed(0)} (+${(t - b).toFixed(0)})`);
}
await on.shutdown().catch(() => undefined);
