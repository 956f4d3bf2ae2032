import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { generateKeyPair, SignJWT } from 'jose';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { freePorts } from '../helpers/ports.ts';
import { AUD, twoUpstreamConfig } from '../helpers/gateway.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';
import { CHECKPOINT_TYP, lineHash } from '../../src/observe/audit-chain.ts';
import { verifyAuditFile, type VerifyReport } from '../../src/observe/audit-verify.ts';

let idp: TestIdp;
let upstream: TestUpstream;
let dir: string;
let log: string;
let jwksFile: string;

interface Served {
  readonly port: number;
  readonly stop: () => Promise<number | null>;
}

/** A real `mcp-warden serve` whose stdout (every pino line) is appended to `logFile`. */
async function serveTo(logFile: string, name: string): Promise<Served> {
  const [port, admin] = await freePorts(2) as [number, number];
  const config = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, {
    root: { listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: admin }, identity: { signingKeyFile: join(dir, 'gateway.jwk') }, audit: { checkpointLines: 4, checkpointSeconds: 3600 } },
  });
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(config));
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['bin/mcp-warden.js', 'serve', '--config', file], { stdio: ['ignore', fd, 'pipe'], env: { ...process.env, MCP_WARDEN_LOG_LEVEL: 'info' } });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  for (let i = 0; i < 300; i++) {
    const ok = await request(`http://127.0.0.1:${admin}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode === 200), () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, stop: () => (child.kill('SIGTERM'), exited) };
}

/** One allowed call (a valid token) and one denied call (no token); both statuses asserted. */
async function allowAndDeny(port: number): Promise<void> {
  const allowed = await request(`http://127.0.0.1:${port}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${await idp.token(AUD)}` }, body: RPC });
  await allowed.body.dump();
  expect(allowed.statusCode).toBe(200);
  const denied = await request(`http://127.0.0.1:${port}/mcp`, { method: 'POST', headers: MCP_POST_HEADERS, body: RPC });
  await denied.body.dump();
  expect(denied.statusCode).toBe(401);
}

function lines(file = log): string[] {
  return readFileSync(file, 'utf8').split('\n');
}

/** Writes an edited copy of the log and verifies it with the gateway's JWKS. */
async function verifyEdited(edit: (all: string[]) => string[]): Promise<VerifyReport> {
  const copy = join(dir, `edited-${Math.random()}.log`);
  writeFileSync(copy, edit(lines()).join('\n'));
  return verifyAuditFile(copy, JSON.parse(readFileSync(jwksFile, 'utf8')) as Parameters<typeof verifyAuditFile>[1]);
}

/** Index (0-based) of the n-th line with this event. */
function nth(all: readonly string[], event: string, n: number): number {
  const found = all.map((l, i) => (l.includes(`"event":"${event}"`) ? i : -1)).filter((i) => i >= 0);
  return found[n] as number;
}

function errors(report: VerifyReport): string[] {
  return report.findings.filter((f) => f.severity === 'error').map((f) => f.message);
}

function cli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/mcp-warden.js', 'audit', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-audit-'));
  log = join(dir, 'audit.log');
  const served = await serveTo(log, 'one');
  for (let i = 0; i < 5; i++) await allowAndDeny(served.port);
  const jwks = await request(`http://127.0.0.1:${served.port}/.well-known/jwks.json`);
  expect(jwks.statusCode).toBe(200);
  jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, await jwks.body.text());
  expect(await served.stop()).toBe(0);
}, 60_000);

afterAll(async () => {
  await upstream?.close();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('tamper-evident audit: a real gateway writes chained lines, `audit verify` re-checks them', () => {
  it('verifies the log of a real gateway (mixed with its other pino lines): one chain, signed checkpoints, sealed at shutdown; exit 0', async () => {
    const all = lines();
    expect(all.some((l) => l.includes('"event":"listening"'))).toBe(true);
    const decisions = all.filter((l) => l.includes('"event":"decision"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(decisions.map((d) => d['decision'])).toEqual(['allow', 'deny', 'allow', 'deny', 'allow', 'deny', 'allow', 'deny', 'allow', 'deny', 'public']);
    expect(decisions[0]).toMatchObject({ chain: expect.any(String), seq: 1, prev: expect.any(String), hash: expect.any(String), ts: expect.any(Number) });
    // The start line, 10 calls and the JWKS fetch (a public line): checkpoints after every 4 lines, then the final one at SIGTERM.
    const checkpoints = all.filter((l) => l.includes('"event":"audit_checkpoint"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(checkpoints.map((c) => [c['seq'], c['final'] ?? false])).toEqual([[4, false], [9, false], [14, false], [15, true]]);
    const { code, stdout } = await cli(['verify', log, '--jwks', jwksFile]);
    expect(stdout).toMatch(/chain [0-9a-f-]{36}: 16 line\(s\) .*seq 0–15\), 4 checkpoint\(s\), sealed\nok\n$/);
    expect(code).toBe(0);
  }, 60_000);

  it('names a removed decision line: the missing seq and the lines around the gap; exit 1', async () => {
    const gone = nth(lines(), 'decision', 2);
    const seq = (JSON.parse(lines()[gone] as string) as { seq: number }).seq;
    const report = await verifyEdited((all) => all.filter((_l, i) => i !== gone));
    expect(errors(report)).toEqual([`seq ${seq} is missing (removed) between line ${gone} and line ${gone + 1}`]);
    const copy = join(dir, 'removed.log');
    writeFileSync(copy, lines().filter((_l, i) => i !== gone).join('\n'));
    const { code, stdout } = await cli(['verify', copy, '--jwks', jwksFile]);
    expect(stdout).toContain(`seq ${seq} is missing (removed)`);
    expect(stdout).toMatch(/TAMPERED\n$/);
    expect(code).toBe(1);
  }, 60_000);

  it('names an altered field (deny rewritten as allow) by line and seq', async () => {
    const at = nth(lines(), 'decision', 3);
    const report = await verifyEdited((all) => all.map((l, i) => (i === at ? l.replace('"decision":"deny"', '"decision":"allow"') : l)));
    const seq = (JSON.parse(lines()[at] as string) as { seq: number }).seq;
    expect(errors(report)).toEqual([`line ${at + 1} (seq ${seq}) was altered: its hash does not match its content`]);
  });

  it('names an altered line whose hash was recomputed: the next line no longer links to it', async () => {
    const at = nth(lines(), 'decision', 3);
    const report = await verifyEdited((all) => all.map((l, i) => {
      if (i !== at) return l;
      const v = JSON.parse(l) as Record<string, string | number | null>;
      v['decision'] = 'allow';
      return JSON.stringify({ ...v, hash: lineHash(v) });
    }));
    const seq = (JSON.parse(lines()[at] as string) as { seq: number }).seq;
    expect(errors(report)).toEqual([`line ${at + 2} (seq ${seq + 1}) does not link to seq ${seq} (line ${at + 1}): prev differs from its hash`]);
  });

  it('names two swapped lines as out of order', async () => {
    const a = nth(lines(), 'decision', 5);
    const report = await verifyEdited((all) => all.map((l, i) => (i === a ? all[a + 1] as string : i === a + 1 ? all[a] as string : l)));
    const seq = (JSON.parse(lines()[a] as string) as { seq: number }).seq;
    expect(errors(report)).toEqual([`line ${a + 2} (seq ${seq}) is out of order: it comes after seq ${seq + 1} (line ${a + 1})`]);
  });

  it('warns of a truncated tail: the lines after the last checkpoint are named, nothing else is an error', async () => {
    const all = lines();
    const cut = nth(all, 'decision', 8); // after the second checkpoint (seq 9), before the final one
    const report = await verifyEdited((l) => l.slice(0, cut + 1));
    expect(errors(report)).toEqual([]);
    expect(report.tampered).toBe(false);
    const secondCheckpoint = nth(all, 'audit_checkpoint', 1);
    const warnings = report.findings.filter((f) => f.severity === 'warning').map((f) => f.message);
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`line\\(s\\) after the last checkpoint \\(line ${secondCheckpoint + 1}, seq 9\\) are not signed, and the chain has no final checkpoint: the log may be truncated after line ${cut + 1}`))]);
  });

  it('detects a forged final checkpoint: signed by another key under the gateway kid, line hash recomputed', async () => {
    const at = nth(lines(), 'audit_checkpoint', 3);
    const { privateKey } = await generateKeyPair('Ed25519');
    const forged = await (async () => {
      const v = JSON.parse(lines()[at] as string) as Record<string, string | number | null>;
      v['jws'] = await new SignJWT({ chain: v['chain'], seq: v['seq'], head: v['prev'], final: true }).setProtectedHeader({ alg: 'EdDSA', kid: String(v['kid']), typ: CHECKPOINT_TYP }).setIssuedAt().sign(privateKey);
      return JSON.stringify({ ...v, hash: lineHash(v) });
    })();
    const tampered = await verifyEdited((all) => all.map((l, i) => (i === at ? forged : l)));
    expect(errors(tampered)).toEqual([`line ${at + 1} (seq 15): checkpoint signature does not verify against the JWKS (forged, or signed by a key not in it)`]);
  });

  it('verifies two replicas appending to one file as two chains, and names the chain a removed line belongs to', async () => {
    const shared = join(dir, 'two.log');
    const [b, c] = await Promise.all([serveTo(shared, 'b'), serveTo(shared, 'c')]);
    for (let i = 0; i < 3; i++) {
      await allowAndDeny(b.port);
      await allowAndDeny(c.port);
    }
    expect(await Promise.all([b.stop(), c.stop()])).toEqual([0, 0]);
    const jwks = JSON.parse(readFileSync(jwksFile, 'utf8')) as Parameters<typeof verifyAuditFile>[1];
    const intact = await verifyAuditFile(shared, jwks);
    expect(intact.findings).toEqual([]);
    expect(intact.chains.map((ch) => [ch.lastSeq, ch.sealed])).toEqual([[8, true], [8, true]]);
    const all = lines(shared);
    const gone = nth(all, 'decision', 1);
    const chainOfGone = (JSON.parse(all[gone] as string) as { chain: string }).chain;
    const edited = join(dir, 'two-edited.log');
    writeFileSync(edited, all.filter((_l, i) => i !== gone).join('\n'));
    const report = await verifyAuditFile(edited, jwks);
    expect(report.findings.filter((f) => f.severity === 'error').map((f) => f.chain)).toEqual([chainOfGone]);
  }, 60_000);

  it('exits 2 on usage errors: no file, an unreadable file, an unreadable JWKS', async () => {
    expect((await cli(['verify'])).code).toBe(2);
    expect((await cli(['verify', join(dir, 'absent.log')])).code).toBe(2);
    expect((await cli(['verify', log, '--jwks', join(dir, 'absent.json')])).code).toBe(2);
  }, 90_000);
});
