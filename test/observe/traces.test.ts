import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { request } from 'undici';
import { loadConfigText } from '../../src/config/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { createTracing } from '../../src/observe/trace.ts';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, startGateway, twoUpstreamConfig } from '../helpers/gateway.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';

// Issue 24 §4: OpenTelemetry traces exported over OTLP/HTTP (JSON) to a real receiver on loopback.

interface OtlpValue { readonly stringValue?: string; readonly intValue?: string | number }
interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly status?: { readonly code?: number; readonly message?: string };
  readonly attributes?: readonly { readonly key: string; readonly value: OtlpValue }[];
}
interface OtlpExport { readonly resourceSpans: readonly { readonly resource?: { readonly attributes?: readonly { readonly key: string; readonly value: OtlpValue }[] }; readonly scopeSpans: readonly { readonly spans: readonly OtlpSpan[] }[] }[] }

/** An OTLP/HTTP receiver: every POST body to /v1/traces, decoded from JSON. */
class OtlpReceiver {
  readonly exports: OtlpExport[] = [];
  readonly paths: string[] = [];
  readonly headers: Record<string, string | string[] | undefined>[] = [];
  readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.paths.push(req.url ?? '');
      this.headers.push(req.headers);
      expect(req.headers['content-type']).toMatch(/^application\/json/);
      this.exports.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  url = '';
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  spans(): OtlpSpan[] {
    return this.exports.flatMap((e) => e.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const attr = (span: OtlpSpan | undefined, key: string): string | number | undefined => {
  const v = span?.attributes?.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue === undefined ? undefined : Number(v.intValue));
};
const SERVER = 2;
const CLIENT = 3;
const STATUS_ERROR = 2;
const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_PARENT = '00f067aa0ba902b7';

let idp: TestIdp;
let upstream: TestUpstream;
let receiver: OtlpReceiver;
beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  receiver = new OtlpReceiver();
  await receiver.start();
});
afterAll(async () => {
  await upstream?.close();
  await idp?.close();
  await receiver?.close();
});

/** Starts a gateway (traced when `traces` is given), runs `requests`, closes it (which exports what is buffered). */
async function withGateway(traces: Record<string, unknown> | undefined, requests: (url: string) => Promise<void>): Promise<void> {
  const root = traces === undefined ? {} : { telemetry: { traces } };
  const gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, { root }));
  try {
    await requests(gw.url);
  } finally {
    await gw.close();
  }
}

/** The @opentelemetry packages a gateway process loads with tracing off or on (trace-modules.ts). */
function loadedPackages(mode: 'off' | 'on'): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(import.meta.dirname, 'trace-modules.ts'), mode], { timeout: 30_000 }, (err, stdout) => (err === null ? resolve(JSON.parse(stdout) as string[]) : reject(err)));
  });
}

function post(url: string, headers: Record<string, string>): ReturnType<typeof request> {
  return request(`${url}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, ...headers }, body: RPC });
}

describe('OpenTelemetry traces over OTLP/HTTP', () => {
  it('exports a server span continuing the client trace, a child span per stage, and passes our upstream span id to the upstream', async () => {
    receiver.exports.length = 0;
    const token = await idp.token(AUD);
    let upstreamTraceparent: string | undefined;
    await withGateway({ otlpEndpoint: `${receiver.url}/v1/traces`, serviceName: 'warden-test', headers: { 'x-collector-key': 'k1' } }, async (url) => {
      const res = await post(url, { authorization: `Bearer ${token}`, traceparent: `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`, tracestate: 'vendor=abc' });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      upstreamTraceparent = upstream.last()?.headers.get('traceparent')?.[0];
      expect(upstream.last()?.headers.get('tracestate')).toEqual(['vendor=abc']);
    });

    expect(receiver.paths.every((p) => p === '/v1/traces')).toBe(true);
    expect(receiver.headers[0]?.['x-collector-key']).toBe('k1');
    expect(receiver.exports[0]?.resourceSpans[0]?.resource?.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'warden-test' } });
    const spans = receiver.spans();
    const root = spans.find((s) => s.kind === SERVER);
    expect(root?.traceId).toBe(CLIENT_TRACE);
    expect(root?.parentSpanId).toBe(CLIENT_PARENT);
    expect(root?.name).toBe('POST /mcp');
    expect([attr(root, 'mcp_warden.upstream'), attr(root, 'mcp.method.name'), attr(root, 'mcp_warden.decision'), attr(root, 'http.response.status_code')]).toEqual(['mcp', 'tools/list', 'allow', 200]);
    const children = spans.filter((s) => s !== root);
    expect(children.map((s) => s.name)).toEqual(['admission', 'authenticate', 'revocation', 'break-glass', 'authorize.upstream', 'messages', 'authorize.messages', 'limits.streams', 'limits.calls', 'forward-identity', 'proxy']);
    for (const child of children) {
      expect(child.traceId).toBe(CLIENT_TRACE);
      expect(child.parentSpanId).toBe(root?.spanId);
      expect(child.status?.code ?? 0).not.toBe(STATUS_ERROR);
    }
    const proxy = children.find((s) => s.name === 'proxy');
    expect(proxy?.kind).toBe(CLIENT);
    // W3C Trace Context: the upstream's parent is our upstream (proxy) span, in the client's trace.
    expect(upstreamTraceparent).toBe(`00-${CLIENT_TRACE}-${proxy?.spanId}-01`);
    // No token, subject or argument in any attribute.
    const values = JSON.stringify(spans.map((s) => s.attributes));
    expect(values).not.toContain(token.slice(0, 20));
    expect(values).not.toContain('alice');
  }, 30_000);

  it('marks a refusal: the stage that refused and the request span are errors with the reason, and the upstream receives nothing', async () => {
    receiver.exports.length = 0;
    const token = await idp.token(AUD, { scope: 'other' });
    const before = upstream.bytes;
    await withGateway({ otlpEndpoint: `${receiver.url}/v1/traces` }, async (url) => {
      const res = await post(url, { authorization: `Bearer ${token}` });
      expect(res.statusCode).toBe(403);
      expect(await res.body.json()).toMatchObject({ reason: 'insufficient_scope' });
    });
    expect(upstream.bytes).toBe(before);
    const spans = receiver.spans();
    const root = spans.find((s) => s.kind === SERVER);
    // No client traceparent: the gateway starts the trace.
    expect(root?.parentSpanId ?? '').toBe('');
    expect(root?.status).toMatchObject({ code: STATUS_ERROR, message: 'insufficient_scope' });
    expect([attr(root, 'mcp_warden.decision'), attr(root, 'mcp_warden.reason'), attr(root, 'http.response.status_code')]).toEqual(['deny', 'insufficient_scope', 403]);
    expect(spans.filter((s) => s !== root).map((s) => s.name)).toEqual(['admission', 'authenticate', 'revocation', 'break-glass', 'authorize.upstream']);
    const refused = spans.find((s) => s.name === 'authorize.upstream');
    expect(refused?.status).toMatchObject({ code: STATUS_ERROR, message: 'insufficient_scope' });
    expect(attr(refused, 'mcp_warden.reason')).toBe('insufficient_scope');
  }, 30_000);

  it('is off without telemetry.traces, even with OTEL_EXPORTER_OTLP_ENDPOINT set: nothing exported, stages not wrapped, only a valid client traceparent forwarded', async () => {
    receiver.exports.length = 0;
    const stage = (): string => 'x';
    expect((await createTracing(undefined)).stage('admission', stage)).toBe(stage);
    const token = await idp.token(AUD);
    const saved = process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = receiver.url;
    const forwarded: (readonly string[] | undefined)[][] = [];
    try {
      await withGateway(undefined, async (url) => {
        const cases: Record<string, string>[] = [
          { traceparent: `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`, tracestate: 'a=1, b@c=2' }, // valid: forwarded as sent
          { traceparent: `00-${CLIENT_TRACE.toUpperCase()}-${CLIENT_PARENT}-01`, tracestate: 'a=1' }, // upper-case hex
          { traceparent: `00-${'0'.repeat(32)}-${CLIENT_PARENT}-01`, tracestate: 'a=1' }, // all-zero trace id
          { traceparent: `01-${CLIENT_TRACE}-${CLIENT_PARENT}-01-extra`, tracestate: 'a=1' }, // a version we cannot check
          { traceparent: `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`, tracestate: 'A=1' }, // bad tracestate only
          { tracestate: 'a=1' }, // tracestate without traceparent
        ];
        for (const c of cases) {
          const res = await post(url, { authorization: `Bearer ${token}`, ...c });
          expect(res.statusCode).toBe(200);
          await res.body.dump();
          forwarded.push([upstream.last()?.headers.get('traceparent'), upstream.last()?.headers.get('tracestate')]);
        }
      });
    } finally {
      if (saved === undefined) delete process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
      else process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = saved;
    }
    expect(forwarded).toEqual([
      [[`00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`], ['a=1,b@c=2']],
      [undefined, undefined],
      [undefined, undefined],
      [undefined, undefined],
      [[`00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`], undefined],
      [undefined, undefined],
    ]);
    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.exports).toHaveLength(0);
  }, 30_000);

  it('loads no SDK, exporter or propagator when off (only @opentelemetry/api, which prom-client already loads); loads them when on', async () => {
    const [off, on] = await Promise.all([loadedPackages('off'), loadedPackages('on')]);
    expect(off.filter((p) => p !== '@opentelemetry/api')).toEqual([]);
    expect(on).toEqual(expect.arrayContaining(['@opentelemetry/sdk-trace-base', '@opentelemetry/exporter-trace-otlp-http', '@opentelemetry/core', '@opentelemetry/resources']));
  }, 60_000);

  it('validate refuses an OTLP endpoint that is not http(s) or carries userinfo, and warns about collector headers over plain http beyond loopback', () => {
    const config = (traces: string): string => [
      'publicUrl: https://gw.test',
      'issuers: [{ name: idp, issuer: https://idp.test, algorithms: [ES256] }]',
      'upstreams: [{ name: mcp, path: /mcp, target: http://127.0.0.1:2/mcp, issuers: [idp] }]',
      'identity: { signingKeyFile: ./gateway.jwk }',
      'telemetry:',
      `  traces: ${traces}`,
      '',
    ].join('\n');
    const problems = (traces: string): string[] => {
      try {
        loadConfigText(config(traces), 'config.yaml', {});
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems.map((p) => `${p.line}: ${p.key}: ${p.message}`);
      }
      return [];
    };
    expect(problems('{ otlpEndpoint: "grpc://collector:4317" }')).toEqual([expect.stringMatching(/^6: telemetry\.traces\.otlpEndpoint: must be an absolute http\(s\) URL/)]);
    expect(problems('{ otlpEndpoint: "https://user:pw@collector/v1/traces" }')).toEqual([expect.stringMatching(/^6: telemetry\.traces\.otlpEndpoint: must not carry userinfo/)]);
    expect(problems('{ sampleRatio: 2 }')).toEqual([expect.stringMatching(/^6: telemetry\.traces\.sampleRatio: Too big/)]);
    const warned = loadConfigText(config('{ otlpEndpoint: "http://collector:4318/v1/traces", headers: { x-api-key: k } }'), 'config.yaml', {});
    expect(warned.warnings.map((w) => w.key)).toEqual(['telemetry.traces.otlpEndpoint']);
    expect(loadConfigText(config('{}'), 'config.yaml', {}).traces).toEqual({ otlpEndpoint: undefined, serviceName: 'mcp-warden', sampleRatio: 1, headers: {}, timeoutMs: 10_000 });
  });

  it('a reload that adds telemetry.traces starts exporting; one that removes it flushes and stops', async () => {
    receiver.exports.length = 0;
    const token = await idp.token(AUD);
    const base = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url);
    const gw = await startGateway(base);
    const identity = { signingKeyFile: join(gw.configFile, '..', 'gateway.jwk') };
    const send = async (): Promise<void> => {
      const res = await post(gw.url, { authorization: `Bearer ${token}` });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    };
    try {
      await send();
      writeFileSync(gw.configFile, stringify({ ...base, identity, telemetry: { traces: { otlpEndpoint: `${receiver.url}/v1/traces` } } }));
      expect(await gw.gateway.reloadFromFile()).toBe(true);
      await send();
      writeFileSync(gw.configFile, stringify({ ...base, identity }));
      expect(await gw.gateway.reloadFromFile()).toBe(true);
      for (let i = 0; i < 50 && receiver.spans().length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      await send();
    } finally {
      await gw.close();
    }
    // Only the request served while traces were configured: one request span.
    expect(receiver.spans().filter((s) => s.kind === SERVER)).toHaveLength(1);
  }, 30_000);
});
