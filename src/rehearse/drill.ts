import type { Config, IssuerConfig, UpstreamConfig } from '../config/compile.ts';
import type { ControlId } from './controls.ts';
import type { DrillStatus } from './report.ts';
import type { AsMetadata, Client } from './tokens.ts';

/**
 * One drill module. The registry (registry.ts) is a list of these, run in order; a drill records one
 * or more result lines (each timed from the previous line of the same drill) and never throws on
 * purpose: a throw is recorded as a FAIL under its title.
 */
export interface Drill {
  /** Stable identifier (kebab-case), used in the evidence report. */
  readonly id: string;
  /** Human name; also the result line's name unless the drill records others. */
  readonly title: string;
  /** The controls a PASS of this drill is evidence for (controls.ts). */
  readonly controls: readonly ControlId[];
  run(ctx: DrillContext): Promise<void>;
}

export type RecordResult = (name: string, status: DrillStatus, detail: string) => void;

/** What the operator pointed rehearse at (CLI flags), resolved once. */
export interface RehearseTarget {
  /** Where the gateway is reached; default: the config's publicUrl origin. */
  readonly baseUrl: string;
  readonly client: Client | undefined;
  readonly rotate: (() => Promise<void>) | undefined;
  /** Upstream name → the URL its MCP server answers at without the gateway (--direct-url). */
  readonly directUrls: ReadonlyMap<string, string>;
  /** The gateway's identity-assertion key file, read locally (--gateway-key). */
  readonly gatewayKeyFile: string | undefined;
  /** Every replica (`--url`, repeated; default the base URL) the revocation drill must see refuse a revoked client. */
  readonly replicaUrls: readonly string[];
  /** A tool the step-up drill may call (it does, once, with the scope the 403 names): --step-up-tool. */
  readonly stepUpTool: { readonly upstream: string; readonly tool: string } | undefined;
  /** Run the local key-fetch outage drill. */
  readonly outage: boolean;
}

/** Tokens from the deployment's issuer, for drills that call through the gateway. */
export interface Live {
  readonly client: Client;
  readonly tokenEndpoint: string;
  /** A token for the first upstream, obtained when the source was made: issuance works. */
  readonly good: string;
  /** client_credentials for an upstream's audience, with its scopes unless others are given. */
  token(u: UpstreamConfig, scopes?: readonly string[]): Promise<string>;
}

export interface Unavailable {
  readonly status: 'skip' | 'fail';
  readonly reason: string;
}

export interface DrillContext {
  readonly config: Config;
  readonly target: RehearseTarget;
  /** The first upstream: the one most drills use. */
  readonly upstream: UpstreamConfig;
  /** Its first JWT (not introspection) issuer. */
  readonly issuer: IssuerConfig | undefined;
  urlOf(u: UpstreamConfig): string;
  /** The issuer's RFC 8414 / OIDC metadata, fetched once per run. */
  metadata(): Promise<AsMetadata | undefined>;
  /** The given client, or one registered once per run; with the line the registration drill records. */
  client(): Promise<{ readonly client: Client | undefined; readonly status: DrillStatus; readonly detail: string }>;
  /** A token source, once a client and a token endpoint are known. */
  live(): Promise<Live | Unavailable>;
  /** Records a result line of the running drill. */
  readonly record: RecordResult;
}

export function isLive(x: Live | Unavailable): x is Live {
  return 'token' in x;
}
