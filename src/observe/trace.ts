import type { TracesConfig } from '../config/compile.ts';
import type { RequestContext } from './context.ts';

/**
 * Names a pipeline stage for tracing and returns the stage to call in its place. Tracing off, it
 * returns the stage itself: no wrapper, no span object, nothing per request.
 */
export type StageTracer = <A extends unknown[], R>(name: string, stage: (ctx: RequestContext, ...args: A) => R) => (ctx: RequestContext, ...args: A) => R;

/** OpenTelemetry traces for one config (README "Traces"). */
export interface Tracing {
  readonly stage: StageTracer;
  /** The config this was built from: a reload that leaves it unchanged keeps this one. */
  readonly signature: string;
  /** Exports what is still buffered, then stops. */
  shutdown(): Promise<void>;
}

/** Sets the upstream request's trace context from the current span of a request being traced. */
export type TraceInjector = (headers: Record<string, string | string[]>) => void;

// Per request, only while tracing is on: the trace-sdk module registers an injector when a request's
// first stage starts. A WeakMap so that a request that is never closed is no leak.
const injectors = new WeakMap<RequestContext, TraceInjector>();
// Until tracing first registers an injector, no request has one: the proxy stage skips the WeakMap
// lookup (issue 25). Once set it stays set, so a reload that turns tracing off only costs the lookup.
let anyInjector = false;

export function registerInjector(ctx: RequestContext, inject: TraceInjector): void {
  anyInjector = true;
  injectors.set(ctx, inject);
}

/**
 * The proxy stage calls this on the headers it sends: tracing on, traceparent/tracestate become the
 * gateway's upstream span (W3C Trace Context §3); tracing off, the client's validated values stay
 * (identity/request-headers.ts).
 */
export function injectTraceContext(ctx: RequestContext, headers: Record<string, string | string[]>): void {
  if (anyInjector) injectors.get(ctx)?.(headers);
}

const untraced: StageTracer = (_name, stage) => stage;

const OFF: Tracing = Object.freeze({ stage: untraced, signature: 'off', shutdown: () => Promise.resolve() });

/**
 * Off unless `telemetry.traces` is configured; the SDK and exporter are then loaded, and only then
 * (a dynamic import), so a gateway without traces never loads them.
 */
export async function createTracing(traces: TracesConfig | undefined): Promise<Tracing> {
  if (traces === undefined) return OFF;
  const { createSdkTracing } = await import('./trace-sdk.ts');
  return createSdkTracing(traces, JSON.stringify(traces));
}

/** The running one when the traces config is unchanged, else a new one (the caller stops the old). */
export async function carriedTracing(traces: TracesConfig | undefined, previous: Tracing | undefined): Promise<Tracing> {
  const signature = traces === undefined ? 'off' : JSON.stringify(traces);
  return previous !== undefined && previous.signature === signature ? previous : createTracing(traces);
}
