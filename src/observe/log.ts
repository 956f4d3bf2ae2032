import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

// Redaction is declared once (pino habit). The gateway never puts a token in a log object; these paths
// are the second line of defence for anything that might carry one.
const REDACT = [
  'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization', 'req.headers.cookie',
  'cookie', '*.cookie', 'token', '*.token', 'assertion', '*.assertion', 'clientSecret', '*.clientSecret',
];

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env['MCP_WARDEN_LOG_LEVEL'] ?? 'info',
      base: { service: 'mcp-warden' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}
