import { readFileSync } from 'node:fs';
import type { JWK } from 'jose';
import { generateGatewayJwk, writeKeyFile, type GatewayAlg } from './keys.ts';

// Gateway key rotation, one step per command, so each step can be rolled out before the next:
//   keys add      → a new key is published (JWKS) but does not sign yet
//   keys promote  → the new key signs; the old one stays published for upstreams' caches
//   keys retire   → the old key is removed once no assertion signed by it can still be valid

function read(file: string): JWK[] {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { keys?: JWK[] } & JWK;
  return Array.isArray(parsed.keys) ? parsed.keys : [parsed];
}

export async function generateKeyFile(file: string, alg: GatewayAlg): Promise<string> {
  const jwk = await generateGatewayJwk(alg);
  await writeKeyFile(file, jwk, true);
  return jwk.kid as string;
}

export async function addKey(file: string, alg: GatewayAlg): Promise<string> {
  const keys = read(file);
  const jwk = await generateGatewayJwk(alg);
  await writeKeyFile(file, { keys: [...keys, jwk] });
  return jwk.kid as string;
}

export async function promoteKey(file: string, kid: string): Promise<void> {
  const keys = read(file);
  const key = keys.find((k) => k.kid === kid);
  if (key === undefined) throw new Error(`no key ${kid} in ${file}`);
  await writeKeyFile(file, { keys: [key, ...keys.filter((k) => k !== key)] });
}

export async function retireKey(file: string, kid: string): Promise<void> {
  const keys = read(file);
  if (keys[0]?.kid === kid) throw new Error(`${kid} is the signing key: promote another key first`);
  const rest = keys.filter((k) => k.kid !== kid);
  if (rest.length === keys.length) throw new Error(`no key ${kid} in ${file}`);
  await writeKeyFile(file, { keys: rest });
}

export function listKeys(file: string): { kid: string; alg: string; signing: boolean }[] {
  return read(file).map((k, i) => ({ kid: String(k.kid), alg: String(k.alg), signing: i === 0 }));
}
