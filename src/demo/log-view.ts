import type { DestinationStream } from 'pino';

// The demo's terminal is read by a person: each decision becomes one short line, other lines their
// level and message. `mcp-warden serve` keeps pino JSON (for collectors and `audit verify`).

type Line = Record<string, unknown>;
const LEVELS: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Audit-chain plumbing: the hashes matter to `audit verify`, not to someone trying the demo. */
const QUIET = new Set(['audit_chain_start', 'audit_checkpoint']);

function clock(v: Line): string {
  const time = typeof v['time'] === 'string' ? v['time'] : new Date().toISOString();
  return time.slice(11, 19);
}

/** "12:00:01 allow demo tools/call whoami  sub=… client=…  200 rule=tools[1] 4 ms". */
export function formatDecision(v: Line): string {
  const parts = [clock(v), String(v['decision']).padEnd(6), String(v['upstream'] ?? '-'), String(v['rpcMethod'] ?? v['httpMethod'] ?? '')];
  if (v['target'] !== undefined) parts.push(String(v['target']));
  if (v['reason'] !== undefined) parts.push(`reason=${String(v['reason'])}`);
  if (v['sub'] !== undefined) parts.push(`sub=${String(v['sub'])}`);
  if (v['clientId'] !== undefined && v['clientId'] !== v['sub']) parts.push(`client=${String(v['clientId'])}`);
  parts.push(String(v['status'] ?? '-'));
  if (v['rule'] !== undefined) parts.push(`rule=${String(v['rule'])}`);
  parts.push(`${String(v['durationMs'] ?? 0)} ms`);
  return parts.join(' ');
}

function formatLine(text: string): string | undefined {
  let v: Line;
  try {
    v = JSON.parse(text) as Line;
  } catch {
    return text;
  }
  if (v['event'] === 'decision') return formatDecision(v);
  if (QUIET.has(String(v['event']))) return undefined;
  return `${clock(v)} ${LEVELS[Number(v['level'])] ?? 'LOG'} ${String(v['msg'] ?? v['event'] ?? '')}`;
}

/** A pino destination writing the readable form to `out` (the demo's stdout). */
export function readableDestination(out: (text: string) => void): DestinationStream {
  return {
    write(chunk: string): void {
      for (const text of chunk.split('\n')) {
        if (text === '') continue;
        const line = formatLine(text);
        if (line !== undefined) out(`${line}\n`);
      }
    },
  };
}
