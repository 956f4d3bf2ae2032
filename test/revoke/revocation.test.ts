import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, AUD_OTHER, type StartedGateway } from '../helpers/gateway.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';
import { ACCOUNT_DISABLED, client, CREDENTIAL_CHANGE, issSub, PUSH_SECRET, RECEIVER_AUD, SESSION_REVOKED, TestTransmitter, startRevocationFixture, type RevocationFixture, TOKEN_CLAIMS_CHANGE, until } from '../helpers/transmitter.ts';

// Issue 21: revocation pushed to every replica, cutting cached tokens and open streams. The gateway is
// an SSF receiver (poll RFC 8936, push RFC 8935) of CAEP/RISC events for its configured issuer.

let idp: TestIdp;
let upstream: TestUpstream;
let tx: TestTransmitter;
let gw: StartedGateway;
let dir: string;
let fixture: RevocationFixture | undefined;

beforeAll(async () => {
  fixture = await startRevocationFixture('mcp-warden-revoke-');
  ({ idp, upstream, tx, gw, dir } = fixture);
});
afterAll(() => fixture?.close());

async function call(token: string): Promise<{ status: number; challenge: string | undefined; body: string }> {
  const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${token}` }, body: RPC });
  const challenge = res.headers['www-authenticate'];
  return { status: res.statusCode, challenge: typeof challenge === 'string' ? challenge : undefined, body: await res.body.text() };
}

async function push(token: string, secret = PUSH_SECRET, contentType = 'application/secevent+jwt'): Promise<{ status: number; body: string }> {
  const res = await request(`${gw.adminUrl}/ssf/push/idp`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': contentType }, body: token });
  return { status: res.statusCode, body: await res.body.text() };
}

const fresh = (sub: string, claims: Record<string, unknown> = {}): Promise<string> => idp.token(AUD, { sub, client_id: `client-of-${sub}`, ...claims });

describe('revocation by poll (RFC 8936)', () => {
  it('a cached token of a revoked client is refused with 401 token_revoked and the upstream receives nothing more', async () => {
    const token = await idp.token(AUD, { sub: 'agent-1', client_id: 'rogue-agent' });
    expect((await call(token)).status).toBe(200); // verified and cached
    expect((await call(token)).status).toBe(200); // served from the cache
    await tx.publish(SESSION_REVOKED, { subject: client('rogue-agent'), event_timestamp: Math.floor(Date.now() / 1000) });
    const t0 = Date.now();
    expect(await until(async () => (await call(token)).status === 401, 2_000)).toBe(true);
    console.log(`revocation by poll: cached token refused ${Date.now() - t0} ms after the SET was published`);
    const before = upstream.received.length;
    const refused = await call(token);
    expect(refused.status).toBe(401);
    expect(refused.challenge).toMatch(/^Bearer .*error="invalid_token"/);
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'invalid_token' });
    expect(upstream.received.length).toBe(before);
    expect(gw.logs.join('')).toContain('"reason":"token_revoked"');
    // Another client of the same issuer is untouched.
    expect((await call(await idp.token(AUD, { sub: 'agent-1', client_id: 'good-agent' }))).status).toBe(200);
  });

  it('an open SSE stream of the revoked subject ends at once with the revoked event', async () => {
    upstream.sseGate = (i) => (i >= 1 ? new Promise<void>(() => undefined) : Promise.resolve());
    const token = await idp.token(AUD_OTHER, { sub: 'streamer' });
    const res = await request(`${gw.url}/other-mcp`, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
    expect(res.statusCode).toBe(200);
    let text = '';
    const ended = (async () => {
      for await (const chunk of res.body) text += String(chunk);
    })().catch(() => undefined);
    expect(await until(() => text.includes('"n":0'), 2_000)).toBe(true);
    const closedBefore = upstream.sseClosed;
    await tx.publish(SESSION_REVOKED, { subject: issSub(idp.issuer, 'streamer'), event_timestamp: Math.floor(Date.now() / 1000) });
    const t0 = Date.now();
    await Promise.race([ended, new Promise((r) => setTimeout(r, 2_000))]);
    console.log(`revocation by poll: open stream ended ${Date.now() - t0} ms after the SET was published`);
    expect(text).toMatch(/data: \{"n":0\}\n\nevent: revoked\ndata: \{"reason":"token_revoked"\}\n\n$/);
    expect(await until(() => upstream.sseClosed > closedBefore, 1_000)).toBe(true);
    upstream.sseGate = undefined;
  });

  it('acknowledges each SET it applied, so the transmitter stops delivering it to this receiver', async () => {
    const jti = await tx.publish(SESSION_REVOKED, { subject: issSub(idp.issuer, 'acked') });
    expect(await until(() => gw.logs.join('').includes(jti), 2_000)).toBe(true);
    const polls = tx.polls;
    await until(() => tx.polls > polls + 2, 2_000);
    expect(gw.logs.join('').split(jti).length - 1).toBe(1); // applied once, not once per poll
  });
});

describe('each event type (CAEP session-revoked, credential-change, token-claims-change, RISC account-disabled)', () => {
  it('session-revoked cuts the subject\'s tokens issued until event_timestamp, not those issued after it', async () => {
    const now = Math.floor(Date.now() / 1000);
    const old = await fresh('s-user', { iat: now - 10 });
    const later = await fresh('s-user', { iat: now + 1 });
    const { token } = await tx.set(SESSION_REVOKED, { subject: issSub(idp.issuer, 's-user'), event_timestamp: now - 5 });
    expect((await push(token)).status).toBe(202);
    expect((await call(old)).status).toBe(401);
    expect((await call(later)).status).toBe(200);
  });

  it('credential-change cuts the subject\'s tokens minted with the old credential', async () => {
    const token = await fresh('c-user');
    expect((await call(token)).status).toBe(200);
    const set = await tx.set(CREDENTIAL_CHANGE, { subject: issSub(idp.issuer, 'c-user'), credential_type: 'password', change_type: 'update', event_timestamp: Math.floor(Date.now() / 1000) }, {}, { typ: 'application/secevent+jwt' }); // RFC 7515 §4.1.9: the media type spelling too
    expect((await push(set.token)).status).toBe(202);
    expect((await call(token)).status).toBe(401);
  });

  it('token-claims-change naming one token (jwt_id) cuts that token only', async () => {
    const changed = await fresh('t-user', { jti: 'the-changed-token' });
    const other = await fresh('t-user', { jti: 'another-token' });
    const set = await tx.set(TOKEN_CLAIMS_CHANGE, { claims: { role: 'reader' }, event_timestamp: Math.floor(Date.now() / 1000) }, { sub_id: { format: 'jwt_id', iss: idp.issuer, jti: 'the-changed-token' } });
    expect((await push(set.token)).status).toBe(202);
    expect((await call(changed)).status).toBe(401);
    expect((await call(other)).status).toBe(200);
  });

  it('account-disabled cuts every token of the subject, whatever its client', async () => {
    const a = await idp.token(AUD, { sub: 'd-user', client_id: 'one' });
    const b = await idp.token(AUD, { sub: 'd-user', client_id: 'two' });
    const set = await tx.set(ACCOUNT_DISABLED, { reason: 'hijacking' }, { sub_id: issSub(idp.issuer, 'd-user') });
    expect((await push(set.token)).status).toBe(202);
    expect((await call(a)).status).toBe(401);
    expect((await call(b)).status).toBe(401);
    expect((await call(await fresh('not-d-user'))).status).toBe(200);
  });

  it('refuses a subject it cannot map to token claims (email) with a reason, and revokes nothing', async () => {
    const token = await fresh('e-user', { email: 'e@example.com' });
    const set = await tx.set(SESSION_REVOKED, { subject: { format: 'email', email: 'e@example.com' } });
    const res = await push(set.token);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ err: 'invalid_request', description: expect.stringContaining('email') });
    expect((await call(token)).status).toBe(200);
    expect(gw.logs.join('')).toContain('"event":"set_refused"');
  });
});

describe('reload', () => {
  it('keeps every revocation across a reload that changes the transmitter, and reads the stream again', async () => {
    const token = await fresh('reload-user');
    const set = await tx.set(SESSION_REVOKED, { subject: issSub(idp.issuer, 'reload-user') });
    expect((await push(set.token)).status).toBe(202);
    expect((await call(token)).status).toBe(401);
    const doc = parse(readFileSync(gw.configFile, 'utf8')) as { revocation: { transmitters: Record<string, unknown>[] } };
    (doc.revocation.transmitters[0] as Record<string, unknown>)['staleAfterSeconds'] = 30;
    writeFileSync(gw.configFile, stringify(doc));
    expect(await gw.gateway.reloadFromFile()).toBe(true);
    expect((await call(token)).status).toBe(401);
    const polls = tx.polls;
    expect(await until(() => tx.polls > polls, 2_000)).toBe(true);
  });
});

describe('SET verification refusals (RFC 8417, RFC 8935)', () => {
  it('refuses a push without the bearer secret, with 401 and nothing applied', async () => {
    const token = await fresh('p-user');
    const set = await tx.set(SESSION_REVOKED, { subject: issSub(idp.issuer, 'p-user') });
    expect((await push(set.token, 'wrong-secret-wrong-secret-wrong-secret')).status).toBe(401);
    expect((await call(token)).status).toBe(200);
  });

  it('refuses a SET from another issuer (invalid_issuer)', async () => {
    const other = await TestIdp.start();
    try {
      const set = await other.sign({ iss: other.issuer, aud: RECEIVER_AUD, iat: Math.floor(Date.now() / 1000), jti: 'x1', events: { [SESSION_REVOKED]: { subject: issSub(idp.issuer, 'victim') } } }, { header: { typ: 'secevent+jwt' } });
      const res = await push(set);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ err: 'invalid_issuer' });
    } finally {
      await other.close();
    }
  });

  it('refuses a SET for another audience (invalid_audience)', async () => {
    const set = await tx.set(SESSION_REVOKED, { subject: issSub(idp.issuer, 'victim') }, { aud: 'https://another-receiver.example' });
    const res = await push(set.token);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ err: 'invalid_audience' });
  });

  it('refuses a SET without typ secevent+jwt, and an access token pushed as a SET', async () => {
    const untyped = await tx.set(SESSION_REVOKED, { subject: issSub(idp.issuer, 'victim') }, {}, { typ: 'JWT' });
    expect(JSON.parse((await push(untyped.token)).body)).toMatchObject({ err: 'invalid_request', description: expect.stringContaining('typ') });
    const accessToken = await fresh('victim');
    expect((await push(accessToken)).status).toBe(400);
  });

  it('refuses a SET whose signature is not the issuer key\'s (invalid_key), and a SET used as an access token', async () => {
    const impostor = await TestIdp.start();
    try {
      const forged = await impostor.sign({ iss: idp.issuer, aud: RECEIVER_AUD, iat: Math.floor(Date.now() / 1000), jti: 'forged', events: { [SESSION_REVOKED]: { subject: issSub(idp.issuer, 'victim') } } }, { header: { typ: 'secevent+jwt' } });
      expect(JSON.parse((await push(forged)).body)).toMatchObject({ err: 'invalid_key' });
    } finally {
      await impostor.close();
    }
    const set = await tx.set(SESSION_REVOKED, { subject: issSub(idp.issuer, 'victim') }, { aud: AUD, sub: 'victim', exp: Math.floor(Date.now() / 1000) + 60 });
    const asToken = await call(set.token);
    expect(asToken.status).toBe(401);
    expect(gw.logs.join('')).toContain('"reason":"typ_invalid"');
  });

  it('applies a SET once: a second SET with the same jti (a replay) changes nothing', async () => {
    const victim = await fresh('r-victim');
    const first = await tx.set(SESSION_REVOKED, { subject: issSub(idp.issuer, 'r-first') }, { jti: 'replayed-jti' });
    const replay = await tx.set(SESSION_REVOKED, { subject: issSub(idp.issuer, 'r-victim') }, { jti: 'replayed-jti' });
    expect((await push(first.token)).status).toBe(202);
    expect((await push(replay.token)).status).toBe(202); // RFC 8935: a repeated delivery is not an error
    expect((await call(victim)).status).toBe(200);
    expect(gw.logs.join('')).toContain('"event":"set_replayed"');
  });

  it('counts entries and SETs in /metrics and reports the stream in /readyz', async () => {
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/^mcp_warden_revocation_entries [1-9]\d*$/m);
    expect(metrics).toMatch(/^mcp_warden_ssf_sets_total\{issuer="idp",result="refused"\} [1-9]/m);
    expect(metrics).toMatch(/^mcp_warden_ssf_stream_stale\{issuer="idp"\} 0$/m);
    const ready = (await (await request(`${gw.adminUrl}/readyz`)).body.json()) as { ready: boolean; revocation: { streams: { issuer: string; stale: boolean }[] } };
    expect(ready.ready).toBe(true);
    expect(ready.revocation.streams[0]).toMatchObject({ issuer: 'idp', stale: false });
  });
});
