import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Config } from '../config/compile.ts';
import { ConfigError } from '../config/errors.ts';
import { readPinFile } from './pin-file.ts';

/**
 * `mcp-warden pins update`: accepts the definitions the gateway observed (<file>.observed, written
 * when a listed tool differed from its pin) into the pin file. The running gateway re-reads the pin
 * file when it changes, and releases the tools it held back. Returns one line per tool pinned.
 */
export function updatePins(config: Config, only: string | undefined): string {
  const upstreams = config.upstreams.filter((u) => u.pinning?.file !== undefined && (only === undefined || u.name === only));
  if (upstreams.length === 0) throw new ConfigError([{ file: config.file, line: undefined, key: 'pinning.file', message: only === undefined ? 'no upstream has a pin file' : `upstream "${only}" has no pin file` }]);
  const lines: string[] = [];
  for (const u of upstreams) {
    const file = u.pinning?.file as string;
    const observed = readObserved(`${file}.observed`);
    if (observed.size === 0) {
      lines.push(`${u.name}: ${file} is up to date (nothing observed)`);
      continue;
    }
    const tools: Record<string, string> = { ...readPinFile(file).tools };
    for (const [name, { change, hash }] of [...observed].sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(`${u.name}: pinned ${name} (${change}${tools[name] === undefined ? '' : `, was ${tools[name].slice(0, 12)}`}, now ${hash.slice(0, 12)})`);
      tools[name] = hash;
    }
    const sorted = Object.fromEntries(Object.entries(tools).sort(([a], [b]) => a.localeCompare(b)));
    writeFileSync(`${file}.tmp`, JSON.stringify({ tools: sorted }, null, 2) + '\n', { mode: 0o644 });
    renameSync(`${file}.tmp`, file);
    rmSync(`${file}.observed`, { force: true });
  }
  return lines.join('\n') + '\n';
}

function readObserved(file: string): Map<string, { change: string; hash: string }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return new Map();
  }
  const tools = typeof parsed === 'object' && parsed !== null ? (parsed as { tools?: unknown }).tools : undefined;
  const out = new Map<string, { change: string; hash: string }>();
  if (typeof tools !== 'object' || tools === null) return out;
  for (const [name, v] of Object.entries(tools)) {
    const { change, hash } = (v ?? {}) as { change?: unknown; hash?: unknown };
    if (typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash)) out.set(name, { change: typeof change === 'string' ? change : 'new', hash });
  }
  return out;
}
