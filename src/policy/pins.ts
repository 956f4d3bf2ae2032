import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync, renameSync } from 'node:fs';
import type { Config, UpstreamConfig } from '../config/compile.ts';
import { readPinFile, type PinFile, type PinningConfig } from './pin-file.ts';
import type { Logger } from '../observe/log.ts';
import type { Metrics } from '../observe/metrics.ts';
import { deny, type Denial } from '../reasons.ts';

// Tool catalogue pinning (README "Pinned tool catalogues"): a tool's definition is hashed the first
// time the gateway sees it in a listing it filters, or taken from the pin file; a later listing with
// another definition ("rug pull") or a tool the pin file does not hold is reported and, with
// onChange: block, the tool is hidden and its calls refused until `mcp-warden pins update` pins it.
// Kept per compiled upstream (a WeakMap), carried across a reload of the same settings.


export type PinChange = 'new' | 'changed';
export interface PinReporter {
  (upstream: string, tool: string, change: PinChange): void;
}

/** A change is one warn line and one metric increment, once per definition seen (never a definition's text). */
export function pinReporter(logger: Logger, metrics: Metrics): PinReporter {
  return (upstream, tool, change) => {
    metrics.toolPinChange(upstream, change);
    logger.warn({ event: 'tool_pin', upstream, tool, change }, 'a listed tool differs from its pinned definition');
  };
}


const MAX_TOOLS = 4096;

class PinStore {
  readonly config: PinningConfig;
  /** Approved hashes: the pin file's, or the first seen (no file). */
  pinned = new Map<string, string>();
  /** The definition last seen per tool, when it differs from its pin (written to <file>.observed). */
  readonly differing = new Map<string, { readonly change: PinChange; readonly hash: string; readonly definition: unknown }>();
  /** The definition each tool had in its latest listing since start (what a call would now run). */
  readonly lastSeen = new Map<string, string>();
  #fileStamp = -1;
  readonly #report: PinReporter;
  readonly #upstream: string;

  constructor(upstream: string, config: PinningConfig, report: PinReporter) {
    this.#upstream = upstream;
    this.config = config;
    this.#report = report;
    this.refresh();
  }

  /** Re-reads the pin file when it changed on disk (after `pins update`); only on the mismatch path. */
  refresh(): void {
    if (this.config.file === undefined) return;
    const stamp = mtimeOf(this.config.file);
    if (stamp === this.#fileStamp) return;
    let tools: Readonly<Record<string, string>>;
    try {
      tools = readPinFile(this.config.file).tools;
    } catch {
      return; // a file being rewritten or broken: the pins held so far stay (validate reports it)
    }
    this.#fileStamp = stamp;
    this.pinned = new Map(Object.entries(tools));
    for (const name of [...this.differing.keys()]) if (this.pinned.get(name) === this.differing.get(name)?.hash) this.differing.delete(name);
  }

  /** One tool of a listing: whether it may be shown (false only with onChange: block). */
  observe(tool: Readonly<Record<string, unknown>>): boolean {
    const name = tool['name'];
    if (typeof name !== 'string') return false;
    const hash = definitionHash(tool);
    if (this.lastSeen.has(name) || this.lastSeen.size < MAX_TOOLS) this.lastSeen.set(name, hash);
    if (this.pinned.get(name) !== hash) this.refresh();
    const pin = this.pinned.get(name);
    if (pin === hash) {
      // Back to its pinned definition: no longer held back.
      if (this.differing.size > 0) this.differing.delete(name);
      return true;
    }
    if (pin === undefined && this.config.file === undefined) {
      // Trust on first use: without a pin file the first definition seen is the pin.
      if (this.pinned.size < MAX_TOOLS) this.pinned.set(name, hash);
      return true;
    }
    const change: PinChange = pin === undefined ? 'new' : 'changed';
    if (this.differing.get(name)?.hash !== hash && this.differing.size < MAX_TOOLS) {
      this.differing.set(name, { change, hash, definition: pinnedView(tool) });
      this.#report(this.#upstream, name, change);
      this.#writeObserved();
    }
    return this.config.onChange === 'report';
  }

  /**
   * A tools/call's refusal. With block, a call is forwarded only for a tool whose latest listed
   * definition is its pin: one not listed since start (after a restart: clients list
   * first) is refused as unlisted, one listed otherwise as a mismatch. With report, only
   * unlistedTools: deny refuses, a tool neither listed nor pinned.
   */
  refusal(tool: string): Denial | undefined {
    const seen = this.lastSeen.get(tool);
    if (this.config.onChange === 'block') {
      if (seen === undefined) return deny('tool_unlisted');
      if (this.pinned.get(tool) !== seen) this.refresh();
      return this.pinned.get(tool) === seen ? undefined : deny('tool_pin_mismatch');
    }
    if (this.config.unlistedTools === 'deny' && seen === undefined && !this.pinned.has(tool)) return deny('tool_unlisted');
    return undefined;
  }

  #writeObserved(): void {
    if (this.config.file === undefined) return;
    const observed = Object.fromEntries([...this.differing].map(([name, d]) => [name, d]));
    const tmp = `${this.config.file}.observed.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify({ upstream: this.#upstream, tools: observed }, null, 2) + '\n', { mode: 0o600 });
      renameSync(tmp, `${this.config.file}.observed`);
    } catch {
      // An unwritable directory must not fail the listing: the change is still reported and held back.
    }
  }
}

const stores = new WeakMap<UpstreamConfig, PinStore>();

/** Builds the pin stores of a config (once, in buildState), carrying first-seen pins of an unchanged upstream. */
export function registerPins(config: Config, previous: Config | undefined, report: PinReporter): void {
  for (const upstream of config.upstreams) {
    if (upstream.pinning === undefined) continue;
    const before = previous?.upstreams.find((u) => u.name === upstream.name);
    const old = before === undefined ? undefined : stores.get(before);
    const store = new PinStore(upstream.name, upstream.pinning, report);
    // The same settings: what was seen carries over (a reload must not forget a held-back tool);
    // first-seen pins too when there is no file (with one, the file is the pins).
    if (old !== undefined && JSON.stringify(old.config) === JSON.stringify(upstream.pinning)) {
      if (upstream.pinning.file === undefined) store.pinned = new Map(old.pinned);
      for (const [k, v] of old.differing) if (store.pinned.get(k) !== v.hash) store.differing.set(k, v);
      for (const [k, v] of old.lastSeen) store.lastSeen.set(k, v);
    }
    stores.set(upstream, store);
  }
}

/** Called for every tool of every listing the gateway filters; false = hide it. */
export function observeTool(upstream: UpstreamConfig, tool: Readonly<Record<string, unknown>>): boolean {
  return upstream.pinning === undefined ? true : (stores.get(upstream)?.observe(tool) ?? false);
}

/** The refusal of a tools/call by the pinned catalogue, if any. */
export function pinRefusal(upstream: UpstreamConfig, tool: string): Denial | undefined {
  if (upstream.pinning === undefined) return undefined;
  const store = stores.get(upstream);
  return store === undefined ? deny('tool_pin_mismatch') : store.refusal(tool);
}

/** /readyz detail: per pinned upstream, the tools whose definition differs from the pin. */
export function pinStatus(config: Config): readonly { upstream: string; onChange: string; changed: string[]; new: string[] }[] {
  return config.upstreams.flatMap((u) => {
    const store = u.pinning === undefined ? undefined : stores.get(u);
    if (store === undefined) return [];
    const names = (change: PinChange): string[] => [...store.differing].filter(([, d]) => d.change === change).map(([n]) => n).sort();
    return [{ upstream: u.name, onChange: store.config.onChange, changed: names('changed'), new: names('new') }];
  });
}

/**
 * SHA-256 of the canonical JSON of what a tool is: name, description, schemas, annotations, how it
 * executes (execution: task support) and its _meta (extensions such as a UI resource the client renders).
 */
export function definitionHash(tool: Readonly<Record<string, unknown>>): string {
  return createHash('sha256').update(canonical(pinnedView(tool))).digest('hex');
}

function pinnedView(tool: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return {
    name: tool['name'], description: tool['description'], inputSchema: tool['inputSchema'], outputSchema: tool['outputSchema'],
    annotations: tool['annotations'], execution: tool['execution'], _meta: tool['_meta'],
  };
}

/** JSON with object keys sorted at every level and undefined members left out (RFC 8785 in spirit). */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonical(v))).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value).sort().filter((k) => (value as Record<string, unknown>)[k] !== undefined);
    return `{${entries.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function mtimeOf(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

