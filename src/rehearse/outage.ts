import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config, IssuerConfig, UpstreamConfig } from '../config/compile.ts';
import { createGateway } from '../gateway.ts';
import { createLogger } from '../observe/log.ts';
import { IAM } from './controls.ts';
import type { Drill, RecordResult } from './drill.ts';
import { liveOrSkip } from './gateway-drills.ts';
import { http, json, mcpCall } from './http.ts';
import { asMetadata } from './tokens.ts';

const FRESH_S = 2;
const STALE_S = 3;
// Retries back off up to this (jittered between half and all of it): the restored relay is seen within it.
const RETRY_MAX_S = 2;

export const keyFetchOutage: Drill = {
  id: 'key-fetch-outage', title: 'key-fetch outage', controls: [IAM],
  async run(ctx) {
    if (!ctx.target.outage) return;
    const live = await liveOrSkip(ctx, this.title);
    if (live !== undefined) await outageDrill(ctx.config, () => live.token(ctx.upstream), ctx.record);
  },
};

/**
 * Key-fetch outage, in local mode: rehearse runs a gateway of its own from the same config (ephemeral
 * ports, the issuer's JWKS behind a relay it can cut, short key lifetimes), then cuts the relay.
 * Within the stale window valid calls pass; after it they are refused and readiness drops; once the
 * relay is back the gateway recovers by itself.
 */
async function outageDrill(config: Config, token: () => Promise<string>, record: RecordResult): Promise<void> {
  const a = config.upstreams[0] as UpstreamConfig;
  const issuer = a.issuers.find((i) => i.introspection === undefined);
  if (issuer === undefined) return record('key-fetch outage', 'skip', `upstream ${a.name} has no JWT issuer`);
  const jwksUri = issuer.jwksUri ?? (await asMetadata(issuer.issuer))?.jwks_uri;
  if (jwksUri === undefined) return record('key-fetch outage', 'fail', 'the issuer publishes no jwks_uri');

  let cut = false;
  const relay: Server = createServer((_req, res) => {
    if (cut) return void res.writeHead(503).end();
    void http(jwksUri).then((r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.text));
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}/jwks`;
  const drilled: IssuerConfig = { ...issuer, jwksUri: relayUrl, jwks: { ...issuer.jwks, cacheMaxAgeSeconds: FRESH_S, staleIfErrorSeconds: STALE_S, cooldownSeconds: 1, timeoutMs: 1_000, retryMaxSeconds: RETRY_MAX_S } };
  const local: Config = {
    ...config,
    listen: { host: '127.0.0.1', port: 0, tls: undefined },
    admin: { host: '127.0.0.1', port: 0 },
    // The deployment's own key: upstreams verify this gateway's assertions like the real one's.
    issuers: [drilled],
    upstreams: [{ ...a, issuers: [drilled] }],
  };
  const gateway = await createGateway(local, { logger: createLogger({ level: 'silent' }) });
  try {
    const { traffic, admin } = await gateway.listen();
    const url = `http://127.0.0.1:${traffic.port}${a.path}`;
    const ready = async (): Promise<number> => (await http(`http://127.0.0.1:${admin.port}/readyz`)).status;
    const call = async (): Promise<{ status: number; reason: string | undefined }> => {
      const r = await mcpCall(url, await token());
      return { status: r.status, reason: json<{ reason?: string }>(r)?.reason };
    };
    const before = await call();
    if (before.status !== 200) return record('key-fetch outage', 'fail', `a valid call failed before the outage: ${before.status} ${before.reason ?? ''}`);
    cut = true;
    const cutAt = Date.now();
    await sleep(FRESH_S * 1000 + 500);
    const inWindow = await call();
    await sleep(Math.max(0, cutAt + (FRESH_S + STALE_S) * 1000 + 700 - Date.now()));
    const after = await call();
    const readyAfter = await ready();
    cut = false;
    await sleep(RETRY_MAX_S * 1000 + 500);
    const recovered = await call();
    const readyAgain = await ready();
    const ok = inWindow.status === 200 && after.status === 503 && after.reason === 'jwks_unavailable' && readyAfter === 503 && recovered.status === 200 && readyAgain === 200;
    record('key-fetch outage', ok ? 'pass' : 'fail',
      `within ${STALE_S} s stale window: ${inWindow.status}; after: ${after.status} ${after.reason ?? ''}, readyz ${readyAfter}; restored: ${recovered.status}, readyz ${readyAgain}`);
  } finally {
    await gateway.close();
    relay.closeAllConnections();
    await new Promise<void>((r) => relay.close(() => r()));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
