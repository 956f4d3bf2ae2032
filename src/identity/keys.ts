import { hkdfSync } from 'node:crypto';
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { ConfigError } from '../config/errors.ts';
import { privateModeProblem, writePrivateFile } from '../lib/private-file.ts';

export type GatewayAlg = 'EdDSA' | 'ES256';

export interface GatewayKeys {
  /** The first key signs; every key is published so upstreams keep verifying through a rotation. */
  readonly signer: { readonly key: CryptoKey; readonly kid: string; readonly alg: GatewayAlg };
  readonly publicJwks: { readonly keys: readonly JWK[] };
  /**
   * Session-binding MAC keys, derived (HKDF) from each private key: every replica holding the same key
   * file agrees without a shared store. The first mints; all verify, so sessions survive a rotation.
   */
  readonly sessionSecrets: readonly Buffer[];
  /**
   * RFC 7638 thumbprints of every public key in the file: no trusted issuer may publish one of them,
   * or a token the gateway signed would verify as that issuer's access token.
   */
  readonly thumbprints: ReadonlySet<string>;
}

/** A new private JWK with a thumbprint kid (RFC 7638). */
export async function generateGatewayJwk(alg: GatewayAlg = 'EdDSA'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg === 'EdDSA' ? 'Ed25519' : 'ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint(jwk);
  jwk.alg = alg;
  jwk.use = 'sig';
  return jwk;
}

/** Writes a gateway key file, one JWK or a set (lib/private-file.ts: 0600, atomic); `exclusive` refuses to replace one. */
export async function writeKeyFile(file: string, content: JWK | { readonly keys: readonly JWK[] }, exclusive = false): Promise<void> {
  await writePrivateFile(file, JSON.stringify(content, null, 2) + '\n', { exclusive });
}

/**
 * Loads the gateway's signing keys: a private JWK, or {"keys":[…]} whose first key signs. Generated on
 * first start when absent. A world-readable, unreadable, uncreatable or malformed file refuses start
 * (SC-168): without a key, no request is ever forwarded.
 */
export async function loadGatewayKeys(file: string, configFile: string, line?: number): Promise<GatewayKeys> {
  const fail = (message: string): never => {
    throw new ConfigError([{ file: configFile, line, key: 'identity.signingKeyFile', message: `${file}: ${message}` }]);
  };
  const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? 'error';
  let text: string;
  try {
    const st = statSync(file);
    const unsafe = privateModeProblem(st.mode);
    if (unsafe !== undefined) fail(unsafe);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if (code(err) !== 'ENOENT') fail(`cannot read (${code(err)})`);
    try {
      try {
        await writeKeyFile(file, await generateGatewayJwk(), true);
      } catch (raced) {
        // Another replica sharing the directory wrote it first: use its key, never replace it.
        if (code(raced) !== 'EEXIST') throw raced;
      }
      text = readFileSync(file, 'utf8');
    } catch (created) {
      // e.g. a dangling symlink where a Kubernetes Secret should have been mounted
      return fail(`is absent and cannot be created (${code(created)})`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail('is not JSON');
  }
  const list = Array.isArray((parsed as { keys?: unknown }).keys) ? (parsed as { keys: unknown[] }).keys : [parsed];
  if (list.length === 0) fail('holds no key');
  const publicKeys: JWK[] = [];
  const sessionSecrets: Buffer[] = [];
  const thumbprints = new Set<string>();
  let signer: GatewayKeys['signer'] | undefined;
  for (const [i, entry] of list.entries()) {
    const jwk = entry as JWK;
    const alg = jwk.alg === 'ES256' || (jwk.alg === undefined && jwk.kty === 'EC') ? 'ES256' : jwk.alg === 'EdDSA' || jwk.alg === 'Ed25519' || (jwk.alg === undefined && jwk.kty === 'OKP') ? 'EdDSA' : undefined;
    if (alg === undefined || typeof jwk.d !== 'string') fail(`key ${i} is not a private EdDSA or ES256 JWK`);
    const kid = typeof jwk.kid === 'string' && jwk.kid !== '' ? jwk.kid : await calculateJwkThumbprint(jwk);
    let key: CryptoKey;
    try {
      key = (await importJWK({ ...jwk, ext: false }, alg)) as CryptoKey;
    } catch {
      return fail(`key ${i} cannot be imported`);
    }
    const { d: _d, ...pub } = jwk;
    publicKeys.push({ ...pub, kid, alg: alg as string, use: 'sig' });
    thumbprints.add(await calculateJwkThumbprint(pub));
    if (i === 0) signer = { key, kid, alg: alg as GatewayAlg };
    sessionSecrets.push(Buffer.from(hkdfSync('sha256', Buffer.from(jwk.d as string, 'base64url'), 'mcp-warden', 'mcp-session-binding', 32)));
  }
  return Object.freeze({ signer: signer as GatewayKeys['signer'], publicJwks: Object.freeze({ keys: Object.freeze(publicKeys) }), sessionSecrets: Object.freeze(sessionSecrets), thumbprints });
}

/** `validate`: the key file must be usable if it exists; an absent one is generated at first start. */
export async function checkGatewayKeyFile(file: string, configFile: string, line?: number): Promise<void> {
  try {
    lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
  }
  await loadGatewayKeys(file, configFile, line);
}
