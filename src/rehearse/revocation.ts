import { request } from 'undici';
import type { Config, UpstreamConfig } from '../config/compile.ts';
import { revokeWith } from '../issuer/revoke-command.ts';
import { json, mcpCall } from './http.ts';
import type { DrillResult } from './report.ts';
import { asMetadata, clientCredentials, register } from './tokens.ts';
import { IAM, NHI } from './controls.ts';
import type { Drill } from './drill.ts';

const BOUND_MS = 10_000;

type Record = (drill: string, status: DrillResult['status'], detail: string) => void;

/**
 * The kill switch (README "Revocation"): a client registered for the drill holds a token every replica
 * has cached and an open stream; the embedded issuer revokes the client; the drill measures the time
 * until every `--url` replica refuses the token (401 token_revoked) and the stream has ended.
 */
export async function revocationDrill(config: Config, replicas: readonly string[], record: Record): Promise<void> {
  const name = 'revocation kill switch';
  // A deployment without revocation has no kill switch to drill (and no result to report).
  if (config.authorizationServer?.ssf === undefined && config.revocation.transmitters.length === 0) return;
  const a = config.upstreams[0] as UpstreamConfig;
  const issuer = a.issuers.find((i) => i.introspection === undefined);
  if (config.authorizationServer?.ssf === undefined || issuer === undefined) return record(name, 'skip', 'needs the embedded issuer with authorizationServer.ssf');
  if (!config.revocation.transmitters.some((t) => t.issuer.name === issuer.name)) return record(name, 'fail', `issuer ${issuer.name} has no revocation transmitter: revocations would never reach the gateway`);
  const meta = await asMetadata(issuer.issuer);
  if (meta?.registration_endpoint === undefined || meta.token_endpoint === undefined) return record(name, 'skip', 'the issuer offers no registration for a drill client');
  const client = await register(meta.registration_endpoint, a.allScopes, config.authorizationServer.registration?.initialAccessToken);
  if (typeof client === 'string') return record(name, 'skip', `cannot register a drill client: ${client}`);
  const token = await clientCredentials(meta.token_endpoint, client, a.audience, a.scopes);
  for (const base of replicas) {
    for (let i = 0; i < 2; i++) {
      const r = await mcpCall(base + a.path, token);
      if (r.status !== 200) return record(name, 'fail', `${base} refused the drill client before the revocation: ${r.status}`);
    }
  }
  const stream = await firstStream(config, replicas[0] as string, (u) => clientCredentials(meta.token_endpoint as string, client, u.audience, u.scopes));
  const t0 = Date.now();
  await revokeWith(config, { client: client.clientId });
  const times = await Promise.all(replicas.map((base) => untilRefused(base + a.path, token, t0)));
  const streamMs = stream === undefined ? undefined : await stream.ended(t0);
  const slow = replicas.filter((_b, i) => times[i] === undefined);
  const detail = `${replicas.map((b, i) => `${b}: ${times[i] === undefined ? `still accepted after ${BOUND_MS} ms` : `refused after ${times[i]} ms`}`).join('; ')}; stream: ${stream === undefined ? 'not offered by the upstream' : streamMs === undefined ? `still open after ${BOUND_MS} ms` : `ended after ${streamMs} ms`}`;
  record(name, slow.length === 0 && (stream === undefined || streamMs !== undefined) ? 'pass' : 'fail', detail);
}

async function untilRefused(url: string, token: string, t0: number): Promise<number | undefined> {
  while (Date.now() - t0 < BOUND_MS) {
    const r = await mcpCall(url, token);
    if (r.status === 401 && json<{ reason?: string }>(r)?.reason === 'token_revoked') return Date.now() - t0;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return undefined;
}

/** The first upstream (of the first four) whose GET answers an SSE stream for the drill client. */
async function firstStream(config: Config, base: string, token: (u: UpstreamConfig) => Promise<string>): Promise<Awaited<ReturnType<typeof openStream>>> {
  for (const u of config.upstreams.slice(0, 4)) {
    const t = await token(u).catch(() => undefined); // a resource the issuer will not mint for: try the next
    const stream = t === undefined ? undefined : await openStream(base + u.path, t);
    if (stream !== undefined) return stream;
  }
  return undefined;
}

/** A GET SSE stream through the gateway, if the upstream offers one; `ended` resolves with ms after t0. */
async function openStream(url: string, token: string): Promise<{ ended(t0: number): Promise<number | undefined> } | undefined> {
  const abort = new AbortController();
  let res;
  try {
    res = await request(url, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: abort.signal, headersTimeout: 5_000 });
  } catch {
    return undefined;
  }
  if (res.statusCode !== 200 || !String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    await res.body.dump().catch(() => undefined);
    return undefined;
  }
  const body = res.body;
  const done = (async () => {
    try {
      for await (const _chunk of body) { /* read until the gateway ends it */ }
    } catch { /* cut */ }
    return Date.now();
  })();
  return {
    async ended(t0) {
      const at = await Promise.race([done, new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.max(0, t0 + BOUND_MS - Date.now())))]);
      if (at === undefined) abort.abort();
      return at === undefined ? undefined : at - t0;
    },
  };
}

/** The registry's entry: its own drill client, so the revocation cuts no other drill's tokens. */
export const revocation: Drill = {
  id: 'revocation', title: 'revocation kill switch', controls: [NHI, IAM],
  run: (ctx) => revocationDrill(ctx.config, ctx.target.replicaUrls, ctx.record),
};
