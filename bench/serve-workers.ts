import cluster from 'node:cluster';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { announceReady, serveIpc } from './ipc.ts';

// `mcp-warden serve --config <file> --workers <n>` for the bench: the CLI's own main() from the sources
// measured (BENCH_SRC), so the cluster primary re-runs this file for each worker. The primary talks to
// the bench over IPC once its admin listener reports every worker ready.
// argv: <config file> <workers> <src dir> <admin port>

const [configFile, workers, src, adminPort] = process.argv.slice(2) as [string, string, string, string];
const { main } = (await import(pathToFileURL(join(resolve(src), 'cli.ts')).href)) as typeof import('../src/cli.ts');
await main(['serve', '--config', configFile, '--workers', workers]);

if (cluster.isPrimary) {
  const deadline = Date.now() + 60_000;
  let ready = false;
  while (!ready && Date.now() < deadline) {
    ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then(async (r) => (await r.body?.cancel(), r.ok), () => false);
    if (!ready) await new Promise((r) => setTimeout(r, 200));
  }
  serveIpc({ exit: () => process.kill(process.pid, 'SIGTERM') });
  announceReady({ ready });
}
