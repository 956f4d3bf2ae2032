import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// A memory cgroup with a pod's limit, so a Node process started inside sizes its heap (young generation
// included) as it would in that pod: V8 reads the limit at start-up. Used by the soak and the bench's
// SSE phase. Needs root (or a delegated cgroup); callers fall back to explicit V8 flags otherwise.

export interface MemoryCgroup {
  /** Write a pid here to move it in; `startInside` does it for a child before node starts. */
  readonly procs: string;
  remove(): void;
}

const PREFIX = 'mcp-warden-';

/** argv for spawn: a shell joins the cgroup, then becomes the command (exec), so only it is inside. */
export function startInside(cgroup: MemoryCgroup, command: string, args: readonly string[]): [string, string[]] {
  return ['/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', cgroup.procs, command, ...args]];
}

/** A memory cgroup (v2, else v1) limited to mib MiB, when this process may create one; undefined otherwise. */
export function memoryCgroup(purpose: string, mib: number): MemoryCgroup | undefined {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const root = v2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory';
  removeStale(root);
  const dir = join(root, `${PREFIX}${purpose}-${process.pid}`);
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(mib * 2 ** 20));
    return { procs: join(dir, 'cgroup.procs'), remove: () => removeDir(dir) };
  } catch {
    removeDir(dir);
    return undefined;
  }
}

/** Empty cgroups left by a run that was killed before it could remove its own (their names end in its pid). */
function removeStale(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => n.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const n of names) {
    // Only those whose creator is gone: a live run's cgroup may still be empty, about to be joined.
    if (existsSync(`/proc/${/-(\d+)$/.exec(n)?.[1] ?? 'none'}`)) continue;
    try {
      if (readFileSync(join(root, n, 'cgroup.procs'), 'utf8').trim() === '') rmdirSync(join(root, n));
    } catch {
      // busy or not ours to remove
    }
  }
}

function removeDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // never created, or still busy: the kernel removes nothing while a process is inside
  }
}
