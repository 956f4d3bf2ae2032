import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { startFromFile } from '../../src/serve.ts';
import { createLogger } from '../../src/observe/log.ts';
import { lineHash } from '../../src/observe/audit-chain.ts';
import { verifyAuditFile, type VerifyReport } from '../../src/observe/audit-verify.ts';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, AUD_OTHER, twoUpstreamConfig } from '../helpers/gateway.ts';
import { postMcp } from '../helpers/http.ts';

// Issue 24 §5 attacked: the audit chain of a real gateway run at MCP_WARDEN_LOG_LEVEL=warn (where only
// break-glass decisions are written), then edited the ways an attacker with write access to the log
// would, each edit keeping every line's own hash right.

type Line = Record<string, string | number | boolean | null>;

let dir: string;
let text = '';
let jwks: Parameters<typeof verifyAuditFile>[1];

beforeAll(async () => {
  const idp = await TestIdp.start();
  const emergency = await TestIdp.start({ alg: 'ES256' });
  const upstream = await TestUpstream.start();
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-tamper-'));
  const config = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, {
    mcp: { issuers: ['idp', 'emergency'] },
    other: { issuers: ['idp', 'emergency'] },
    root: {
      identity: { signingKeyFile: join(dir, 'gateway.jwk') },
      breakGlass: [{
        name: 'incident-9', ticket: 'INC-9', reason: 'drill', issuer: 'emergency', upstreams: ['mcp'], scopes: ['mcp:tools'],
        activatedAt: new Date(Date.now() - 60_000).toISOString(), expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      }],
    },
  });
  (config['issuers'] as unknown[]).push({ name: 'emergency', issuer: emergency.issuer, jwksUri: emergency.jwksUri, algorithms: ['ES256'], breakGlassOnly: true });
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  const chunks: string[] = [];
  const destination = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c.toString('utf8')), cb()) });
  const gw = await startFromFile(file, createLogger({ level: 'warn', destination }));
  const url = `http://127.0.0.1:${gw.addresses.traffic.port}`;
  try {
    const oncall = { sub: 'oncall-bob', client_id: 'oncall-cli' };
    expect((await postMcp(url, await emergency.token(AUD, oncall))).status).toBe(200);
    expect((await postMcp(url, await idp.token(AUD))).status).toBe(200); // an ordinary decision: info, not written
    expect((await postMcp(url, await emergency.token(AUD_OTHER, oncall), '/other-mcp')).status).toBe(403);
    expect(upstream.received).toHaveLength(2);
    jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as typeof jwks;
  } finally {
    await gw.close();
    await upstream.close();
    await idp.close();
    await emergency.close();
  }
  text = chunks.join('');
}, 30_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function chainLines(): string[] {
  return text.split('\n').filter((l) => l.includes('"chain":'));
}

async function verify(lines: readonly string[]): Promise<VerifyReport> {
  const file = join(dir, `edited-${Math.random()}.log`);
  writeFileSync(file, lines.join('\n') + '\n');
  return verifyAuditFile(file, jwks);
}

function errors(report: VerifyReport): string[] {
  return report.findings.filter((f) => f.severity === 'error').map((f) => f.message);
}

/** A fabricated decision line of the chain, hashed as the gateway would hash it. */
function forged(base: Line, changes: Line): string {
  const v: Line = { ...base, ...changes, decision: 'allow', sub: 'mallory', reason: 'break_glass' };
  delete v['hash'];
  return JSON.stringify({ ...v, hash: lineHash(v) });
}

describe('audit verify against a log edited by someone who can write to it', () => {
  it('at log level warn the break-glass decisions form a chain with its start and final checkpoint, and it verifies sealed', async () => {
    const lines = chainLines().map((l) => JSON.parse(l) as Line);
    expect(lines.map((l) => [l['event'], l['seq'], l['level']])).toEqual([
      ['audit_chain_start', 0, 40], ['decision', 1, 40], ['decision', 2, 40], ['audit_checkpoint', 3, 40],
    ]);
    expect(lines.slice(1, 3).map((l) => [l['decision'], l['reason'], l['ticket']])).toEqual([['allow', 'break_glass', 'INC-9'], ['deny', 'break_glass_not_allowed', 'INC-9']]);
    const report = await verify(chainLines());
    expect(report.findings).toEqual([]);
    expect(report.chains.map((c) => c.sealed)).toEqual([true]);
  });

  it.each([['a string', '1'], ['a fraction', 1.5], ['negative', -1], ['null', null]])('refuses a forged line slipped into the sealed chain with seq %s', async (_name, seq) => {
    const lines = chainLines();
    const base = JSON.parse(lines[1] as string) as Line;
    const edited = [...lines.slice(0, 2), forged(base, { seq }), ...lines.slice(2)];
    const report = await verify(edited);
    expect(errors(report)).toEqual(['line 3 has no valid seq (a non-negative integer): it cannot belong to the chain']);
    expect(report.tampered).toBe(true);
  });

  it('refuses a line appended after the final checkpoint, though it links to it and its hash is right', async () => {
    const lines = chainLines();
    const seal = JSON.parse(lines[3] as string) as Line;
    const base = JSON.parse(lines[1] as string) as Line;
    const report = await verify([...lines, forged(base, { seq: 4, prev: seal['hash'] as string, ts: Date.now() })]);
    expect(errors(report)).toEqual(['line 5 (seq 4) comes after the final checkpoint (line 4, seq 3): a sealed chain has no more lines']);
    expect(report.tampered).toBe(true);
  });

  it('refuses a line that repeats a key: JSON.parse reads the hashed last value, a first-wins log store reads the forged one', async () => {
    const lines = chainLines();
    const denied = lines[2] as string;
    expect(denied).toContain('"decision":"deny"');
    const edited = lines.map((l) => (l === denied ? `{"decision":"allow",${l.slice(1)}` : l));
    const report = await verify(edited);
    expect(errors(report)).toEqual(['line 3 (seq 2) repeats the key "decision": readers of the log may not see what was hashed']);
  });

  it('still finds the repeated key when a string before it escapes U+0000 or a lone surrogate', async () => {
    const lines = chainLines();
    const denied = lines[2] as string;
    for (const lead of ['"note":"a\\u0000b",', '"note":"\\ud800",']) {
      const edited = lines.map((l) => (l === denied ? `{${lead}"decision":"allow",${l.slice(1)}` : l));
      const report = await verify(edited);
      expect(errors(report), lead).toContain('line 3 (seq 2) repeats the key "decision": readers of the log may not see what was hashed');
    }
  });
});
