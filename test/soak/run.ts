// npm run soak -- --minutes N: mixed valid and invalid traffic, SSE streams, a signing-key rotation
// and a key-fetch outage window, through a real gateway process on loopback. Reports requests by
// outcome, valid requests refused outside the outage window and invalid requests forwarded (both
// must be 0), and the gateway's RSS at start and end (growth must stay under 10 %).
// Overlapping faults (issue 17): the rotation runs under the unknown-kid junk traffic (a new key used
// 2 s after it is published must lose no request); the outage starts with a 200 answer holding no key
// ({"keys":[]}) and then 500s, and a reload that changes the issuer block (SIGHUP) lands inside it:
// the last good keys must serve every valid request of the stale window; a reload under load at the
// rotation too; and the end is a drain under load: SIGTERM while the workers still send, with no
// request reset (only refused connections once the listener is closed).
//
// The gateway runs as it would in a pod: in a memory cgroup with the sidecar example's limit
// (SOAK_MEMORY_MIB, default 256; the chart's default is 512), from which Node sizes its heap, young
// generation included. On a large machine without that limit V8 lets the young generation grow to
// 128 MiB under a burst (the outage's fast 503s), a one-off step that says nothing about leaks. Without a writable cgroup (not root), V8
// flags approximate the same sizing (SOAK_NODE_FLAGS overrides either).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateKeyPair } from 'jose';
import { request } from 'undici';
import { stringify } from 'yaml';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { freePorts } from '../helpers/ports.ts';
import { memoryCgroup, startInside } from '../../bench/cgroup.ts';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '1' }, concurrency: { type: 'string', default: '16' } } });
const durationMs = Number(values.minutes) * 60_000;
const concurrency = Number(values.concurrency);
const AUD = 'https://gw.test/mcp';
const FRESH_S = 5;
const STALE_S = 5;

const idp = await TestIdp.start({ alg: 'ES256' });
const upstream = await TestUpstream.start();
const [port, adminPort] = await freePorts(2);
const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-soak-'));
const configFile = join(dir, 'config.yaml');
writeFileSync(configFile, stringify({
  listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: adminPort }, publicUrl: 'https://gw.test',
  issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['ES256'], clockSkewSeconds: 0, jwks: { cacheMaxAgeSeconds: FRESH_S, staleIfErrorSeconds: STALE_S, cooldownSeconds: 1, timeoutMs: 1000, retryMaxSeconds: 2 } }],
  upstreams: [
    { name: 'mcp', path: '/mcp', target: `${upstream.url}/echo`, issuers: ['idp'], scopes: ['mcp:tools'] },
    { name: 'stream', path: '/stream', target: `${upstream.url}/sse`, issuers: ['idp'], scopes: ['mcp:tools'], audience: 'https://gw.test/stream' },
  ],
  identity: { signingKeyFile: join(dir, 'gateway.jwk') },
  // Small bounded caches fill within the first minute, so RSS growth after that can only be a leak.
  limits: { tokenCacheEntries: 1_000, drainDelayMs: 1_000, shutdownGraceMs: 3_000 },
}));
/** Rewrites one issuer setting (not its key source) and signals a reload, as an operator would. */
let skew = 0;
function reloadIssuerBlock(): void {
  skew = skew === 0 ? 1 : 0;
  const text = readFileSync(configFile, 'utf8').replace(/clockSkewSeconds: \d+/, `clockSkewSeconds: ${skew}`);
  writeFileSync(configFile, text);
  gateway.kill('SIGHUP');
}
const memoryMiB = Number(process.env['SOAK_MEMORY_MIB'] ?? 256);
const cgroup = process.env['SOAK_NODE_FLAGS'] === undefined ? memoryCgroup('soak', memoryMiB) : undefined;
const nodeFlags = (process.env['SOAK_NODE_FLAGS'] ?? (cgroup === undefined ? '--max-old-space-size=192 --max-semi-space-size=4' : '')).split(' ').filter(Boolean);
const gatewayArgs = [...nodeFlags, 'bin/mcp-warden.js', 'serve', '--config', configFile];
const gatewayEnv = { ...process.env, MCP_WARDEN_LOG_LEVEL: 'warn' };
const [command, commandArgs] = cgroup === undefined ? [process.execPath, gatewayArgs] : startInside(cgroup, process.execPath, gatewayArgs);
const gateway = spawn(command, commandArgs, { stdio: ['ignore', 'ignore', 'inherit'], env: gatewayEnv });
process.stdout.write(cgroup === undefined ? `gateway without a memory cgroup, node ${nodeFlags.join(' ') || '(no flags)'}\n` : `gateway in a ${memoryMiB} MiB memory cgroup (a pod's limit)${nodeFlags.length > 0 ? `, node ${nodeFlags.join(' ')}` : ''}\n`);
const base = `http://127.0.0.1:${port}`;
for (let i = 0; i < 100; i++) {
  const ok = await request(`http://127.0.0.1:${adminPort}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode === 200), () => false);
  if (ok) break;
  await sleep(100);
}
const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${gateway.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

// Upstream side: any request marked invalid that arrives there is a failure of the gateway.
let invalidForwarded = 0;
upstream.server.prependListener('request', (req) => {
  if (req.headers['x-soak-kind'] === 'invalid') invalidForwarded++;
});
upstream.sseEvents = 5;
upstream.sseGate = () => sleep(1_000);

let signer = 'k1';
const outage = { start: Infinity, end: Infinity };
// The part of the outage where the last good keys must still serve: from its start to STALE_S − 1 s
// later (the stale window ends at least STALE_S after the start, since the last success precedes it).
const staleServing = { start: Infinity, end: Infinity };
let validRefusedStale = 0;
// The drain: from SIGTERM on, requests reset (an error other than a refused connection) must be 0.
let drainAt = Infinity;
let resetAtDrain = 0;
let servedAfterSigterm = 0;
let closeMissingAtDrain = 0;
const counts = new Map<string, number>();
let validRefusedOutside = 0;
const count = (key: string): void => void counts.set(key, (counts.get(key) ?? 0) + 1);
const evil = await generateKeyPair('ES256');
const nowS = (): number => Math.floor(Date.now() / 1000);

type Kind = 'valid' | 'expired' | 'wrong_aud' | 'bad_sig' | 'no_token' | 'unknown_kid' | 'stream';
const pick = (): Kind => {
  const r = Math.random();
  if (r < 0.6) return 'valid';
  if (r < 0.66) return 'stream';
  return (['expired', 'wrong_aud', 'bad_sig', 'no_token', 'unknown_kid'] as const)[Math.floor(Math.random() * 5)] as Kind;
};
async function tokenFor(kind: Kind): Promise<string | undefined> {
  const claims = { iss: idp.issuer, aud: kind === 'stream' ? 'https://gw.test/stream' : AUD, sub: 'soak', scope: 'mcp:tools', iat: nowS(), exp: nowS() + 60 };
  switch (kind) {
    case 'valid': case 'stream': return idp.sign(claims, { kid: signer });
    case 'expired': return idp.sign({ ...claims, exp: nowS() - 5 }, { kid: signer });
    case 'wrong_aud': return idp.sign({ ...claims, aud: 'https://gw.test/other' }, { kid: signer });
    case 'bad_sig': { const t = await idp.sign(claims, { kid: signer }); return t.slice(0, -4) + (t.endsWith('AAAA') ? 'BBBB' : 'AAAA'); }
    case 'no_token': return undefined;
    case 'unknown_kid': return idp.sign(claims, { kid: `x-${Math.random()}`, key: evil.privateKey, alg: 'ES256' });
  }
}
async function one(): Promise<void> {
  const kind = pick();
  const token = await tokenFor(kind);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-soak-kind': kind === 'valid' || kind === 'stream' ? 'valid' : 'invalid' };
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const sentAt = Date.now();
  try {
    const res = kind === 'stream'
      ? await request(`${base}/stream`, { method: 'GET', headers: { ...headers, accept: 'text/event-stream' } })
      : await request(`${base}/mcp`, { method: 'POST', headers, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    await res.body.dump();
    count(`${kind} ${res.statusCode}`);
    const inOutage = sentAt >= outage.start && sentAt <= outage.end;
    const valid = kind === 'valid' || kind === 'stream';
    if (valid && res.statusCode !== 200 && !inOutage) validRefusedOutside++;
    if (valid && res.statusCode !== 200 && sentAt >= staleServing.start && sentAt <= staleServing.end) validRefusedStale++;
    if (sentAt >= drainAt) {
      servedAfterSigterm++;
      if (res.headers['connection'] !== 'close') closeMissingAtDrain++;
    }
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    count(`${kind} ${code === 'ECONNREFUSED' && sentAt >= drainAt ? 'refused (drained)' : 'error'}`);
    if (sentAt >= drainAt) {
      if (code !== 'ECONNREFUSED') resetAtDrain++;
      return;
    }
    if ((kind === 'valid' || kind === 'stream') && !(sentAt >= outage.start && sentAt <= outage.end)) validRefusedOutside++;
  }
}

const started = Date.now();
// RSS is taken once the bounded caches (verified tokens, assertions: every request here carries a new
// token; 1,000 entries each) have filled and the JIT has settled, so that growth after it means a leak.
let rssStart = 0;
const warm = sleep(Math.max(15_000, durationMs / 5)).then(() => {
  rssStart = rss();
});
const scenario = (async () => {
  // Rotation at 1/4: publish k2, sign with it 2 s later, retire k1 at 1/3 (tokens are minted per request).
  await sleep(durationMs / 4);
  await idp.addKey('k2', 'ES256');
  reloadIssuerBlock(); // a reload under load, during the rotation
  await sleep(2_000);
  signer = 'k2';
  await sleep(Math.max(0, started + durationMs / 3 - Date.now()));
  idp.published.delete('k1');
  // Outage from 1/2: refusals are allowed from the cut until the JWKS is back plus one refresh.
  await sleep(Math.max(0, started + durationMs / 2 - Date.now()));
  outage.start = Date.now();
  staleServing.start = outage.start;
  staleServing.end = outage.start + (STALE_S - 1) * 1000;
  idp.fault = { kind: 'body', body: '{"keys":[]}' }; // a 200 with no usable key: an outage all the same
  await sleep(1_500);
  reloadIssuerBlock(); // inside the stale window: the reload must not lose the last good keys
  await sleep(1_500);
  idp.fault = { kind: 'status', status: 500 };
  await sleep((FRESH_S + STALE_S + 2) * 1000);
  idp.fault = { kind: 'ok' };
  outage.end = Date.now() + 3_000;
})();
// RSS and V8 heap every SOAK_SAMPLE_SECONDS (30): a leak grows steadily, a settling process flattens.
// Heap used is live JS objects; heap committed (old + new space) is what V8 holds from the OS for them.
const SAMPLE_MS = Number(process.env['SOAK_SAMPLE_SECONDS'] ?? 30) * 1000;
const series: { atS: number; rssMiB: number; heapMiB: number; committedMiB: number; newSpaceMiB: number; externalMiB: number }[] = [];
const gauge = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? 0) / 2 ** 20;
const sampler = setInterval(() => {
  void request(`http://127.0.0.1:${adminPort}/metrics`).then((r) => r.body.text(), () => '').then((text) => series.push({
    atS: Math.round((Date.now() - started) / 1000),
    rssMiB: rss() / 2 ** 20,
    heapMiB: gauge(text, 'mcp_warden_nodejs_heap_size_used_bytes'),
    committedMiB: gauge(text, 'mcp_warden_nodejs_heap_size_total_bytes'),
    newSpaceMiB: gauge(text, 'mcp_warden_nodejs_heap_space_size_total_bytes\\{space="new"\\}'),
    externalMiB: gauge(text, 'mcp_warden_nodejs_external_memory_bytes'),
  }));
}, SAMPLE_MS);
const exited = new Promise((r) => gateway.once('exit', r));
let draining = false;
const workers = Array.from({ length: concurrency }, async () => {
  while (Date.now() - started < durationMs || draining) {
    if (draining && Date.now() > drainAt + 6_000) break;
    await one();
  }
});
await Promise.all([scenario, warm, sleep(durationMs)]);
const rssEnd = rss();
clearInterval(sampler);

// Drain under load: the workers keep sending while the gateway drains, until it is gone.
draining = true;
drainAt = Date.now();
gateway.kill('SIGTERM');
await exited;
const drainMs = Date.now() - drainAt;
draining = false;
await Promise.all(workers);
cgroup?.remove();
await upstream.close();
await idp.close();

const total = [...counts.values()].reduce((a, b) => a + b, 0);
const growth = (rssEnd - rssStart) / rssStart;
process.stdout.write(`soak: ${values.minutes} min, ${total} requests, concurrency ${concurrency}\n`);
for (const [k, v] of [...counts].sort()) process.stdout.write(`  ${k.padEnd(20)} ${v}\n`);
process.stdout.write(`valid refused outside the outage window: ${validRefusedOutside}\ninvalid forwarded to the upstream: ${invalidForwarded}\n`);
process.stdout.write(`valid refused in the stale part of the outage (keys [] then 500, reload inside): ${validRefusedStale}\n`);
process.stdout.write(`drain: exited ${drainMs} ms after SIGTERM; ${servedAfterSigterm} served after it (${closeMissingAtDrain} without Connection: close), ${resetAtDrain} reset\n`);
process.stdout.write(`RSS / heap used / heap committed / new space / external every ${SAMPLE_MS / 1000} s (MiB): ${series.map((p) => `${p.atS}s ${[p.rssMiB, p.heapMiB, p.committedMiB, p.newSpaceMiB, p.externalMiB].map((v) => v.toFixed(0)).join('/')}`).join(', ')}\n`);
process.stdout.write(`gateway RSS: ${(rssStart / 2 ** 20).toFixed(1)} MiB at start, ${(rssEnd / 2 ** 20).toFixed(1)} MiB at end (${(growth * 100).toFixed(1)} %)\n`);
const ok = validRefusedOutside === 0 && invalidForwarded === 0 && growth < 0.1 && validRefusedStale === 0 && resetAtDrain === 0 && closeMissingAtDrain === 0;
process.stdout.write(ok ? 'soak: PASS\n' : 'soak: FAIL\n');
process.exit(ok ? 0 : 1);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
