import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { JSONWebKeySet } from 'jose';
import { formatReport, verifyAuditFile } from './audit-verify.ts';

const JWKS_TIMEOUT_MS = 10_000;

/** `mcp-warden audit verify <file> [--jwks <file|url>]`: 0 intact, 1 tampered, 2 usage; undefined = print usage. */
export async function auditCommand(args: readonly string[], out: (text: string) => void, err: (text: string) => void): Promise<number | undefined> {
  const [sub, ...rest] = args;
  if (sub !== 'verify') return undefined;
  let file: string | undefined;
  let jwksSource: string | undefined;
  try {
    const { values, positionals } = parseArgs({ args: [...rest], options: { jwks: { type: 'string' } }, allowPositionals: true, strict: true });
    if (positionals.length !== 1) return undefined;
    file = positionals[0];
    jwksSource = values.jwks;
  } catch {
    return undefined;
  }
  let jwks: JSONWebKeySet | undefined;
  try {
    jwks = jwksSource === undefined ? undefined : await loadJwks(jwksSource);
  } catch (e) {
    err(`error: --jwks ${jwksSource}: ${e instanceof Error ? e.message : 'unreadable'}\n`);
    return 2;
  }
  try {
    const report = await verifyAuditFile(file as string, jwks);
    out(formatReport(report));
    return report.tampered ? 1 : 0;
  } catch (e) {
    err(`error: ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})\n`);
    return 2;
  }
}

/** The gateway's public keys: its `/.well-known/jwks.json` URL, or a saved copy (keep one per retired key). */
async function loadJwks(source: string): Promise<JSONWebKeySet> {
  const text = /^https?:\/\//.test(source)
    ? await fetch(source, { signal: AbortSignal.timeout(JWKS_TIMEOUT_MS) }).then(async (r) => {
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return r.text();
    })
    : readFileSync(source, 'utf8');
  const parsed = JSON.parse(text) as { keys?: unknown };
  if (!Array.isArray(parsed.keys)) throw new Error('not a JWK set ({"keys":[…]})');
  return parsed as JSONWebKeySet;
}
