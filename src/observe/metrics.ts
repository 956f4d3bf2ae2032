import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { RequestHistogram, SeriesIndex } from './histogram.ts';
import type { BreakGlassGrant } from '../config/compile.ts';
import type { RequestRecord } from './record.ts';

// Stable names, closed label sets (STYLE rule 10): never a subject, a token or a raw path.
const KNOWN_RPC = new Set([
  'initialize', 'ping', 'tools/list', 'tools/call', 'resources/list', 'resources/read', 'resources/templates/list',
  'resources/subscribe', 'resources/unsubscribe', 'prompts/list', 'prompts/get', 'completion/complete',
  'logging/setLevel', 'notifications/initialized', 'notifications/cancelled', 'notifications/progress',
  'notifications/roots/list_changed', 'response',
]);

const GAUGES_NAMED_LIKE_COUNTERS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export interface Metrics {
  readonly registry: Registry;
  observe(record: RequestRecord, gatewaySeconds: number | undefined, upstreamSeconds: number | undefined): void;
  jwksFetch(issuer: string, result: string): void;
  configReload(result: 'success' | 'failure'): void;
  streamOpened(upstream: string): void;
  streamClosed(upstream: string): void;
  /** The shared rate-limit store became unreachable (true: local fallback) or answers again. */
  rateLimitFallback(active: boolean): void;
  rateLimitFallbackCheck(): void;
  /** A listed tool's definition differs from its pin (changed) or has none in the pin file (new). */
  toolPinChange(upstream: string, change: 'new' | 'changed'): void;
}

export interface MetricSources {
  /** Read at scrape time, so the values are never stale. */
  readonly keys: () => readonly { issuer: string; keys: number; staleSeconds: number }[];
  readonly tokenCache: () => { hits: number; misses: number };
  /** The serving config's break-glass grants and the gateway's clock, for the active and expiry gauges. */
  readonly breakGlass?: { readonly grants: () => readonly BreakGlassGrant[]; readonly now: () => number };
}

export function createMetrics(sources: MetricSources): Metrics {
  const registry = defaultRegistry();
  const countRequest = requestCounter(registry);
  const duration = new RequestHistogram({
    name: 'mcp_warden_request_duration_seconds',
    help: 'Time spent per request: phase="gateway" is the gateway\'s own work before forwarding, phase="upstream" the wait for the upstream\'s response headers',
    labelNames: ['upstream', 'phase'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const jwksFetches = new Counter({ name: 'mcp_warden_jwks_fetch_total', help: 'Signing key fetches by issuer and result', labelNames: ['issuer', 'result'], registers: [registry] });
  registerScraped(registry, sources);
  const streams = new Gauge({ name: 'mcp_warden_active_streams', help: 'Open SSE streams per upstream', labelNames: ['upstream'], registers: [registry] });
  const reloads = new Counter({ name: 'mcp_warden_config_reloads_total', help: 'Configuration reloads by result', labelNames: ['result'], registers: [registry] });
  // By upstream and rule name only (both from the config: a closed set), never by subject.
  const limited = new Counter({ name: 'mcp_warden_rate_limited_total', help: 'Calls refused by a rate limit or quota, by upstream and rule', labelNames: ['upstream', 'rule'], registers: [registry] });
  const fallback = new Gauge({ name: 'mcp_warden_rate_limit_fallback', help: '1 while the shared rate-limit store is unreachable and each replica enforces limits / replicas locally', registers: [registry] });
  const fallbackChecks = new Counter({ name: 'mcp_warden_rate_limit_fallback_checks_total', help: 'Calls judged by the local fallback while the shared rate-limit store was unreachable', registers: [registry] });
  const pinChanges = new Counter({ name: 'mcp_warden_tool_pin_changes_total', help: 'Listed tool definitions that differ from their pin, by upstream and change (new, changed)', labelNames: ['upstream', 'change'], registers: [registry] });
  // Labels from the config (grant name, upstream name) and the outcome: closed sets.
  const breakGlass = new Counter({ name: 'mcp_warden_break_glass_requests_total', help: 'Requests made with a break-glass grant\'s token, by grant, upstream and outcome', labelNames: ['grant', 'upstream', 'outcome'], registers: [registry] });
  registerBreakGlassGauges(registry, sources);
  reloads.inc({ result: 'success' }, 0);
  reloads.inc({ result: 'failure' }, 0);

  return {
    registry,
    observe(r, gatewaySeconds, upstreamSeconds) {
      const upstream = r.upstream ?? 'none';
      countRequest(upstream, methodLabel(r), r.outcome, r.reason ?? 'none');
      if (r.breakGlass !== undefined) breakGlass.inc({ grant: r.breakGlass.name, upstream, outcome: r.outcome });
      if (r.reason === 'rate_limited' && r.rule !== undefined) limited.inc({ upstream, rule: r.rule });
      if (gatewaySeconds !== undefined) duration.observe([upstream, 'gateway'], gatewaySeconds);
      if (upstreamSeconds !== undefined) duration.observe([upstream, 'upstream'], upstreamSeconds);
    },
    jwksFetch(issuer, result) {
      jwksFetches.inc({ issuer, result });
    },
    configReload(result) {
      reloads.inc({ result });
    },
    streamOpened(upstream) {
      streams.inc({ upstream });
    },
    streamClosed(upstream) {
      streams.dec({ upstream });
    },
    rateLimitFallback(active) {
      fallback.set(active ? 1 : 0);
    },
    rateLimitFallbackCheck() {
      fallbackChecks.inc();
    },
    toolPinChange(upstream, change) {
      pinChanges.inc({ upstream, change });
    },
  };
}

/** Node's default metrics, prefixed, without the three gauges promtool refuses. */
function defaultRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mcp_warden_' });
  // prom-client names three gauges `*_total`, which Prometheus reserves for counters (`promtool check
  // metrics` fails, issue 24 §3). It has no option to rename them; the per-type gauges they sum stay
  // (`sum(mcp_warden_nodejs_active_handles)` is the same number).
  for (const name of GAUGES_NAMED_LIKE_COUNTERS) registry.removeSingleMetric(`mcp_warden_${name}`);
  return registry;
}

/** mcp_warden_requests_total, counted in a map and handed to prom-client when scraped. */
function requestCounter(registry: Registry): (upstream: string, method: string, outcome: string, reason: string) => void {
  // Counted here and handed to prom-client at scrape time (issue 25): prom-client's inc() builds a
  // label hash and validates the label object on every call, a Map lookup per label does here. The label sets
  // are closed (config names, known methods, the reason table), so the map stays small.
  type Count = { readonly labels: Record<'upstream' | 'method' | 'outcome' | 'reason', string>; n: number };
  const index = new SeriesIndex<Count>(([upstream, method, outcome, reason]) => ({ labels: { upstream, method, outcome, reason } as Count['labels'], n: 0 }));
  new Counter({
    name: 'mcp_warden_requests_total', help: 'Requests by upstream, method, outcome and reason', labelNames: ['upstream', 'method', 'outcome', 'reason'], registers: [registry],
    collect() {
      this.reset();
      for (const c of index.all) this.inc(c.labels, c.n);
    },
  });
  return (upstream, method, outcome, reason) => {
    index.get([upstream, method, outcome, reason]).n++;
  };
}

/** The method label: a known MCP method, `batch`, `other`, or the HTTP method of a body-less request. */
function methodLabel(r: RequestRecord): string {
  if (r.rpcMethod === undefined) {
    const http = r.httpMethod.toLowerCase();
    return http === 'get' || http === 'delete' ? `http_${http}` : 'none';
  }
  if (r.rpcMethod.startsWith('batch(')) return 'batch';
  return KNOWN_RPC.has(r.rpcMethod) ? r.rpcMethod : 'other';
}

/**
 * Break-glass grants as alerting sees them (README "Break-glass access"): 1 while a grant's window is
 * open, read against the clock at scrape time, and each grant's expiresAt as a Unix timestamp.
 */
function registerBreakGlassGauges(registry: Registry, sources: MetricSources): void {
  const source = sources.breakGlass;
  new Gauge({
    name: 'mcp_warden_break_glass_active', help: '1 while the break-glass grant\'s window is open, else 0', labelNames: ['grant', 'ticket'], registers: [registry],
    collect() {
      this.reset();
      if (source === undefined) return;
      const nowMs = source.now();
      for (const g of source.grants()) this.set({ grant: g.name, ticket: g.ticket }, g.activatedAtMs <= nowMs && nowMs < g.expiresAtMs ? 1 : 0);
    },
  });
  new Gauge({
    name: 'mcp_warden_break_glass_expiry_timestamp_seconds', help: 'When the break-glass grant expires (Unix time)', labelNames: ['grant', 'ticket'], registers: [registry],
    collect() {
      this.reset();
      for (const g of source?.grants() ?? []) this.set({ grant: g.name, ticket: g.ticket }, g.expiresAtMs / 1000);
    },
  });
}

/** Metrics read from their sources at scrape time (key caches, token cache), never stale. */
function registerScraped(registry: Registry, sources: MetricSources): void {
  new Gauge({
    name: 'mcp_warden_jwks_keys', help: 'Usable signing keys per issuer', labelNames: ['issuer'], registers: [registry],
    collect() {
      this.reset();
      for (const k of sources.keys()) this.set({ issuer: k.issuer }, k.keys);
    },
  });
  new Gauge({
    name: 'mcp_warden_jwks_stale_seconds', help: 'Seconds the issuer\'s keys are past their fresh lifetime (0 = fresh)', labelNames: ['issuer'], registers: [registry],
    collect() {
      this.reset();
      for (const k of sources.keys()) this.set({ issuer: k.issuer }, k.staleSeconds);
    },
  });
  new Counter({
    name: 'mcp_warden_token_cache_hits_total', help: 'Verified-token cache hits', registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.tokenCache().hits);
    },
  });
  new Counter({
    name: 'mcp_warden_token_cache_misses_total', help: 'Verified-token cache misses', registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.tokenCache().misses);
    },
  });
}
