import { createLogger } from '../observe/log.ts';
import { ConfigError, formatProblem } from '../config/errors.ts';
import { startDemoStack } from './stack.ts';
import { instructions } from './instructions.ts';
import { readableDestination } from './log-view.ts';

// `npm start`: the embedded issuer, the gateway and a demo MCP server, on loopback, until Ctrl-C.
const configFile = process.argv[2] ?? 'config/demo.yaml';
// At info every allow/deny decision shows, one readable line each (log-view.ts); MCP_WARDEN_LOG_LEVEL=warn hides them.
const logger = createLogger({ level: process.env['MCP_WARDEN_LOG_LEVEL'] ?? 'info', destination: readableDestination((text) => process.stdout.write(text)) });
try {
  const stack = await startDemoStack(configFile, logger);
  process.stdout.write(instructions(stack.config, stack.issuer.url));
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping the gateway, the demo server and the issuer…\n');
    void stack.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  // Without a handler SIGHUP ends the process, and every client then meets a dead port.
  process.on('SIGHUP', () => {
    void stack.reload().then((problems) => {
      for (const p of problems) process.stderr.write(`error: ${p}\n`);
      process.stdout.write(problems.length === 0 ? `reloaded ${configFile}\n` : `kept the running configuration\n`);
    });
  });
  process.on('SIGTERM', stop);
} catch (err) {
  if (err instanceof ConfigError) for (const p of err.problems) process.stderr.write(`error: ${formatProblem(p)}\n`);
  else if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') process.stderr.write(`error: a demo port is already in use (${(err as NodeJS.ErrnoException & { port?: number }).port ?? ''}); stop the other process or edit ${configFile}\n`);
  else process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
