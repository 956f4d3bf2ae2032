import { readFileSync } from 'node:fs';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { announceReady, serveIpc } from './ipc.ts';
import { BODY, REQUEST_HEADERS } from './loadgen.ts';

// Stage by stage (issue 25): the real state built from the bench's config (src/state.ts buildState),
// the real stages (src/pipeline.ts createStages), called in the pipeline's order on one synthetic
// request at a time (a real IncomingMessage over an unconnected socket, the bench's tools/call body),
// no HTTP. Each stage is timed alone with process.hrtime; the proxy stage (the upstream exchange) is
// left out: it is the machinery, measured by the floor row. "observe" is the record's audit line and
// metrics update (the logger writes to a null stream: serialisation paid, no I/O).

type Src = <T>(rel: string) => Promise<T>;
const STAGES = ['context', 'admit', 'authenticate', 'checkRevocation', 'checkBreakGlass', 'authorizeUpstream', 'readMessages', 'authorizeMessages', 'capStreams', 'limitCalls', 'forwardIdentity', 'observe'] as const;
type StageName = (typeof STAGES)[number];

function request(host: string, path: string, token: string): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  const body = Buffer.from(BODY);
  req.method = 'POST';
  req.url = path;
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  // As the HTTP parser hands them over (_addHeaderLines): setting rawHeaders alone leaves req.headers
  // empty, and the stages would judge a request without Content-Length or MCP-Protocol-Version.
  const raw = ['host', host, ...Object.entries(REQUEST_HEADERS).flat(), 'authorization', `Bearer ${token}`, 'content-length', String(body.length)];
  (req as unknown as { _addHeaderLines(h: string[], n: number): void })._addHeaderLines(raw, raw.length);
  if (req.headers['mcp-protocol-version'] === undefined) throw new Error('bench request has no headers');
  req.push(body);
  req.push(null);
  // As the HTTP parser marks a message received whole: without it, Node takes the request for an
  // aborted one when it ends (IncomingMessage._destroy), emits 'aborted' and builds a premature-close
  // error with its stack on every request, charged to whichever stage runs then (readMessages, mostly).
  req.complete = true;
  return req;
}

async function build(src: Src, configFile: string): Promise<{ run: (token: string) => Promise<Record<StageName, number>> }> {
  const { loadConfig } = await src<typeof import('../src/config/compile.ts')>('config/compile.ts');
  const { buildState } = await src<typeof import('../src/state.ts')>('state.ts');
  const { createStages } = await src<typeof import('../src/pipeline.ts')>('pipeline.ts');
  const { createMetrics } = await src<typeof import('../src/observe/metrics.ts')>('observe/metrics.ts');
  const { createLogger } = await src<typeof import('../src/observe/log.ts')>('observe/log.ts');
  const { StreamRegistry } = await src<typeof import('../src/proxy/stream.ts')>('proxy/stream.ts');
  const { startKeys } = await src<typeof import('../src/auth/gateway-key.ts')>('auth/gateway-key.ts');
  const { openContext } = await src<typeof import('../src/observe/context.ts')>('observe/context.ts');
  const { halted } = await src<typeof import('../src/stage.ts')>('stage.ts');
  const { AuditChain } = await src<typeof import('../src/observe/audit-chain.ts')>('observe/audit-chain.ts');
  const { Revocations } = await src<typeof import('../src/revoke/service.ts')>('revoke/service.ts');
  const config = loadConfig(configFile);
  const logger = createLogger({ level: 'info', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const metrics = createMetrics({ keys: () => [], tokenCache: () => ({ hits: 0, misses: 0 }) });
  const streams = new StreamRegistry();
  let built: Awaited<ReturnType<typeof buildState>> | undefined;
  // The audit chain and the revocation store as the gateway has them (gateway.ts createGateway).
  const audit = new AuditChain({ logger, now: Date.now, signer: () => built?.signer, settings: () => config.audit });
  const revocations = new Revocations(config, { now: Date.now, logger, metrics, streams, keys: () => built?.issuerKeys ?? new Map() });
  const state = await buildState(config, undefined, { now: Date.now, logger, metrics, streams, audit, revocations, current: () => undefined });
  built = state;
  await startKeys(state.issuerKeys.values(), config);
  const st = createStages(state.deps);
  const upstream = config.upstreams[0] as (typeof config.upstreams)[number];
  const host = config.publicUrl.host;
  const t = (): bigint => process.hrtime.bigint();
  const run = async (token: string): Promise<Record<StageName, number>> => {
    const req = request(host, upstream.path, token);
    const res = new ServerResponse(req);
    const ns: Partial<Record<StageName, number>> = {};
    let t0 = t();
    const lap = (name: StageName): void => {
      const t1 = t();
      ns[name] = Number(t1 - t0);
      t0 = t1;
    };
    const ctx = openContext(req, res, state.deps.now, () => undefined);
    lap('context');
    const admitted = st.admit(ctx);
    lap('admit');
    if (halted(admitted)) throw new Error('admission refused the bench request');
    const authenticated = await st.authenticate(ctx, admitted);
    lap('authenticate');
    if (halted(authenticated)) throw new Error('authentication refused the bench token');
    const live = st.checkRevocation(ctx, authenticated);
    lap('checkRevocation');
    if (halted(live)) throw new Error('the bench token was revoked');
    const principal = st.checkBreakGlass(ctx, admitted, live);
    lap('checkBreakGlass');
    if (halted(principal)) throw new Error('break-glass refused the bench token');
    const allowed = st.authorizeUpstream(ctx, admitted, principal);
    lap('authorizeUpstream');
    const messages = await st.readMessages(ctx);
    lap('readMessages');
    if (halted(allowed) || halted(messages)) throw new Error('the bench request was refused');
    const judged = st.authorizeMessages(ctx, admitted, principal, messages.inspected);
    lap('authorizeMessages');
    if (halted(judged)) throw new Error('the bench call was refused');
    st.capStreams(ctx, principal, judged);
    lap('capStreams');
    await st.limitCalls(ctx, admitted, principal, judged);
    lap('limitCalls');
    const outbound = await st.forwardIdentity(ctx, admitted, principal);
    lap('forwardIdentity');
    if (halted(outbound)) throw new Error('identity forwarding refused the bench request');
    ctx.record.status = 200;
    state.deps.onRecord(ctx.record);
    lap('observe');
    return ns as Record<StageName, number>;
  };
  return { run };
}

async function measure(run: (token: string) => Promise<Record<StageName, number>>, token: (i: number) => string, seconds: number): Promise<{ n: number; nsPerOp: Record<StageName, number> }> {
  const samples = Object.fromEntries(STAGES.map((s) => [s, [] as number[]])) as Record<StageName, number[]>;
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    const r = await run(token(n++));
    for (const s of STAGES) samples[s].push(r[s]);
    // Between requests (untimed), one turn of the event loop, as a server's requests arrive by I/O: a
    // warm request awaits only microtasks, so without this the audit checkpoint's signature (a WebCrypto
    // job) never completed, every later line queued behind it unwritten, and the first stage that awaited
    // real I/O (a cold verify, a cold mint) paid the drain of the whole backlog (~130 ms per call).
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  // Medians: a GC or a descheduling on this shared machine lands on one sample, not on the figure.
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  return { n, nsPerOp: Object.fromEntries(STAGES.map((s) => [s, median(samples[s])])) as Record<StageName, number> };
}

serveIpc({
  run: async (arg) => {
    const { configFile, srcDir, token, tokensFile, seconds } = arg as { configFile: string; srcDir: string; token: string; tokensFile: string; seconds: number };
    const src: Src = async <T>(rel: string) => (await import(pathToFileURL(join(srcDir, rel)).href)) as T;
    const { run } = await build(src, configFile);
    const tokens = readFileSync(tokensFile, 'utf8').split('\n').filter((x) => x !== '');
    // An empty lap pair: what the timer itself adds to each figure.
    const timer: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      const a = process.hrtime.bigint();
      timer.push(Number(process.hrtime.bigint() - a));
    }
    await measure(run, () => token, 1);
    const warm = await measure(run, () => token, seconds);
    // Cold from the far end of the pool: the HTTP cold runs start at its beginning.
    const cold = await measure(run, (i) => tokens[tokens.length - 1 - (i % tokens.length)] as string, Math.max(1, seconds / 2));
    return { stages: STAGES, warm, cold, timerNs: timer.sort((a, b) => a - b)[5_000] };
  },
  exit: () => setImmediate(() => process.exit(0)),
});

announceReady({});
