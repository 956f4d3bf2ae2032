import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { scanJson } from '../policy/json-scan.ts';
import { AUDIT_EVENTS, CHECKPOINT_TYP, lineHash } from './audit-chain.ts';

// `mcp-warden audit verify`: re-checks every chain in a log. Lines that are not audit lines (other
// pino lines, anything unparsable) are skipped; a line an attacker made unparsable shows as a gap.

export interface Finding {
  readonly severity: 'error' | 'warning';
  readonly chain: string | undefined;
  readonly line: number | undefined;
  readonly seq: number | undefined;
  readonly message: string;
}

export interface ChainSummary {
  readonly chain: string;
  readonly lines: number;
  readonly firstLine: number;
  readonly lastLine: number;
  readonly lastSeq: number;
  readonly checkpoints: number;
  readonly sealed: boolean;
}

export interface VerifyReport {
  readonly chains: readonly ChainSummary[];
  readonly findings: readonly Finding[];
  readonly tampered: boolean;
}

interface Entry {
  readonly line: number;
  readonly seq: number;
  readonly prev: unknown;
  readonly hash: string;
  readonly hashOk: boolean;
  readonly event: string;
  readonly jws: unknown;
  readonly final: boolean;
  /** Why the line's text has more than one JSON reading (a repeated key), if it has. */
  readonly fault: string | undefined;
}

type KeySet = ReturnType<typeof createLocalJWKSet>;

/** Reads a log file line by line and verifies each chain; `jwks` checks checkpoint signatures. */
export async function verifyAuditFile(file: string, jwks: JSONWebKeySet | undefined): Promise<VerifyReport> {
  const chains = new Map<string, Entry[]>();
  let n = 0;
  for await (const text of createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity })) {
    n += 1;
    const parsed = auditLine(text);
    if (parsed === undefined) continue;
    const list = chains.get(parsed.chain) ?? [];
    list.push(entryOf(parsed.value, n, parsed.fault));
    chains.set(parsed.chain, list);
  }
  const findings: Finding[] = [];
  const keys = jwks === undefined ? undefined : createLocalJWKSet(jwks);
  if (keys === undefined) findings.push({ severity: 'warning', chain: undefined, line: undefined, seq: undefined, message: 'checkpoint signatures not verified: no --jwks given' });
  const summaries: ChainSummary[] = [];
  for (const [chain, entries] of chains) summaries.push(await verifyChain(chain, entries, keys, findings));
  return { chains: summaries, findings, tampered: findings.some((f) => f.severity === 'error') };
}

function auditLine(text: string): { readonly chain: string; readonly value: Record<string, unknown>; readonly fault: string | undefined } | undefined {
  if (!text.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v['chain'] !== 'string' || typeof v['event'] !== 'string' || !AUDIT_EVENTS.has(v['event'])) return undefined;
  // RFC 8259 §4: with a repeated key readers disagree (JSON.parse keeps the last, others the first), so
  // a line could hash as written yet read otherwise in a log store: the hash vouches for one reading only.
  const fault = scanJson(text, 1_000, true); // keys only: no other fault before a repeat may hide it
  return { chain: v['chain'], value: v, fault: fault?.kind === 'duplicate_key' ? `repeats the key "${fault.key}"` : undefined };
}

function entryOf(v: Record<string, unknown>, line: number, fault: string | undefined): Entry {
  const hash = typeof v['hash'] === 'string' ? v['hash'] : '';
  // -1 = no valid seq: a line of the chain that cannot be placed in it (checkOrder refuses it).
  const seq = typeof v['seq'] === 'number' && Number.isSafeInteger(v['seq']) && v['seq'] >= 0 ? v['seq'] : -1;
  // The values are JSON as parsed: the hash is recomputed over exactly what the file holds.
  const hashOk = hash !== '' && lineHash(v as Parameters<typeof lineHash>[0]) === hash;
  return { line, seq, prev: v['prev'], hash, hashOk, event: String(v['event']), jws: v['jws'], final: v['final'] === true, fault };
}

type Report = (e: Entry | undefined, message: string) => void;

async function verifyChain(chain: string, entries: readonly Entry[], keys: KeySet | undefined, findings: Finding[]): Promise<ChainSummary> {
  const error: Report = (e, message) => void findings.push({ severity: 'error', chain, line: e?.line, seq: e?.seq, message });
  const { bySeq, last } = checkOrder(entries, error);
  checkLinks(bySeq, last, entries[0] as Entry, error);
  const checkpoints = entries.filter((e) => e.event === 'audit_checkpoint');
  let lastGood: Entry | undefined;
  let sealedBy: Entry | undefined;
  for (const cp of checkpoints) {
    if (!(await checkpointOk(chain, cp, keys, error))) continue;
    lastGood = cp;
    if (cp.final) sealedBy ??= cp;
  }
  if (sealedBy !== undefined) afterSeal(entries, sealedBy, error);
  const end = bySeq.get(last);
  const sealed = end !== undefined && end === lastGood && end.final;
  if (!sealed && end !== undefined) findings.push({ severity: 'warning', chain, line: end.line, seq: end.seq, message: tailWarning(entries, end, lastGood) });
  const first = entries[0] as Entry;
  return { chain, lines: entries.length, firstLine: first.line, lastLine: (entries.at(-1) as Entry).line, lastSeq: last, checkpoints: checkpoints.length, sealed };
}

/** Each line's own hash, then the file order: a repeated seq, or a seq lower than one before it. */
function checkOrder(entries: readonly Entry[], error: Report): { readonly bySeq: ReadonlyMap<number, Entry>; readonly last: number } {
  const bySeq = new Map<number, Entry>();
  let highest: Entry | undefined;
  for (const e of entries) {
    if (!e.hashOk) error(e, `line ${e.line} (seq ${e.seq}) was altered: its hash does not match its content`);
    if (e.fault !== undefined) error(e, `line ${e.line} (seq ${e.seq}) ${e.fault}: readers of the log may not see what was hashed`);
    // A line outside the seq order would escape every order and link check, whatever it says.
    if (e.seq < 0) {
      error(e, `line ${e.line} has no valid seq (a non-negative integer): it cannot belong to the chain`);
      continue;
    }
    const twin = bySeq.get(e.seq);
    if (twin !== undefined) error(e, `line ${e.line} repeats seq ${e.seq} of line ${twin.line}`);
    else bySeq.set(e.seq, e);
    if (highest !== undefined && e.seq < highest.seq) error(e, `line ${e.line} (seq ${e.seq}) is out of order: it comes after seq ${highest.seq} (line ${highest.line})`);
    if (highest === undefined || e.seq > highest.seq) highest = e;
  }
  return { bySeq, last: highest?.seq ?? -1 };
}

/** Walking seq 0 … last: a missing run is a removal; a prev that is not the hash of seq - 1 is a broken link. */
function checkLinks(bySeq: ReadonlyMap<number, Entry>, last: number, first: Entry, error: Report): void {
  for (let s = 0; s <= last; s++) {
    const e = bySeq.get(s);
    if (e === undefined) {
      let upto = s;
      while (upto + 1 <= last && !bySeq.has(upto + 1)) upto++;
      const before = bySeq.get(s - 1);
      const after = bySeq.get(upto + 1);
      const where = before === undefined ? `before line ${after?.line ?? first.line}` : `between line ${before.line} and line ${after?.line ?? before.line + 1}`;
      error(after, `${upto === s ? `seq ${s} is` : `seq ${s}–${upto} are`} missing (removed) ${where}`);
      s = upto;
      continue;
    }
    const expected = s === 0 ? null : bySeq.get(s - 1)?.hash;
    if (expected === undefined || e.prev === expected) continue;
    error(e, s === 0 ? `line ${e.line} (seq 0) starts the chain but links to a previous line` : `line ${e.line} (seq ${s}) does not link to seq ${s - 1} (line ${bySeq.get(s - 1)?.line}): prev differs from its hash`);
  }
}

/** The final checkpoint is the process's last line in the chain: any line after it was added since. */
function afterSeal(entries: readonly Entry[], seal: Entry, error: Report): void {
  for (const e of entries) {
    if (e.seq > seal.seq) error(e, `line ${e.line} (seq ${e.seq}) comes after the final checkpoint (line ${seal.line}, seq ${seal.seq}): a sealed chain has no more lines`);
  }
}

function tailWarning(entries: readonly Entry[], end: Entry, lastGood: Entry | undefined): string {
  if (lastGood === undefined) return `chain has no valid checkpoint: none of its ${entries.length} line(s) (lines ${(entries[0] as Entry).line}–${end.line}) is signed`;
  return `${end.seq - lastGood.seq} line(s) after the last checkpoint (line ${lastGood.line}, seq ${lastGood.seq}) are not signed, and the chain has no final checkpoint: the log may be truncated after line ${end.line} (seq ${end.seq})`;
}

/** A checkpoint's JWS must verify against the gateway's keys and name this chain, its own seq and the head before it. */
async function checkpointOk(chain: string, cp: Entry, keys: KeySet | undefined, error: (e: Entry, message: string) => void): Promise<boolean> {
  if (typeof cp.jws !== 'string') {
    error(cp, `line ${cp.line} (seq ${cp.seq}): checkpoint without a signature`);
    return false;
  }
  if (keys === undefined) return cp.hashOk;
  try {
    const { payload } = await jwtVerify(cp.jws, keys, { algorithms: ['EdDSA', 'Ed25519', 'ES256'], typ: CHECKPOINT_TYP });
    if (payload['chain'] !== chain || payload['seq'] !== cp.seq || payload['head'] !== cp.prev || (payload['final'] === true) !== cp.final) {
      error(cp, `line ${cp.line} (seq ${cp.seq}): the signed checkpoint does not match the line (chain, seq, head or final differ)`);
      return false;
    }
    return cp.hashOk;
  } catch {
    error(cp, `line ${cp.line} (seq ${cp.seq}): checkpoint signature does not verify against the JWKS (forged, or signed by a key not in it)`);
    return false;
  }
}

/** The report as text: one line per finding, then one per chain. */
export function formatReport(report: VerifyReport): string {
  const out: string[] = [];
  for (const f of report.findings) out.push(`${f.severity}: ${f.chain === undefined ? '' : `chain ${f.chain}: `}${f.message}`);
  for (const c of report.chains) out.push(`chain ${c.chain}: ${c.lines} line(s) (lines ${c.firstLine}–${c.lastLine}, seq 0–${c.lastSeq}), ${c.checkpoints} checkpoint(s)${c.sealed ? ', sealed' : ''}`);
  out.push(report.chains.length === 0 ? 'no audit lines found' : report.tampered ? 'TAMPERED' : 'ok');
  return out.join('\n') + '\n';
}
