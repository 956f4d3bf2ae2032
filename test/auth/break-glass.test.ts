import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { jwtVerify, type JWTPayload } from 'jose';
import { request } from 'undici';
import { reasons } from '../../src/reasons.ts';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, AUD_OTHER, PUBLIC_URL, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { gatewayKeySet } from '../helpers/fixture.ts';
import { postMcp, type McpReply } from '../helpers/http.ts';
import { expectNothingForwarded, invalidTokenChallenge } from '../helpers/refused.ts';
import { expositionProblems } from '../helpers/exposition.ts';

// Issue 19 §1: break-glass access is a grant that opens and closes by the clock, with its own limits,
// its own audit line, metric and assertion stamp, and never a bypass of the normal checks.

interface Stack {
  readonly idp: TestIdp;
  readonly emergency: TestIdp;
  readonly upstream: TestUpstream;
  readonly gw: StartedGateway;
}

async function startStack(grant: Record<string, unknown>, idpExtra: Record<string, unknown> = {}, otherTarget?: (upstreamUrl: string) => string): Promise<Stack> {
  const idp = await TestIdp.start();
  const emergency = await TestIdp.start({ alg: 'ES256' });
  const upstream = await TestUpstream.start();
  const config = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri, ...idpExtra }, upstream.url, {
    mcp: { issuers: ['idp', 'emergency'] },
    other: { issuers: ['idp', 'emergency'], ...(otherTarget === undefined ? {} : { target: otherTarget(upstream.url) }) },
    root: {
      breakGlass: [{
        name: 'incident-4711', ticket: 'INC-4711', reason: 'payments outage: on-call needs the files tools',
        issuer: 'emergency', upstreams: ['mcp'], scopes: ['mcp:tools', 'mcp:files:write'], maxTokenLifetimeSeconds: 600,
        requireClaims: { amr: ['mfa'] }, ...grant,
      }],
    },
  });
  (config['issuers'] as unknown[]).push({ name: 'emergency', issuer: emergency.issuer, jwksUri: emergency.jwksUri, algorithms: ['ES256'], breakGlassOnly: true });
  return { idp, emergency, upstream, gw: await startGateway(config) };
}

async function closeStack(s: Stack | undefined): Promise<void> {
  await s?.gw.close();
  await s?.upstream.close();
  await s?.idp.close();
  await s?.emergency.close();
}

/** An on-call engineer's token from the emergency issuer: MFA, 5 minutes. */
function oncallToken(s: Stack, claims: JWTPayload = {}, audience = AUD): Promise<string> {
  return s.emergency.token(audience, { sub: 'oncall-bob', client_id: 'oncall-cli', amr: ['pwd', 'mfa'], ...claims });
}

async function refusedWith(s: Stack, token: string, reason: keyof typeof reasons, path = '/mcp'): Promise<McpReply> {
  s.upstream.reset();
  const r = await postMcp(s.gw.url, token, path);
  const info = reasons[reason];
  expect(r.status, JSON.stringify(r.body)).toBe(info.status);
  expect(r.body).toMatchObject({ reason });
  expect(r.challenge).toBe(info.challenge ? invalidTokenChallenge(reason, path) : null);
  expectNothingForwarded(s.upstream);
  return r;
}

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly reason?: string;
  readonly breakGlass?: string;
  readonly ticket?: string;
  readonly decision?: string;
  readonly sub?: string;
  readonly event?: string;
}

function decisions(gw: StartedGateway): LogLine[] {
  return gw.logs.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogLine).filter((l) => l.event === 'decision');
}

async function metricsText(gw: StartedGateway): Promise<string> {
  const res = await request(gw.adminUrl + '/metrics');
  return res.body.text();
}

/** Polls `probe` every 100 ms until it returns true, for at most `ms`. */
async function until(ms: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not reached within ${ms} ms`);
}

describe('a break-glass grant opens and closes by the clock, without a restart or reload', () => {
  let s: Stack | undefined;
  // Set once the IdPs and upstream run, so a slow machine's start-up does not eat the pre-window.
  let opensAt = 0;
  let closesAt = 0;
  beforeAll(async () => {
    opensAt = Date.now() + 4_000;
    closesAt = opensAt + 3_000;
    s = await startStack({ activatedAt: new Date(opensAt).toISOString(), expiresAt: new Date(closesAt).toISOString() });
  });
  afterAll(() => closeStack(s));

  it('refuses before activatedAt, forwards stamped inside the window, refuses again from expiresAt on', async () => {
    const stack = s as Stack;
    const gateway = stack.gw.gateway;
    expect(Date.now()).toBeLessThan(opensAt);
    await refusedWith(stack, await oncallToken(stack), 'break_glass_inactive');
    expect(await metricsText(stack.gw)).toContain('mcp_warden_break_glass_active{grant="incident-4711",ticket="INC-4711"} 0');

    await until(8_000, async () => Date.now() >= opensAt);
    stack.upstream.reset();
    const token = await oncallToken(stack);
    const open = await postMcp(stack.gw.url, token);
    expect(open.status, JSON.stringify(open.body)).toBe(200);
    expect(stack.upstream.received).toHaveLength(1);
    const assertion = stack.upstream.received[0]?.headers.get('x-mcp-identity')?.[0] as string;
    const { payload } = await jwtVerify(assertion, await gatewayKeySet(stack.gw), { issuer: PUBLIC_URL, audience: AUD, typ: 'mcp-identity+jwt' });
    expect(payload).toMatchObject({ sub: 'oncall-bob', break_glass: true, break_glass_ticket: 'INC-4711', orig_iss: stack.emergency.issuer });
    expect(await metricsText(stack.gw)).toContain('mcp_warden_break_glass_active{grant="incident-4711",ticket="INC-4711"} 1');

    // The same (cached) token stops working at expiresAt: nothing was reloaded or restarted.
    await until(10_000, async () => {
      stack.upstream.reset();
      return (await postMcp(stack.gw.url, token)).status === 401;
    });
    expect(Date.now()).toBeGreaterThanOrEqual(closesAt);
    await refusedWith(stack, token, 'break_glass_expired');
    await refusedWith(stack, await oncallToken(stack), 'break_glass_expired');
    expect(stack.gw.gateway).toBe(gateway);
    const text = await metricsText(stack.gw);
    expect(text).toContain('mcp_warden_break_glass_active{grant="incident-4711",ticket="INC-4711"} 0');
    expect(text).toContain(`mcp_warden_break_glass_expiry_timestamp_seconds{grant="incident-4711",ticket="INC-4711"} ${closesAt / 1000}`);
    expect(text).toMatch(/mcp_warden_break_glass_requests_total\{grant="incident-4711",upstream="mcp",outcome="allow"\} [1-9]/);
    expect(text).toMatch(/mcp_warden_break_glass_requests_total\{grant="incident-4711",upstream="mcp",outcome="deny"\} [1-9]/);
    expect(expositionProblems(text)).toEqual([]);
  }, 30_000);

  it('a normal issuer\'s token is not touched by the grant, inside or outside its window', async () => {
    const stack = s as Stack;
    stack.upstream.reset();
    const r = await postMcp(stack.gw.url, await stack.idp.token(AUD));
    expect(r.status).toBe(200);
    const assertion = stack.upstream.received[0]?.headers.get('x-mcp-identity')?.[0] as string;
    const { payload } = await jwtVerify(assertion, await gatewayKeySet(stack.gw), { issuer: PUBLIC_URL, audience: AUD });
    expect(payload['break_glass']).toBeUndefined();
  });
});

describe('an open break-glass grant admits only what it lists', () => {
  let s: Stack | undefined;
  beforeAll(async () => {
    s = await startStack({ activatedAt: new Date(Date.now() - 60_000).toISOString(), expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
  });
  afterAll(() => closeStack(s));
  const stack = (): Stack => s as Stack;

  it('forwards a token within the grant, and logs it at warning level with reason break_glass and the ticket', async () => {
    stack().upstream.reset();
    const r = await postMcp(stack().gw.url, await oncallToken(stack(), { jti: 'audit-me' }));
    expect(r.status).toBe(200);
    expect(stack().upstream.received).toHaveLength(1);
    await until(2_000, async () => decisions(stack().gw).some((l) => l.decision === 'allow' && l.sub === 'oncall-bob'));
    const line = decisions(stack().gw).find((l) => l.decision === 'allow' && l.sub === 'oncall-bob');
    expect(line).toMatchObject({ level: 40, reason: 'break_glass', breakGlass: 'incident-4711', ticket: 'INC-4711', msg: 'decision through break-glass access' });
    expect(await metricsText(stack().gw)).toMatch(/mcp_warden_break_glass_requests_total\{grant="incident-4711",upstream="mcp",outcome="allow"\} 1\n/);
  });

  it('refuses the grant\'s token at an upstream the grant does not list (403), though that upstream accepts the issuer', async () => {
    await refusedWith(stack(), await oncallToken(stack(), {}, AUD_OTHER), 'break_glass_not_allowed', '/other-mcp');
    const line = decisions(stack().gw).findLast((l) => l.reason === 'break_glass_not_allowed');
    expect(line).toMatchObject({ level: 40, ticket: 'INC-4711', decision: 'deny' });
  });

  it('refuses a token carrying a scope the grant does not list', async () => {
    await refusedWith(stack(), await oncallToken(stack(), { scope: 'mcp:tools mcp:admin' }), 'break_glass_not_allowed');
  });

  it('refuses a token living longer than the grant\'s maxTokenLifetimeSeconds, or without iat', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refusedWith(stack(), await oncallToken(stack(), { iat: now, exp: now + 601 }), 'break_glass_lifetime_exceeded');
    await refusedWith(stack(), await oncallToken(stack(), { iat: undefined }), 'break_glass_lifetime_exceeded');
  });

  it('refuses a token without the required MFA amr', async () => {
    await refusedWith(stack(), await oncallToken(stack(), { amr: ['pwd'] }), 'break_glass_claims_missing');
    await refusedWith(stack(), await oncallToken(stack(), { amr: 'mfa-ish' }), 'break_glass_claims_missing');
  });

  it('still applies every normal check first: a token for another audience is aud_mismatch, not break-glass', async () => {
    await refusedWith(stack(), await oncallToken(stack(), {}, 'https://elsewhere.test/mcp'), 'aud_mismatch');
  });
});

describe('a grant naming a client of a normal issuer', () => {
  let s: Stack | undefined;
  beforeAll(async () => {
    s = await startStack({ issuer: 'idp', clientId: 'oncall-cli', requireClaims: undefined, activatedAt: new Date(Date.now() + 3_600_000).toISOString(), expiresAt: new Date(Date.now() + 7_200_000).toISOString() }, { breakGlassClients: ['oncall-cli'] });
  });
  afterAll(() => closeStack(s));

  it('refuses that client before the window while the issuer\'s other clients pass', async () => {
    const stack = s as Stack;
    await refusedWith(stack, await stack.idp.token(AUD, { client_id: 'oncall-cli' }), 'break_glass_inactive');
    stack.upstream.reset();
    expect((await postMcp(stack.gw.url, await stack.idp.token(AUD, { client_id: 'test-client' }))).status).toBe(200);
    expect(stack.upstream.received).toHaveLength(1);
  });
});

describe('reloading a file with break-glass grants', () => {
  let s: Stack | undefined;
  beforeAll(async () => {
    s = await startStack({ activatedAt: new Date(Date.now() - 60_000).toISOString(), expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
  });
  afterAll(() => closeStack(s));

  function rewriteGrant(times: { activatedAt: string; expiresAt: string }): void {
    const file = (s as Stack).gw.configFile;
    const doc = parse(readFileSync(file, 'utf8')) as { breakGlass: Record<string, unknown>[] };
    doc.breakGlass[0] = { ...doc.breakGlass[0], ...times };
    writeFileSync(file, stringify(doc));
  }

  it('refuses a reload whose grant has expired, keeping the running config, and warns of an open grant on reload', async () => {
    const stack = s as Stack;
    rewriteGrant({ activatedAt: '2026-01-01T00:00:00Z', expiresAt: '2026-01-02T00:00:00Z' });
    expect(await stack.gw.gateway.reloadFromFile()).toBe(false);
    expect(stack.gw.logs.join('')).toMatch(/"event":"config_reload_problem".*breakGlass\.0\.expiresAt: expired at 2026-01-02T00:00:00Z: remove this grant \(ticket INC-4711\)/);
    stack.upstream.reset();
    expect((await postMcp(stack.gw.url, await oncallToken(stack))).status).toBe(200);

    const expiresAt = new Date(Date.now() + 1_800_000).toISOString();
    rewriteGrant({ activatedAt: new Date(Date.now() - 60_000).toISOString(), expiresAt });
    expect(await stack.gw.gateway.reloadFromFile()).toBe(true);
    const warned = stack.gw.logs.join('').split('\n').filter((l) => l.includes('"event":"config_warning"') && l.includes(`is ACTIVE until ${expiresAt}`));
    expect(warned).toHaveLength(1);
    expect(JSON.parse(warned[0] as string)).toMatchObject({ level: 40 });
  });

  it('after the grant is removed, the break-glass-only issuer\'s tokens stay refused; ordinary tokens pass', async () => {
    const stack = s as Stack;
    const file = stack.gw.configFile;
    const doc = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    delete doc['breakGlass'];
    writeFileSync(file, stringify(doc));
    expect(await stack.gw.gateway.reloadFromFile()).toBe(true);
    expect(stack.gw.gateway.config.breakGlass).toEqual([]);
    await refusedWith(stack, await oncallToken(stack), 'break_glass_inactive');
    stack.upstream.reset();
    expect((await postMcp(stack.gw.url, await stack.idp.token(AUD))).status).toBe(200);
  });
});

/** A GET SSE stream through the gateway at /other-mcp; resolves once the first event arrived. */
async function openStream(gw: StartedGateway, token: string): Promise<{ endedWithin(ms: number): Promise<string | undefined> }> {
  const res = await request(`${gw.url}/other-mcp`, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
  expect(res.statusCode).toBe(200);
  let text = '';
  let first: () => void = () => undefined;
  const gotFirst = new Promise<void>((resolve) => {
    first = resolve;
  });
  const ended = (async () => {
    try {
      for await (const chunk of res.body) {
        text += String(chunk);
        first();
      }
    } catch { /* cut */ }
  })();
  await gotFirst;
  return {
    endedWithin: async (ms) => ((await Promise.race([ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))])) ? text : undefined),
  };
}

describe('an SSE stream opened through a break-glass grant', () => {
  let s: Stack | undefined;
  let closesAt = 0;
  beforeAll(async () => {
    closesAt = Date.now() + 4_000;
    s = await startStack({ upstreams: ['mcp', 'other'], activatedAt: new Date(Date.now() - 60_000).toISOString(), expiresAt: new Date(closesAt).toISOString() }, {}, (url) => `${url}/sse`);
    // Every stream sends its first event, then stays open with nothing more to say.
    s.upstream.sseGate = (i) => (i >= 1 ? new Promise<void>(() => undefined) : Promise.resolve());
  });
  afterAll(async () => {
    if (s !== undefined) s.upstream.sseGate = undefined;
    await closeStack(s);
  });

  it('ends at the grant\'s expiresAt, long before its token expires', async () => {
    const stack = s as Stack;
    const stream = await openStream(stack.gw, await oncallToken(stack, {}, AUD_OTHER));
    expect(await stream.endedWithin(10_000)).toBeDefined();
    // Ended by the grant's deadline (timers fire at or after it), not the token's exp five minutes on.
    expect(Date.now()).toBeGreaterThanOrEqual(closesAt);
    expect(Date.now()).toBeLessThan(closesAt + 3_000);
    await until(2_000, async () => stack.gw.logs.join('').includes('"event":"stream_closed"'));
    expect(stack.gw.logs.join('')).toMatch(/"event":"stream_closed".*"reason":"break_glass_expired"/);
  }, 20_000);
});

/** A stack with an hour-long grant on both upstreams, whose upstream holds every SSE stream open after its first event. */
function useHeldStreamStack(): () => Stack {
  let s: Stack | undefined;
  beforeAll(async () => {
    s = await startStack({ upstreams: ['mcp', 'other'], activatedAt: new Date(Date.now() - 60_000).toISOString(), expiresAt: new Date(Date.now() + 3_600_000).toISOString() }, {}, (url) => `${url}/sse`);
    s.upstream.sseGate = (i) => (i >= 1 ? new Promise<void>(() => undefined) : Promise.resolve());
  });
  afterAll(async () => {
    if (s !== undefined) s.upstream.sseGate = undefined;
    await closeStack(s);
  });
  return () => s as Stack;
}

describe('an SSE stream opened through a grant the next reload removes', () => {
  const stackOf = useHeldStreamStack();

  it('ends with a revoked event naming break_glass_inactive; an ordinary stream goes on', async () => {
    const stack = stackOf();
    const glass = await openStream(stack.gw, await oncallToken(stack, {}, AUD_OTHER));
    const ordinary = await openStream(stack.gw, await stack.idp.token(AUD_OTHER));
    const file = stack.gw.configFile;
    const doc = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    delete doc['breakGlass'];
    writeFileSync(file, stringify(doc));
    expect(await stack.gw.gateway.reloadFromFile()).toBe(true);
    expect(await glass.endedWithin(3_000)).toMatch(/event: revoked\ndata: \{"reason":"break_glass_inactive"\}\n\n$/);
    expect(await ordinary.endedWithin(500)).toBeUndefined();
  });
});

describe('an SSE stream opened through a grant the next reload shortens', () => {
  const stackOf = useHeldStreamStack();

  it('does not outlive the new expiresAt: the stream timed to the old end is ended by the reload; a new one is still admitted', async () => {
    const stack = stackOf();
    const glass = await openStream(stack.gw, await oncallToken(stack, {}, AUD_OTHER));
    const file = stack.gw.configFile;
    const doc = parse(readFileSync(file, 'utf8')) as { breakGlass: Record<string, unknown>[] };
    const closesAt = Date.now() + 4_000;
    doc.breakGlass[0] = { ...doc.breakGlass[0], expiresAt: new Date(closesAt).toISOString() };
    writeFileSync(file, stringify(doc));
    expect(await stack.gw.gateway.reloadFromFile()).toBe(true);
    expect(await glass.endedWithin(closesAt + 2_000 - Date.now())).toMatch(/event: revoked\ndata: \{"reason":"break_glass_expired"\}\n\n$/);
    expect(Date.now()).toBeLessThan(closesAt + 2_000);
    // Inside the shortened window the grant still admits its tokens, and a new stream ends with it.
    stack.upstream.reset();
    expect((await postMcp(stack.gw.url, await oncallToken(stack))).status).toBe(200);
  }, 20_000);
});
