import type { z } from 'zod';
import type { RawConfig } from './schema.ts';

type Path = readonly (string | number)[];

/**
 * A best-effort parse of a config the schema refused: what remains once every value at fault is taken
 * out, so that `validate` can run the semantic checks over the parts that did parse and report both
 * kinds in one run. Never used to serve: a draft exists only beside a ConfigError.
 */
export interface Draft {
  readonly raw: RawConfig;
  /** A path in the draft as the same path in the file (array entries taken out shift later ones). */
  readonly original: (path: Path) => (string | number)[];
  /** True when a problem at this (original) path could only be a consequence of a value taken out. */
  readonly removed: (path: Path) => boolean;
}

interface Removal {
  readonly array: Path;
  readonly index: number;
}

const MAX_ROUNDS = 16;

/** Takes out what each schema issue names until the schema accepts the rest; undefined if it never does. */
export function draftOf(schema: z.ZodType<RawConfig>, input: unknown): Draft | undefined {
  const data: unknown = structuredClone(input);
  const removedPaths: Path[] = [];
  const removals: Removal[] = [];
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const parsed = schema.safeParse(data);
    if (parsed.success) return makeDraft(parsed.data, removedPaths, removals);
    const spliced: Removal[] = [];
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      const targets = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...path, k]) : [path];
      for (const target of targets) {
        const at = presentAncestor(data, target);
        if (at === undefined) return undefined;
        removedPaths.push(originalOf(at, removals));
        const last = at[at.length - 1];
        if (typeof last === 'number') spliced.push({ array: at.slice(0, -1), index: last });
        else deleteKey(data, at);
      }
    }
    // Entries of one array go highest index first, so that the indices named in this round stay right.
    spliced.sort((a, b) => b.index - a.index).forEach((r) => {
      const array = valueAt(data, r.array);
      if (Array.isArray(array) && r.index < array.length) {
        array.splice(r.index, 1);
        removals.push(r);
      }
    });
  }
  return undefined;
}

function makeDraft(raw: RawConfig, removedPaths: readonly Path[], removals: readonly Removal[]): Draft {
  return {
    raw,
    original: (path) => originalOf(path, removals),
    removed: (path) => removedPaths.some((r) => r.length <= path.length && r.every((k, i) => path[i] === k)),
  };
}

/** Undoes the shifts of array removals, last first. */
function originalOf(path: Path, removals: readonly Removal[]): (string | number)[] {
  const out = [...path];
  for (let i = removals.length - 1; i >= 0; i--) {
    const { array, index } = removals[i] as Removal;
    const at = out[array.length];
    if (out.length > array.length && array.every((k, j) => out[j] === k) && typeof at === 'number' && at >= index) out[array.length] = at + 1;
  }
  return out;
}

// A required value that is missing cannot be taken out: the entry holding it goes instead. The root
// itself cannot go, and then there is no draft.
function presentAncestor(data: unknown, path: Path): Path | undefined {
  for (let depth = path.length; depth > 0; depth--) {
    const sub = path.slice(0, depth);
    if (valueAt(data, sub) !== undefined) return sub;
  }
  return undefined;
}

function valueAt(data: unknown, path: Path): unknown {
  let node = data;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

function deleteKey(data: unknown, path: Path): void {
  const parent = valueAt(data, path.slice(0, -1));
  const key = path[path.length - 1];
  if (parent !== null && typeof parent === 'object' && key !== undefined) delete (parent as Record<string | number, unknown>)[key];
}
