import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

// A CPU profile of this process on request (inspector, same thread), for the bench children that are
// profiled under load: the gateway and the machinery floor, sampled the same way so their costs compare.

export interface CpuProfiler {
  start(): Promise<boolean>;
  /** Writes the .cpuprofile to `file`. */
  stop(file: string): Promise<boolean>;
}

export function cpuProfiler(intervalUs = 200): CpuProfiler {
  let session: Session | undefined;
  return {
    async start() {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
      await session.post('Profiler.start');
      return true;
    },
    async stop(file) {
      if (session === undefined) throw new Error('profiler not started');
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      session = undefined;
      writeFileSync(file, JSON.stringify(profile));
      return true;
    },
  };
}
