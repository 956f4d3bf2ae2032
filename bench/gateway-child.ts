import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { announceReady, serveIpc } from './ipc.ts';
import { cpuProfiler } from './cpu-profiler.ts';
import { gcCounter, pauseWindow } from './pauses.ts';

// The gateway in its own process (so its RSS and CPU seconds are its own), started through the same
// code path as `mcp-warden serve --config <file>`: startFromFile with the default logger, whose audit
// lines go to stdout (here /dev/null: the serialisation and the write are still paid, as in production).
// argv: <config file> [<src dir>] — the src dir lets a scratch copy of the sources be measured.

const configFile = process.argv[2] as string;
const srcDir = resolve(process.argv[3] ?? join(import.meta.dirname, '..', 'src'));
const { startFromFile } = (await import(pathToFileURL(join(srcDir, 'serve.ts')).href)) as typeof import('../src/serve.ts');

const gateway = await startFromFile(configFile);
const gc = (globalThis as { gc?: () => void }).gc;

// CPU profiles on request (inspector, same thread), so start-up and warm-up stay out of them.
const cpu = cpuProfiler();
// The allocation profile's inspector session, on request too.
let session: Session | undefined;

// Pauses of the gateway's event loop at the fixed rate (bench/pauses.ts).
const pauses = pauseWindow();
const gcCount = gcCounter();

serveIpc({
  pausesStart: () => pauses.start(),
  pausesStop: () => pauses.stop(),
  profileStart: () => cpu.start(),
  profileStop: (file) => cpu.stop(file as string),
  // Sampled allocation profile (which code allocates what), on request like the CPU profile.
  allocStart: async () => {
    session = new Session();
    session.connect();
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
    return true;
  },
  allocStop: async (file) => {
    if (session === undefined) throw new Error('allocation profiler not started');
    const { profile } = await session.post('HeapProfiler.stopSampling');
    session.disconnect();
    session = undefined;
    writeFileSync(file as string, JSON.stringify(profile));
    return true;
  },
  stats: () => ({ heapUsedBytes: process.memoryUsage().heapUsed, gcCount: gcCount(), rssKiB: Math.round(process.memoryUsage.rss() / 1024), heapUsedKiB: Math.round(process.memoryUsage().heapUsed / 1024), cpu: process.cpuUsage() }),
  gc: () => {
    gc?.();
    gc?.();
    return gc !== undefined;
  },
  exit: async () => {
    await Promise.race([gateway.close(), new Promise((r) => setTimeout(r, 2_000))]);
    setImmediate(() => process.exit(0));
  },
});
process.once('SIGTERM', () => process.exit(0));

announceReady({ port: gateway.addresses.traffic.port, adminPort: gateway.addresses.admin.port, ready: gateway.ready() });
