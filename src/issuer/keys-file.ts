// The issuer's private keys on disk: a JWKS whose keys also carry their rotation dates
// (`activeAtMs`, `retireAtMs`, extra JWK members that RFC 7517 §4 says readers ignore).
import { readFile, stat } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK } from 'jose';
import type { PrivateJwk } from 'oidc-provider';
import { z } from 'zod';
import { ConfigError } from '../config/errors.ts';
import { privateModeProblem, writePrivateFile } from '../lib/private-file.ts';
import type { KeyRecord } from './key-schedule.ts';
import type { SigningAlg } from './types.ts';

const entrySchema = z.looseObject({
  kty: z.enum(['EC', 'OKP']),
  kid: z.string().min(1),
  alg: z.enum(['ES256', 'EdDSA']),
  use: z.literal('sig'),
  d: z.string().min(1),
  activeAtMs: z.number().int(),
  retireAtMs: z.number().int().optional(),
});
const fileSchema = z.object({ keys: z.array(entrySchema).min(1) });

function problem(file: string, message: string): ConfigError {
  return new ConfigError([{ file, line: undefined, key: 'keysFile', message }]);
}

/** Reads the keys file; undefined when it does not exist yet. */
export async function readKeysFile(file: string, alg: SigningAlg): Promise<readonly KeyRecord[] | undefined> {
  let mode: number;
  try {
    mode = (await stat(file)).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const unsafe = privateModeProblem(mode);
  if (unsafe !== undefined) throw problem(file, unsafe);
  let parsed: z.infer<typeof fileSchema>;
  try {
    parsed = fileSchema.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch (cause) {
    throw problem(file, `is not a keys file written by mcp-warden (${cause instanceof Error ? cause.message.split('\n')[0] : 'unreadable'})`);
  }
  const records: KeyRecord[] = [];
  for (const { activeAtMs, retireAtMs, ...jwk } of parsed.keys) {
    if (jwk.alg !== alg) {
      throw problem(file, `holds ${jwk.alg} keys but signingAlg is ${alg}; keep the algorithm or start from a new keys file`);
    }
    try {
      await importJWK(jwk, alg);
    } catch {
      throw problem(file, `key ${jwk.kid} is not a valid private ${alg} key`);
    }
    records.push(retireAtMs === undefined ? { jwk, activeAtMs } : { jwk, activeAtMs, retireAtMs });
  }
  return records;
}

/** Replaces the keys file atomically (lib/private-file.ts). */
export async function writeKeysFile(file: string, records: readonly KeyRecord[]): Promise<void> {
  const keys = records.map((r) => ({ ...r.jwk, activeAtMs: r.activeAtMs, retireAtMs: r.retireAtMs }));
  await writePrivateFile(file, `${JSON.stringify({ keys }, null, 2)}\n`);
}

/** A fresh signing key; its kid is the RFC 7638 thumbprint. */
export async function generateKeyRecord(alg: SigningAlg, activeAtMs: number): Promise<KeyRecord> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const exported = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(exported);
  const jwk: PrivateJwk = { ...exported, kty: exported.kty ?? '', kid, alg, use: 'sig' };
  return { jwk, activeAtMs };
}
