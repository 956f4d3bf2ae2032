import { hash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { secretDigest } from '../lib/bearer-secret.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge } from 'prom-client';
import type { IssuerKeys } from '../auth/keys.ts';
import type { Principal } from '../auth/principal.ts';
import type { Config } from '../config/compile.ts';
import { ConfigError } from '../config/errors.ts';
import type { Logger } from '../observe/log.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { StreamRegistry } from '../proxy/stream.ts';
import type { Reason } from '../reasons.ts';
import type { RevocationConfig, TransmitterConfig } from '../config/compile.ts';
import type { Revocation } from './entries.ts';
import { Poller, type PollOutcome } from './poll.ts';
import { handlePush, type PushTarget } from './push.ts';
import { receiveSet, SeenSets, type Receipt, type ReceiverDeps } from './receiver.ts';
import { RevocationStore } from './store.ts';

export interface RevocationDeps {
  readonly now: () => number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly streams: StreamRegistry;
  /** The key caches of the state now serving (SETs are verified with their issuer's keys). */
  readonly keys: () => ReadonlyMap<string, IssuerKeys>;
}

/** One configured transmitter at run time: its delivery and whether its stream is being read. */
interface Stream {
  readonly t: TransmitterConfig;
  readonly poller: Poller | undefined;
  readonly push: PushTarget | undefined;
  /** SHA-256 over the secrets read from its files, to tell a rotated secret at reload. */
  readonly secrets: string;
  sinceMs: number;
  lastOkMs: number | undefined;
  lastError: string | undefined;
  stale: boolean;
}

const MIN_PUSH_SECRET = 32;

/**
 * The gateway's revocation state and its SSF receivers (README "Revocation"). Lives as long as the
 * gateway: a reload re-reads the transmitters, never the entries. Every replica holds its own entries,
 * filled by pulling the same streams, so no shared store is needed.
 */
export class Revocations {
  readonly #deps: RevocationDeps;
  readonly #store: RevocationStore;
  readonly #seen: SeenSets;
  readonly #receiverId = randomUUID();
  readonly #counters: { readonly applied: Counter; readonly sets: Counter; readonly polls: Counter };
  #config: RevocationConfig;
  #streams = new Map<string, Stream>();
  #watch: NodeJS.Timeout | undefined;

  constructor(config: Config, deps: RevocationDeps) {
    this.#deps = deps;
    this.#config = config.revocation;
    this.#store = new RevocationStore(config.revocation.maxEntries);
    this.#seen = new SeenSets(config.revocation.maxSeenSets);
    this.#counters = this.#registerMetrics(deps.metrics);
    this.#streams = this.#build(config);
  }

  /** Per request, after authentication (cache hit or not): a reason to refuse this principal, or none. */
  check(p: Principal): Reason | undefined {
    const stream = this.#streams.get(p.issuerName);
    // failClosed: while the stream is not known to be read, a revocation may be missing: refuse.
    if (stream !== undefined && stream.t.failClosed && this.#isStale(stream, this.#deps.now())) return 'revocation_stale';
    const verdict = this.#store.check(p, this.#deps.now());
    return verdict === 'revoked' ? 'token_revoked' : verdict === 'overflow' ? 'revocation_stale' : undefined;
  }

  /** Applies revocations (from a SET, or the embedded issuer's own) and ends the open streams they cut. */
  apply(issuer: string, jti: string, revocations: readonly Revocation[]): void {
    const now = this.#deps.now();
    let added = 0;
    for (const r of revocations) {
      const result = this.#store.add(r, now);
      this.#counters.applied.inc({ issuer, result });
      if (result === 'added') added++;
      if (result === 'overflow') this.#deps.logger.error({ event: 'revocation_overflow', issuer }, 'revocation store full: the issuer\'s tokens are refused until the entry would have expired');
    }
    this.#deps.logger.info({ event: 'revocation_applied', issuer, setJti: jti, entries: revocations.map((r) => r.kind), added }, 'revocation applied');
    if (revocations.length > 0) this.#endStreams(now);
  }

  start(): void {
    for (const s of this.#streams.values()) s.poller?.start();
    this.#watch ??= setInterval(() => this.#watchStreams(), 250);
    this.#watch.unref();
  }

  /** A reload: the transmitters as now configured (entries and seen SETs stay). Throws ConfigError first. */
  reconfigure(next: Config): void {
    // The secret files are read again as well: a rotated (say leaked) push or poll secret must not stay
    // in force because the YAML around it did not change.
    const built = this.#build(next);
    if (JSON.stringify(next.revocation) === JSON.stringify(this.#config) && [...built].every(([name, s]) => this.#streams.get(name)?.secrets === s.secrets)) {
      for (const s of built.values()) s.poller?.stop();
      return;
    }
    for (const s of this.#streams.values()) s.poller?.stop();
    // What is known of a stream's reading carries over: a reload must not make a read stream stale.
    for (const [name, s] of built) {
      const old = this.#streams.get(name);
      if (old !== undefined) Object.assign(s, { sinceMs: old.sinceMs, lastOkMs: old.lastOkMs, stale: old.stale });
    }
    this.#config = next.revocation;
    this.#streams = built;
    for (const s of built.values()) s.poller?.start();
  }

  stop(): void {
    for (const s of this.#streams.values()) s.poller?.stop();
    if (this.#watch !== undefined) clearInterval(this.#watch);
    this.#watch = undefined;
  }

  /** Not ready while a failClosed stream is stale: this replica would refuse that issuer's tokens. */
  ready(): boolean {
    const now = this.#deps.now();
    return [...this.#streams.values()].every((s) => !s.t.failClosed || !this.#isStale(s, now));
  }

  /** The /readyz member: each stream's state, and how many entries are held. */
  status(): Record<string, unknown> {
    const now = this.#deps.now();
    return {
      entries: this.#store.size,
      overflowing: this.#store.overflowing(now),
      streams: [...this.#streams.values()].map((s) => ({
        issuer: s.t.issuer.name,
        delivery: [s.poller === undefined ? undefined : 'poll', s.push === undefined ? undefined : 'push'].filter((d) => d !== undefined),
        ...(s.poller === undefined ? {} : { stale: this.#isStale(s, now), failClosed: s.t.failClosed, lastReadSecondsAgo: s.lastOkMs === undefined ? null : Math.round((now - s.lastOkMs) / 1000), ...(s.lastError === undefined ? {} : { lastError: s.lastError }) }),
      })),
    };
  }

  /** The admin listener's RFC 8935 endpoint; false for paths that are not its. */
  handleAdmin(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    return handlePush(req, res, path, (name) => this.#streams.get(name)?.push);
  }

  #build(config: Config): Map<string, Stream> {
    const deps: ReceiverDeps = {
      keys: (name) => this.#deps.keys().get(name),
      audience: () => this.#config.audience,
      seen: this.#seen,
      apply: (t, jti, revocations) => this.apply(t.issuer.name, jti, revocations),
      now: this.#deps.now,
    };
    const streams = new Map<string, Stream>();
    config.revocation.transmitters.forEach((t, i) => {
      const receive = (token: string): Promise<Receipt> => receiveSet(token, t, deps).then((r) => this.#report(t, r));
      const authorization = t.poll?.authorizationFile === undefined ? undefined : readSecret(config, t.poll.authorizationFile, ['revocation', 'transmitters', i, 'poll', 'authorizationFile'], 1);
      const pushSecret = t.push === undefined ? undefined : readSecret(config, t.push.secretFile, ['revocation', 'transmitters', i, 'push', 'secretFile'], MIN_PUSH_SECRET);
      const secrets = hash('sha256', JSON.stringify([authorization ?? null, pushSecret ?? null]), 'hex');
      const stream: Stream = { t, secrets, poller: undefined, push: undefined, sinceMs: this.#deps.now(), lastOkMs: undefined, lastError: undefined, stale: false };
      const poller = t.poll === undefined ? undefined : new Poller(t, this.#receiverId, authorization, receive, (o) => this.#polled(stream, o));
      const push = pushSecret === undefined ? undefined : { secretHash: secretDigest(pushSecret), receive };
      streams.set(t.issuer.name, Object.assign(stream, { poller, push }));
    });
    return streams;
  }

  #report(t: TransmitterConfig, receipt: Receipt): Receipt {
    const issuer = t.issuer.name;
    this.#counters.sets.inc({ issuer, result: receipt.kind });
    if (receipt.kind === 'refused') this.#deps.logger.warn({ event: 'set_refused', issuer, err: receipt.err, description: receipt.description }, 'security event token refused');
    if (receipt.kind === 'replayed') this.#deps.logger.info({ event: 'set_replayed', issuer, setJti: receipt.jti }, 'security event token already received');
    if (receipt.kind === 'accepted' && receipt.mapped.ignored.length > 0) this.#deps.logger.info({ event: 'set_events_ignored', issuer, types: receipt.mapped.ignored.slice(0, 8) }, 'event types without a revocation meaning were ignored');
    return receipt;
  }

  #polled(stream: Stream, outcome: PollOutcome): void {
    this.#counters.polls.inc({ issuer: stream.t.issuer.name, result: outcome.ok ? 'ok' : 'error' });
    if (outcome.ok) {
      stream.lastOkMs = this.#deps.now();
      stream.lastError = undefined;
    } else if (stream.lastError !== outcome.error) {
      stream.lastError = outcome.error;
      this.#deps.logger.warn({ event: 'ssf_poll_failed', issuer: stream.t.issuer.name, error: outcome.error }, 'revocation stream poll failed');
    }
    this.#watchStreams();
  }

  #isStale(s: Stream, now: number): boolean {
    if (s.poller === undefined) return false;
    // Before the first successful read nothing is known: stale at once for failClosed, after the bound otherwise.
    if (s.lastOkMs === undefined) return s.t.failClosed || now - s.sinceMs > s.t.staleAfterMs;
    return now - s.lastOkMs > s.t.staleAfterMs;
  }

  /** Reports changes of staleness; a failClosed stream going stale ends its issuer's open streams. */
  #watchStreams(): void {
    const now = this.#deps.now();
    for (const s of this.#streams.values()) {
      const stale = this.#isStale(s, now);
      if (stale === s.stale) continue;
      s.stale = stale;
      this.#deps.logger[stale ? 'error' : 'info']({ event: 'ssf_stream', issuer: s.t.issuer.name, stale, failClosed: s.t.failClosed }, stale ? 'revocation stream unreadable past its bound' : 'revocation stream read again');
      if (stale && s.t.failClosed) this.#deps.streams.endWhere((o) => (o.principal.issuerName === s.t.issuer.name ? 'revocation_stale' : undefined));
    }
  }

  #endStreams(now: number): void {
    this.#deps.streams.endWhere((s) => {
      const verdict = this.#store.check(s.principal, now);
      return verdict === 'revoked' ? 'token_revoked' : verdict === 'overflow' ? 'revocation_stale' : undefined;
    });
  }

  #registerMetrics(metrics: Metrics): { readonly applied: Counter; readonly sets: Counter; readonly polls: Counter } {
    const registry = metrics.registry;
    const store = (): RevocationStore => this.#store;
    const streams = (): Iterable<Stream> => this.#streams.values();
    const isStale = (s: Stream): boolean => this.#isStale(s, this.#deps.now());
    new Gauge({ name: 'mcp_warden_revocation_entries', help: 'Live revocation entries held by this replica', registers: [registry], collect() { this.set(store().size); } });
    new Gauge({
      name: 'mcp_warden_ssf_stream_stale', help: '1 while an SSF poll stream has not been read within its staleAfterSeconds', labelNames: ['issuer'], registers: [registry],
      collect() {
        this.reset();
        for (const s of streams()) if (s.poller !== undefined) this.set({ issuer: s.t.issuer.name }, isStale(s) ? 1 : 0);
      },
    });
    return {
      sets: new Counter({ name: 'mcp_warden_ssf_sets_total', help: 'Security event tokens received, by issuer and result (accepted, replayed, refused, retry)', labelNames: ['issuer', 'result'], registers: [registry] }),
      polls: new Counter({ name: 'mcp_warden_ssf_polls_total', help: 'SSF poll requests by issuer and result', labelNames: ['issuer', 'result'], registers: [registry] }),
      applied: new Counter({ name: 'mcp_warden_revocations_total', help: 'Revocation entries received, by issuer and result (added, covered, expired, overflow)', labelNames: ['issuer', 'result'], registers: [registry] }),
    };
  }
}

/** A bearer secret from a file (never inline in the config), trimmed of its line end. */
function readSecret(config: Config, file: string, key: readonly (string | number)[], minLength: number): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError([{ file: config.file, line: undefined, key: key.join('.'), message: `cannot read the secret file (${(err as NodeJS.ErrnoException).code ?? 'error'})` }]);
  }
  if (text.length < minLength || /\s/.test(text)) throw new ConfigError([{ file: config.file, line: undefined, key: key.join('.'), message: `the secret must be at least ${minLength} characters with no whitespace` }]);
  return text;
}
