import { readFileSync } from 'node:fs';

// The pin file and the pinning settings, apart from the pin stores, so that compiling a config reads
// a pin file without importing what is built from the compiled config.

export interface PinningConfig {
  readonly onChange: 'report' | 'block';
  /** Absolute path of the pin file (JSON); undefined = trust on first use, in memory. */
  readonly file: string | undefined;
  readonly unlistedTools: 'allow' | 'deny';
}

export interface PinFile {
  readonly tools: Readonly<Record<string, string>>;
}

/** The pin file, or no pins when it does not exist yet (every tool is then new until pinned). */
export function readPinFile(file: string): PinFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { tools: {} };
  }
  const parsed = JSON.parse(text) as unknown;
  const tools = typeof parsed === 'object' && parsed !== null ? (parsed as { tools?: unknown }).tools : undefined;
  if (typeof tools !== 'object' || tools === null || Object.values(tools).some((h) => typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h))) {
    throw new Error(`${file}: not a pin file ({"tools": {"<name>": "<sha256 hex>"}})`);
  }
  return { tools: tools as Record<string, string> };
}
