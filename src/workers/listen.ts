import { availableParallelism } from 'node:os';

/** Node added `reusePort` to `net.Server.listen` in 22.12 / 23.1; Linux has had SO_REUSEPORT since 3.9. */
export function reusePortAvailable(platform: NodeJS.Platform = process.platform, version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const supported = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  return supported && (platform === 'linux' || platform === 'freebsd');
}

/**
 * How a worker's traffic listener shares its port. SO_REUSEPORT where available: each worker binds its
 * own socket (`exclusive`, so the cluster primary does not hand it a shared one) and the kernel spreads
 * connections. Elsewhere, and for port 0 (each worker would get a port of its own), the cluster
 * module's shared handle: the primary accepts and hands connections round-robin.
 */
export function sharedListen(worker: boolean, port: number): { readonly exclusive?: true; readonly reusePort?: true } {
  if (!worker || port === 0 || !reusePortAvailable()) return {};
  return { exclusive: true, reusePort: true };
}

/** `workers: auto` = the cores this process may use (cgroup CPU limits included, as Node reports them). */
export function resolveWorkers(value: number | 'auto' | undefined): number {
  if (value === undefined) return 1;
  return value === 'auto' ? availableParallelism() : value;
}

/** Parses `--workers N|auto`; undefined when the text is neither. */
export function parseWorkers(text: string): number | 'auto' | undefined {
  if (text === 'auto') return 'auto';
  if (!/^[1-9][0-9]{0,2}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 256 ? n : undefined;
}
