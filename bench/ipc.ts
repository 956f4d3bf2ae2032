// Child side of the bench's IPC: a child announces `ready` with its facts, then answers numbered
// commands from the orchestrator. A child whose parent disappears exits, so nothing outlives a run.

export type Handler = (arg: unknown) => unknown;

interface Command {
  readonly id: number;
  readonly cmd: string;
  readonly arg: unknown;
}

export function serveIpc(handlers: Readonly<Record<string, Handler>>): void {
  if (process.send === undefined) throw new Error('bench child started without an IPC channel');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (raw) => {
    const m = raw as Command;
    const handler = handlers[m.cmd];
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown command ${m.cmd}`);
        return handler(m.arg);
      })
      .then(
        (result) => process.send?.({ id: m.id, ok: true, result }),
        (err: unknown) => process.send?.({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
      );
  });
}

export function announceReady(info: Readonly<Record<string, unknown>>): void {
  process.send?.({ type: 'ready', ...info });
}
