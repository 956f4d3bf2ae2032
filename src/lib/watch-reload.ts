import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/** A debounced reload of one file: `trigger` schedules it (SIGHUP calls it too), `close` stops watching. */
export interface ReloadWatch {
  readonly trigger: () => void;
  close(): void;
}

/**
 * Watches the file's directory, not the file: editors and ConfigMap updates replace the file (a
 * `..data` symlink swap) rather than write it in place. Several events in a burst make one reload.
 * Where the directory cannot be watched, `unavailable` is told and only `trigger` reloads.
 */
export function watchForReload(file: string, reload: () => void, unavailable: () => void): ReloadWatch {
  let pending: NodeJS.Timeout | undefined;
  const trigger = (): void => {
    clearTimeout(pending);
    pending = setTimeout(reload, 200);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(file), (_event, name) => {
      if (name === basename(file) || name === '..data') trigger();
    });
  } catch {
    unavailable();
  }
  return {
    trigger,
    close() {
      watcher?.close();
      clearTimeout(pending);
    },
  };
}
