import { randomBytes } from 'node:crypto';
import { link, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * The one permission rule for files holding private keys (the gateway's signing key, the embedded
 * issuer's keys): read and write for the owner, read for the group at most — a Kubernetes Secret
 * mounted with the pod's fsGroup arrives 0440 — and nothing for others. A file outside the rule is
 * refused, never silently tightened. Files mcp-warden writes itself are 0600.
 */
const FORBIDDEN_BITS = 0o027;

/** Why a private file's mode is refused; undefined when it follows the rule. */
export function privateModeProblem(mode: number): string | undefined {
  if ((mode & FORBIDDEN_BITS) === 0) return undefined;
  return `is writable by its group or accessible to other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`;
}

/**
 * Writes a private file whole or not at all: a temporary 0600 file beside it, fsync, then rename (or,
 * with `exclusive`, a hard link that fails when the file already exists, so two processes generating
 * a key at first start never replace each other's). A reader never sees half a file.
 */
export async function writePrivateFile(file: string, text: string, options: { readonly exclusive?: boolean } = {}): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (options.exclusive === true) await link(temporary, file);
    else await rename(temporary, file);
  } finally {
    await rm(temporary, { force: true });
  }
}
