import { afterAll, beforeAll } from 'vitest';
import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import { TestIdp } from './idp.ts';
import { TestUpstream } from './upstream.ts';
import { startGateway, twoUpstreamConfig, type StartedGateway } from './gateway.ts';

type Overrides = NonNullable<Parameters<typeof twoUpstreamConfig>[2]>;

export interface GatewayFixtureOptions {
  /** Extra fields on the issuer entry of twoUpstreamConfig (e.g. `jwks: { cooldownSeconds: 1 }`). */
  readonly issuer?: Readonly<Record<string, unknown>>;
  /** twoUpstreamConfig overrides; given the upstream's URL, as route targets point at it. */
  readonly overrides?: (upstreamUrl: string) => Overrides;
  /** The config to start with, from the twoUpstreamConfig built above (edit it, or return another). */
  readonly config?: (base: Record<string, unknown>, idp: TestIdp, upstream: TestUpstream) => Record<string, unknown>;
  /** The gateway's clock. */
  readonly now?: () => number;
}

/** What the fixture started; read its fields only once beforeAll has run (in hooks and tests). */
export interface GatewayFixture {
  readonly idp: TestIdp;
  readonly upstream: TestUpstream;
  readonly gw: StartedGateway;
  /** The gateway's traffic port (for raw sockets). */
  readonly port: number;
}

/**
 * Registers beforeAll/afterAll (in the calling file or describe block) that start a TestIdp, a
 * TestUpstream and a gateway in front of both (twoUpstreamConfig unless `config` says otherwise), and
 * close them again, gateway first.
 */
export function useGatewayFixture(options: GatewayFixtureOptions = {}): GatewayFixture {
  const started: { idp?: TestIdp; upstream?: TestUpstream; gw?: StartedGateway } = {};
  const get = <K extends keyof typeof started>(key: K): NonNullable<(typeof started)[K]> => {
    const value = started[key];
    if (value === undefined) throw new Error(`gateway fixture: ${key} read before beforeAll started it`);
    return value as NonNullable<(typeof started)[K]>;
  };
  beforeAll(async () => {
    const idp = await TestIdp.start();
    started.idp = idp;
    const upstream = await TestUpstream.start();
    started.upstream = upstream;
    const base = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri, ...options.issuer }, upstream.url, options.overrides?.(upstream.url));
    const config = options.config?.(base, idp, upstream) ?? base;
    started.gw = await startGateway(config, options.now === undefined ? {} : { now: options.now });
  });
  afterAll(async () => {
    const { idp, upstream, gw } = started;
    await gw?.close();
    await upstream?.close();
    await idp?.close();
  });
  return {
    get idp() {
      return get('idp');
    },
    get upstream() {
      return get('upstream');
    },
    get gw() {
      return get('gw');
    },
    get port() {
      return Number(new URL(get('gw').url).port);
    },
  };
}

/** The gateway's own signing keys, from its published JWKS (to verify the assertions it sends upstream). */
export async function gatewayKeySet(gw: StartedGateway): Promise<JWTVerifyGetKey> {
  return createLocalJWKSet((await (await fetch(`${gw.url}/.well-known/jwks.json`)).json()) as Parameters<typeof createLocalJWKSet>[0]);
}
