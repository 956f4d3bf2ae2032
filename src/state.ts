import { readFileSync } from 'node:fs';
import type { Config, IssuerConfig } from './config/compile.ts';
import { ConfigError } from './config/errors.ts';
import { IssuerKeys } from './auth/keys.ts';
import { introspectionReporter, logFetchChange } from './observe/fetch-log.ts';
import { carryKeys } from './auth/carry.ts';
import { DpopReplayCache } from './auth/dpop-replay.ts';
import { createSenderCheck } from './auth/sender.ts';
import { TokenCache } from './auth/token-cache.ts';
import { createAuthenticator } from './auth/verify.ts';
import { createIntrospector } from './auth/introspect.ts';
import { createAssertionMinter } from './identity/assertion.ts';
import { loadGatewayKeys } from './identity/keys.ts';
import { createSessionBinder } from './identity/session.ts';
import { auditRecord } from './observe/audit.ts';
import type { AuditChain, AuditSigner } from './observe/audit-chain.ts';
import type { Logger } from './observe/log.ts';
import type { Metrics } from './observe/metrics.ts';
import { createPipeline, type Handler, type PipelineDeps } from './pipeline.ts';
import { createCallLimits } from './limits/calls.ts';
import { createLimitStore, type LimitStore } from './limits/store.ts';
import { createPools, type Pools } from './proxy/forward.ts';
import type { StreamRegistry } from './proxy/stream.ts';
import { endIssuerStreams, endKeyStreams } from './proxy/rejudge.ts';
import { createRouter } from './route/match.ts';
import { pinReporter, registerPins } from './policy/pins.ts';
import { createWellKnown } from './route/well-known.ts';
import { carriedTracing, type Tracing } from './observe/trace.ts';
import type { Revocations } from './revoke/service.ts';

/** Everything built from one Config; requests take the state current when they arrive. */
export interface State {
  readonly config: Config;
  readonly handle: Handler;
  /** What the pipeline was built from (bench/stages.ts builds the stages from it). */
  readonly deps: PipelineDeps;
  readonly issuerKeys: ReadonlyMap<string, IssuerKeys>;
  readonly pools: Pools;
  readonly cache: TokenCache;
  /** Rate-limit buckets; kept across a reload that leaves rateLimitStore unchanged. */
  readonly limitStore: LimitStore;
  /** DPoP jti values seen; carried across every reload, so a reload never re-opens a replay. */
  readonly dpopReplay: DpopReplayCache;
  /** The identity-assertion key, which also signs audit checkpoints. */
  readonly signer: AuditSigner;
  /** OpenTelemetry traces; kept across a reload that leaves telemetry.traces unchanged. */
  readonly tracing: Tracing;
}

/** What outlives a reload: the clock, logs, metrics, open streams, and the state now serving. */
export interface Shared {
  readonly now: () => number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly streams: StreamRegistry;
  /** This process's audit chain: it outlives reloads. */
  readonly audit: AuditChain;
  readonly current: () => State | undefined;
  /** Revocation entries and SSF receivers: outlive every reload. */
  readonly revocations: Revocations;
}

/** Builds everything once from a validated Config (STYLE rule 2); requests only run closures. */
export async function buildState(config: Config, previous: State | undefined, shared: Shared): Promise<State> {
  const { now, logger, metrics, streams } = shared;
  const gatewayKeys = await loadGatewayKeys(config.identity.signingKeyFile, config.file, config.identity.signingKeyFileLine);
  const cache = new TokenCache(config.limits.tokenCacheEntries);
  const issuerKeys = new Map<string, IssuerKeys>();
  for (const issuer of config.issuers) {
    if (issuer.introspection !== undefined) continue; // validated at its introspection endpoint, no JWKS
    issuerKeys.set(issuer.name, await carryKeys(issuer, previous, gatewayKeys.thumbprints, () => newIssuerKeys(issuer, shared, gatewayKeys.thumbprints)));
  }
  let pools: Pools;
  try {
    pools = createPools(config.upstreams, (path) => readFileSync(path), now);
  } catch (err) {
    throw new ConfigError([{ file: config.file, line: undefined, key: 'upstreams.tls', message: `cannot read a TLS file (${(err as NodeJS.ErrnoException).code ?? 'error'})` }]);
  }
  const limitStore = carriedLimitStore(config, previous) ?? newLimitStore(config, shared);
  // A reload never forgets a seen jti: the same cache, or a new size holding the old entries.
  const dpopReplay = previous?.config.dpop.replayCacheEntries === config.dpop.replayCacheEntries ? previous.dpopReplay : new DpopReplayCache(config.dpop.replayCacheEntries, previous?.dpopReplay);
  registerPins(config, previous?.config, pinReporter(logger, metrics));
  const tracing = await carriedTracing(config.traces, previous?.tracing);
  const deps: PipelineDeps = {
    config,
    router: createRouter(config.upstreams),
    wellKnown: createWellKnown(config, gatewayKeys.publicJwks),
    authenticate: createAuthenticator({ keys: issuerKeys, cache, introspect: createIntrospector(now, introspectionReporter(shared)), now }),
    checkSender: createSenderCheck(config, { now, replay: dpopReplay, nonceSecret: gatewayKeys.sessionSecrets[0] as Buffer }),
    sessions: createSessionBinder(gatewayKeys.sessionSecrets),
    mintAssertion: createAssertionMinter({ keys: gatewayKeys, issuer: config.publicUrl.origin, ttlSeconds: config.identity.ttlSeconds, now, maxEntries: config.limits.tokenCacheEntries }),
    pools,
    now,
    streams,
    limitCalls: createCallLimits(limitStore, now),
    traced: tracing.stage,
    revocations: shared.revocations,
    onRecord: (record) => {
      auditRecord(shared.audit, record, now);
      metrics.observe(record, record.gatewaySeconds, record.upstreamMs === undefined ? undefined : record.upstreamMs / 1000);
    },
    onStreamExpired: (record) => logger.info({ event: 'stream_closed', requestId: record.requestId, upstream: record.upstream, sub: record.sub, clientId: record.clientId, reason: record.reason }, 'stream ended: token or break-glass grant expired'),
  };
  return { config, handle: createPipeline(deps), deps, issuerKeys, pools, cache, limitStore, dpopReplay, signer: gatewayKeys.signer, tracing };
}

function carriedLimitStore(config: Config, previous: State | undefined): LimitStore | undefined {
  const old = previous?.limitStore;
  return old !== undefined && old.signature === JSON.stringify(config.rateLimitStore) ? old : undefined;
}

function newLimitStore(config: Config, shared: Shared): LimitStore {
  const { logger, metrics } = shared;
  return createLimitStore(config.rateLimitStore, {
    onFallback: (active) => {
      metrics.rateLimitFallback(active);
      // Logged on change only; the URL may hold a password and is never logged.
      logger[active ? 'warn' : 'info']({ event: 'rate_limit_store', mode: active ? 'fallback' : 'shared' }, active ? 'rate-limit store unreachable: local limits divided by replicas' : 'rate-limit store reachable: shared limits');
    },
    onFallbackCheck: () => metrics.rateLimitFallbackCheck(),
  });
}

function newIssuerKeys(issuer: IssuerConfig, shared: Shared, gatewayThumbprints: ReadonlySet<string>): IssuerKeys {
  const { now, logger, metrics } = shared;
  let lastResult: string | undefined;
  return new IssuerKeys(issuer, {
    now,
    onKeysRemoved: (name, kids) => {
      shared.current()?.cache.dropKeys(name, kids);
      endKeyStreams(shared.streams, name, kids);
    },
    onUnusable: (name) => endIssuerStreams(shared.streams, name),
    gatewayThumbprints,
    onGatewayKey: (name, kids) => logger.error({ event: 'jwks_gateway_key', issuer: name, kids }, "issuer key set publishes the gateway's own signing key; those keys are dropped"),
    onFetch: (name, result, failure) => {
      metrics.jwksFetch(name, result);
      lastResult = logFetchChange(logger, lastResult, { event: 'jwks_fetch', issuer: name, result, ...failure }, result === 'ok' ? 'signing keys fetched' : 'signing key fetch failed');
    },
  });
}
