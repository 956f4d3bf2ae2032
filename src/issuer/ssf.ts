// The embedded issuer as an SSF transmitter (README "Revocation"): what it revokes becomes a CAEP
// session-revoked SET, signed with its current signing key, on an RFC 8936 poll stream the gateways
// pull. Emitted on RFC 7009 revocation (the grant ends), RFC 7592 client deletion, and `mcp-warden
// revoke` (POST /ssf/revoke with the admin secret). SSF 1.0 transmitter metadata at /.well-known/ssf-configuration.
import { randomUUID } from 'node:crypto';
import { bearerSecretMatches, secretDigest } from '../lib/bearer-secret.ts';
import { sendJson } from '../lib/json-response.ts';
import { readSmallBody } from '../proxy/bounded.ts';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { importJWK, SignJWT, type CryptoKey } from 'jose';
import type { Provider } from 'oidc-provider';
import { ConfigError } from '../config/errors.ts';
import { CAEP_SESSION_REVOKED } from '../revoke/events.ts';
import { servePoll, SetStream } from '../revoke/transmitter.ts';
import type { KeyRing } from './key-ring.ts';
import type { IssuerSettings } from './options.ts';

export const SSF_POLL_PATH = '/ssf/poll';
export const SSF_REVOKE_PATH = '/ssf/revoke';
const METADATA_PATH = '/.well-known/ssf-configuration';
const MIN_SECRET = 32;

/** What `mcp-warden revoke` names: exactly one of them. */
export type RevokeTarget = { readonly client: string } | { readonly subject: string } | { readonly jti: string };

export class IssuerTransmitter {
  readonly stream: SetStream;
  readonly #issuer: string;
  readonly #audience: string;
  readonly #keyRing: KeyRing;
  readonly #alg: string;
  readonly #now: () => number;
  readonly #pollSecret: Buffer;
  readonly #adminSecret: Buffer;
  #signer: { readonly kid: string; readonly key: CryptoKey } | undefined;

  constructor(settings: NonNullable<IssuerSettings['ssf']>, issuer: string, alg: string, keyRing: KeyRing, now: () => number) {
    this.#issuer = issuer;
    this.#audience = settings.audience;
    this.#keyRing = keyRing;
    this.#alg = alg;
    this.#now = now;
    this.#pollSecret = secretHash(settings.pollSecretFile, 'ssf.pollSecretFile');
    this.#adminSecret = secretHash(settings.adminSecretFile, 'ssf.adminSecretFile');
    this.stream = new SetStream({ retentionMs: settings.retentionSeconds * 1000, maxSets: 100_000, maxReceivers: 1_000, now });
  }

  /** Every provider instance (one per key change) reports its revocations here. */
  attach(provider: Provider): void {
    provider.on('grant.revoked', (ctx) => {
      const token = ctx.oidc?.entities['RefreshToken'] ?? ctx.oidc?.entities['AccessToken'] ?? ctx.oidc?.entities['ClientCredentials'];
      if (token?.clientId === undefined) return;
      // One subject through one client: a complex subject (SSF 1.0) of user and application.
      const subject = token.accountId === undefined ? application(token.clientId) : { format: 'complex', user: { format: 'iss_sub', iss: this.#issuer, sub: token.accountId }, application: { format: 'opaque', id: token.clientId } };
      void this.emit(subject);
    });
    provider.on('registration_delete.success', (_ctx, client) => void this.emit(application(client.clientId)));
  }

  /** A session-revoked SET about `subject` (the tokens issued until now), published on the stream. */
  async emit(subject: Readonly<Record<string, unknown>>): Promise<string> {
    const jti = randomUUID();
    const nowS = Math.floor(this.#now() / 1000);
    const { kid, key } = await this.#signingKey();
    const set = await new SignJWT({ jti, aud: this.#audience, sub_id: subject, events: { [CAEP_SESSION_REVOKED]: { event_timestamp: nowS } } })
      .setProtectedHeader({ alg: this.#alg, kid, typ: 'secevent+jwt' })
      .setIssuer(this.#issuer)
      .setIssuedAt(nowS)
      .sign(key);
    this.stream.publish(jti, set);
    return jti;
  }

  /** The transmitter's paths; false for every other (oidc-provider answers them). */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (path === SSF_POLL_PATH) return servePoll(this.stream, req, res, (a) => bearerSecretMatches(a, this.#pollSecret)), true;
    if (path === METADATA_PATH) return sendJson(res, 200, this.#metadata()), true;
    if (path !== SSF_REVOKE_PATH) return false;
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'method_not_allowed' }), true;
    if (!bearerSecretMatches(req.headers.authorization, this.#adminSecret)) return sendJson(res, 401, { error: 'invalid_token' }), true;
    void readJson(req).then(async (body) => {
      if (body === 'too_large') return; // the connection is gone
      const subject = body === undefined ? undefined : subjectOf(body, this.#issuer);
      if (subject === undefined) return sendJson(res, 400, { error: 'invalid_request', error_description: 'name exactly one of client, subject or jti' });
      sendJson(res, 200, { jti: await this.emit(subject) });
    }).catch(() => sendJson(res, 500, { error: 'server_error' }));
    return true;
  }

  #metadata(): Record<string, unknown> {
    return {
      spec_version: '1_0',
      issuer: this.#issuer,
      jwks_uri: new URL('/jwks', this.#issuer).href,
      delivery_methods_supported: ['urn:ietf:rfc:8936'],
      authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6750' }],
      default_subjects: 'ALL',
    };
  }

  async #signingKey(): Promise<{ readonly kid: string; readonly key: CryptoKey }> {
    const view = this.#keyRing.view();
    if (this.#signer?.kid !== view.signingKid) {
      const jwk = view.keys.find((k) => k.kid === view.signingKid) ?? view.keys[0];
      if (jwk === undefined) throw new Error('no signing key');
      this.#signer = { kid: view.signingKid, key: (await importJWK({ ...jwk }, this.#alg)) as CryptoKey };
    }
    return this.#signer;
  }
}

const application = (clientId: string): Record<string, unknown> => ({ format: 'complex', application: { format: 'opaque', id: clientId } });

function subjectOf(body: Record<string, unknown>, iss: string): Record<string, unknown> | undefined {
  const named = (['client', 'subject', 'jti'] as const).filter((k) => body[k] !== undefined);
  if (named.length !== 1) return undefined;
  const value = body[named[0] as string];
  if (typeof value !== 'string' || value.length === 0 || value.length > 1024) return undefined;
  if (named[0] === 'client') return application(value);
  if (named[0] === 'subject') return { format: 'iss_sub', iss, sub: value };
  return { format: 'jwt_id', iss, jti: value };
}

function secretHash(file: string, key: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError([{ file: 'issuer options', line: undefined, key, message: `cannot read the secret file (${(err as NodeJS.ErrnoException).code ?? 'error'})` }]);
  }
  if (text.length < MIN_SECRET || /\s/.test(text)) throw new ConfigError([{ file: 'issuer options', line: undefined, key, message: `the secret must be at least ${MIN_SECRET} characters with no whitespace` }]);
  return secretDigest(text);
}

/** The admin call's JSON object (16 KiB at most); undefined when it is not one. */
async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined | 'too_large'> {
  const body = await readSmallBody(req, 16 * 1024);
  if (body === 'too_large') return body;
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
