import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { JWTPayload } from 'jose';
import { SetStream, servePoll } from '../../src/revoke/transmitter.ts';
import { TestIdp } from './idp.ts';
import { startGateway, twoUpstreamConfig, type StartedGateway } from './gateway.ts';
import { TestUpstream } from './upstream.ts';

export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';
export const TOKEN_CLAIMS_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/token-claims-change';
export const ACCOUNT_DISABLED = 'https://schemas.openid.net/secevent/risc/event-type/account-disabled';
export const POLL_SECRET = 'poll-secret-for-the-test-transmitter';
export const PUSH_SECRET = 'push-secret-of-at-least-thirty-two-chars';
export const RECEIVER_AUD = 'https://gw.test/ssf';

/**
 * An SSF transmitter for tests: the real RFC 8936 SetStream over HTTP on 127.0.0.1, signing SETs with
 * a TestIdp's keys (so the gateway verifies them with that issuer's JWKS). `down` answers 503.
 */
export class TestTransmitter {
  readonly stream: SetStream;
  readonly server: Server;
  readonly idp: TestIdp;
  readonly audience: string;
  down = false;
  polls = 0;
  readonly errors: { jti: string; err: string; description: string }[] = [];
  #url = '';
  #n = 0;

  private constructor(idp: TestIdp, audience: string) {
    this.idp = idp;
    this.audience = audience;
    this.stream = new SetStream({ retentionMs: 600_000, maxSets: 1_000, maxReceivers: 16, now: Date.now, onSetError: (_r, jti, err, description) => this.errors.push({ jti, err, description }) });
    this.server = createServer((req, res) => {
      this.polls++;
      if (this.down) return void res.writeHead(503).end();
      servePoll(this.stream, req, res, (a) => a === `Bearer ${POLL_SECRET}`);
    });
  }

  static async start(idp: TestIdp, audience: string): Promise<TestTransmitter> {
    const t = new TestTransmitter(idp, audience);
    await new Promise<void>((resolve) => t.server.listen(0, '127.0.0.1', resolve));
    t.#url = `http://127.0.0.1:${(t.server.address() as AddressInfo).port}/ssf/poll`;
    return t;
  }

  get url(): string {
    return this.#url;
  }

  /** A SET (typ secevent+jwt) with one event; claims and header may be overridden by the test. */
  async set(type: string, event: Record<string, unknown>, claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<{ jti: string; token: string }> {
    const jti = `set-${Date.now()}-${this.#n++}`;
    const token = await this.idp.sign({ iss: this.idp.issuer, aud: this.audience, iat: Math.floor(Date.now() / 1000), jti, events: { [type]: event }, ...claims }, { header: { typ: 'secevent+jwt', ...header } });
    return { jti, token };
  }

  async publish(type: string, event: Record<string, unknown>, claims: JWTPayload = {}): Promise<string> {
    const { jti, token } = await this.set(type, event, claims);
    this.stream.publish(jti, token);
    return jti;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export const issSub = (iss: string, sub: string): Record<string, unknown> => ({ format: 'iss_sub', iss, sub });
export const client = (clientId: string): Record<string, unknown> => ({ format: 'complex', application: { format: 'opaque', id: clientId } });

/** twoUpstreamConfig (/mcp → echo, /other-mcp → sse) with one transmitter for issuer `idp`, secrets written to `secrets`. */
export function revocationConfig(idpIssuer: string, jwksUri: string, upstreamUrl: string, txUrl: string, secrets: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  writeFileSync(join(secrets, 'poll.secret'), `${POLL_SECRET}\n`);
  writeFileSync(join(secrets, 'push.secret'), `${PUSH_SECRET}\n`);
  return twoUpstreamConfig({ issuer: idpIssuer, jwksUri }, upstreamUrl, {
    other: { target: `${upstreamUrl}/sse` },
    root: {
      revocation: {
        audience: RECEIVER_AUD,
        transmitters: [{ issuer: 'idp', poll: { url: txUrl, intervalMs: 100, authorizationFile: join(secrets, 'poll.secret') }, push: { secretFile: join(secrets, 'push.secret') }, ...extra }],
      },
    },
  });
}

/** Polls `check` every 25 ms until it holds or `ms` pass (bounded, for every wait in these tests). */
export async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

/** An IdP, an upstream, a transmitter and a gateway polling it (revocationConfig), secrets in `dir`. */
export interface RevocationFixture {
  readonly idp: TestIdp;
  readonly upstream: TestUpstream;
  readonly tx: TestTransmitter;
  readonly gw: StartedGateway;
  readonly dir: string;
  close(): Promise<void>;
}

/** Starts the fixture the revocation suites share, once the gateway has polled the transmitter. */
export async function startRevocationFixture(dirPrefix: string): Promise<RevocationFixture> {
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  const idp = await TestIdp.start();
  const upstream = await TestUpstream.start();
  const tx = await TestTransmitter.start(idp, RECEIVER_AUD);
  const gw = await startGateway(revocationConfig(idp.issuer, idp.jwksUri, upstream.url, tx.url, dir));
  await until(() => tx.polls > 0, 3_000);
  return {
    idp, upstream, tx, gw, dir,
    async close() {
      upstream.sseGate = undefined;
      await gw.close();
      await tx.close();
      await upstream.close();
      await idp.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
