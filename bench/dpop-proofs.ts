import { createHash, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

// The client side of the bench's "warm DPoP" row: one key pair (its thumbprint is the token's cnf.jkt)
// and pools of single-use RFC 9449 proofs for one URL, minted just before each run so every proof's iat
// is inside the gateway's acceptance window when it is sent.

export interface BenchDpopKey {
  readonly jkt: string;
  /** Writes `count` proofs (one per line) for POST `htu` carrying `token`'s ath. */
  mintProofs(file: string, count: number, htu: string, token: string): Promise<void>;
}

export async function benchDpopKey(): Promise<BenchDpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk: JWK = await exportJWK(publicKey);
  return {
    jkt: await calculateJwkThumbprint(jwk),
    async mintProofs(file, count, htu, token) {
      const ath = createHash('sha256').update(token).digest('base64url');
      const one = (): Promise<string> => new SignJWT({ htm: 'POST', htu, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ath })
        .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk })
        .sign(privateKey as CryptoKey);
      const out: string[] = [];
      while (out.length < count) out.push(...(await Promise.all(Array.from({ length: Math.min(512, count - out.length) }, one))));
      writeFileSync(file, out.join('\n') + '\n');
    },
  };
}
