import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

// Redaction is declared once (pino habit). The gateway never puts a token in a log object; these paths
// are the second line of defence for anything that might carry one.
const REDACT = [
  'authorization', 'cookie', 'token', 'assertion', 'clientSecret',
  'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie', 'introspection.clientSecret',
]; // explicit paths only: wildcard paths are re-walked on every line (3.6 % of the warm-path profile)

// Lines to stdout are batched (like Envoy's access-log flush interval): one write per ~4 KiB or 200 ms
// instead of one per request, which was ~15 % of the gateway's CPU. pino flushes the buffer on exit
// (also after SIGTERM/SIGINT); only a hard kill can lose the last 200 ms.
const BUFFER_BYTES = 4096;
const FLUSH_MS = 200;

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env['MCP_WARDEN_LOG_LEVEL'] ?? 'info',
      base: { service: 'mcp-warden' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: false, minLength: BUFFER_BYTES, periodicFlush: FLUSH_MS }),
  );
}

// pino's isoTime builds a Date and its ISO text for every line; here the text up to the second is
// built once per second and the milliseconds appended (the same ISO 8601 text, issue 25).
let lastSecond = -1;
let secondText = '';
export function isoTime(): string {
  const ms = Date.now();
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    secondText = `,"time":"${new Date(second * 1000).toISOString().slice(0, 20)}`;
  }
  const milli = ms - second * 1000;
  return `${secondText}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z"`;
}

/** Writes one line whose members are already JSON text; undefined when this logger must serialise itself. */
export type RawLineWriter = (level: 'info' | 'warn', members: string, msg: string) => void;

type PinoInternals = Record<symbol, unknown> & Logger;

/**
 * A writer for lines the caller has already serialised (the audit chain hashes its own canonical text):
 * the same line pino would write for an object with those members, without pino serialising it again
 * (issue 25: the audit line was written twice, once to hash, once to log). Only for a logger with
 * none of what would change such a line: no mixin, log formatter, stream hook, nested key or message
 * prefix, and a plain destination (a multistream needs pino's per-line metadata). `handles(key)`
 * is false when pino would redact or re-serialise a top-level key: the caller falls back for those.
 */
export function rawLineWriter(logger: Logger): { readonly write: RawLineWriter; readonly handles: (key: string) => boolean } | undefined {
  const s = pino.symbols;
  const l = logger as PinoInternals;
  const formatters = l[s.formattersSym] as { log?: unknown } | undefined;
  const hooks = l[s.hooksSym] as { streamWrite?: unknown } | undefined;
  const stream = l[s.streamSym] as (DestinationStream & Record<symbol, unknown>) | undefined;
  if (stream === undefined || typeof stream.write !== 'function' || stream[s.needsMetadataGsym] === true) return undefined;
  if (l[s.mixinSym] !== undefined || formatters?.log !== undefined || hooks?.streamWrite !== undefined) return undefined;
  if (l[s.nestedKeySym] !== null && l[s.nestedKeySym] !== undefined) return undefined;
  if ((l[(s as unknown as Record<string, symbol>)['msgPrefixSym'] as symbol] ?? '') !== '' || l[s.messageKeySym] !== 'msg') return undefined;
  const stringifiers = l[s.stringifiersSym] as Record<string | symbol, unknown>;
  const serializers = l[s.serializersSym] as Record<string, unknown>;
  const time = l[s.timeSym] as () => string;
  return {
    handles: (key) => stringifiers[key] === undefined && serializers[key] === undefined && stringifiers[s.wildcardFirstSym] === undefined,
    write: (level, members, msg) => {
      const levels = l[s.lsCacheSym] as Record<number, string>;
      const head = `${levels[logger.levels.values[level] as number] as string}${time()}${l[s.chindingsSym] as string}`;
      stream.write(`${head},${members},"msg":${JSON.stringify(msg)}${l[s.endSym] as string}`);
    },
  };
}
