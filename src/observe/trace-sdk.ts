import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Attributes, type Span } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import type { TracesConfig } from '../config/compile.ts';
import type { Denial } from '../reasons.ts';
import type { RequestContext } from './context.ts';
import type { RequestRecord } from './record.ts';
import { registerInjector, type StageTracer, type Tracing } from './trace.ts';

// Loaded only when telemetry.traces is configured (trace.ts imports this module dynamically).

/** One traced request: its server span and the stage span now running (the proxy's, when it injects). */
interface RequestSpans {
  readonly root: Span;
  current: Span | undefined;
}

// The stage that talks to the upstream is a client span (the upstream's own server span is its child).
const CLIENT_STAGES = new Set(['proxy']);

export function createSdkTracing(config: TracesConfig, signature: string): Tracing {
  const exporter = new OTLPTraceExporter({ ...(config.otlpEndpoint === undefined ? {} : { url: config.otlpEndpoint }), headers: { ...config.headers }, timeoutMillis: config.timeoutMs });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    // A client's sampled flag is followed (parent-based); traces the gateway starts are sampled at sampleRatio.
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    // Batched and bounded (2048 spans queued at most): a slow collector drops spans, never holds requests.
    spanProcessors: [new BatchSpanProcessor(exporter, { exportTimeoutMillis: config.timeoutMs })],
  });
  const tracer = provider.getTracer('mcp-warden');
  const propagator = new W3CTraceContextPropagator();
  const requests = new WeakMap<RequestContext, RequestSpans>();

  function open(ctx: RequestContext): RequestSpans {
    const known = requests.get(ctx);
    if (known !== undefined) return known;
    // W3C Trace Context §3: the client's traceparent (when valid) is the parent; else a new trace starts.
    const parent = propagator.extract(ROOT_CONTEXT, ctx.req.headers, defaultTextMapGetter);
    const root = tracer.startSpan('mcp-warden', { kind: SpanKind.SERVER, attributes: { 'http.request.method': ctx.req.method ?? '' } }, parent);
    const spans: RequestSpans = { root, current: undefined };
    requests.set(ctx, spans);
    registerInjector(ctx, (headers) => {
      delete headers['traceparent'];
      delete headers['tracestate'];
      propagator.inject(trace.setSpan(ROOT_CONTEXT, spans.current ?? root), headers, defaultTextMapSetter);
    });
    // The record is complete at close (context.ts's listener runs first): the request's facts go on the root span.
    ctx.res.once('close', () => endRoot(root, ctx));
    return spans;
  }

  const stage: StageTracer = (name, run) => (ctx, ...args) => {
    const spans = open(ctx);
    const span = tracer.startSpan(name, { kind: CLIENT_STAGES.has(name) ? SpanKind.CLIENT : SpanKind.INTERNAL }, trace.setSpan(ROOT_CONTEXT, spans.root));
    spans.current = span;
    const done = (step: unknown): void => {
      endStage(span, step);
      if (spans.current === span) spans.current = undefined;
    };
    let result: ReturnType<typeof run>;
    try {
      result = run(ctx, ...args);
    } catch (err) {
      done(FAILED);
      throw err;
    }
    if (!(result instanceof Promise)) {
      done(result);
      return result;
    }
    return result.then((step: unknown) => (done(step), step), (err: unknown) => (done(FAILED), Promise.reject(err))) as typeof result;
  };

  return {
    stage,
    signature,
    shutdown: () => provider.shutdown(),
  };
}

const FAILED = Object.freeze({ kind: 'deny', reason: 'internal_error' });

/** A stage that refused marks its span as an error with the reason (never a value or token). */
function endStage(span: Span, step: unknown): void {
  const kind = (step as { readonly kind?: unknown } | undefined)?.kind;
  if (kind === 'deny') {
    const { reason } = step as Denial;
    span.setAttribute('mcp_warden.reason', reason);
    span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
  }
  span.end();
}

/** The request's facts: upstream, MCP method, tool, decision, reason, status. Never a subject, token or argument. */
function endRoot(root: Span, ctx: RequestContext): void {
  const r: RequestRecord = ctx.record;
  const attributes: Attributes = { 'mcp_warden.decision': r.outcome };
  if (r.upstream !== undefined) attributes['mcp_warden.upstream'] = r.upstream;
  if (r.rpcMethod !== undefined) attributes['mcp.method.name'] = r.rpcMethod;
  if (r.tool !== undefined) attributes['gen_ai.tool.name'] = r.tool;
  if (r.reason !== undefined) attributes['mcp_warden.reason'] = r.reason;
  if (r.rule !== undefined) attributes['mcp_warden.rule'] = r.rule;
  if (r.status !== undefined) attributes['http.response.status_code'] = r.status;
  root.setAttributes(attributes);
  if (ctx.upstream !== undefined) root.updateName(`${ctx.req.method ?? ''} ${ctx.upstream.path}`);
  if (r.outcome === 'deny' || r.outcome === 'error') root.setStatus({ code: SpanStatusCode.ERROR, ...(r.reason === undefined ? {} : { message: r.reason }) });
  root.end();
}
