import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { LineCounter, isScalar, parseDocument, visit, type Document } from 'yaml';
import { configSchema, type RawConfig } from './schema.ts';
import { ConfigError, type ConfigProblem } from './errors.ts';
import { draftOf, type Draft } from './draft.ts';
import { knownKeys, nearestKey } from './suggest.ts';

export interface LoadedConfig {
  readonly raw: RawConfig;
  /** Finds the line of a key path, for errors raised after schema validation (lint, compile). */
  readonly locate: (path: readonly (string | number)[]) => number | undefined;
  readonly file: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** What the semantic checks may still read of a config the schema (or ${ENV}) refused. */
export interface Remains extends Omit<Draft, 'raw'> {
  readonly loaded: LoadedConfig;
  /** Lines whose value stood in for an unset variable: a semantic problem there is only its echo. */
  readonly skipLines: ReadonlySet<number | undefined>;
}

/** The schema's refusal, with what remains for the semantic checks (absent when nothing usable parsed). */
export class SchemaError extends ConfigError {
  readonly remains: Remains | undefined;
  constructor(problems: readonly ConfigProblem[], remains: Remains | undefined) {
    super(problems);
    this.remains = remains;
  }
}

/** Reads and validates a config file: YAML → ${ENV} → zod. Throws ConfigError with file:line:key. */
export function loadConfigFile(file: string, env: Env = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: undefined, key: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }]);
  }
  return parseConfigText(text, file, env);
}

export function parseConfigText(text: string, file: string, env: Env = process.env): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined): number | undefined =>
    offset === undefined ? undefined : lineCounter.linePos(offset).line;
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({ file, line: lineOf(e.pos[0]), key: '', message: `YAML: ${e.message.split('\n')[0]}` })));
  }
  // An unset variable is reported with everything else the file holds wrong, not on its own.
  const envProblems = interpolate(doc, env, (offset, message) => ({ file, line: lineOf(offset), key: '', message }));

  const locate = (path: readonly (string | number)[]): number | undefined => locatePath(doc, path, lineOf);
  const input: unknown = doc.toJS() ?? {};
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const remains = remainsOf(draftOf(configSchema, input), locate, file, envProblems);
    throw new SchemaError([...envProblems, ...parsed.error.issues.flatMap((issue) => schemaProblem(issue, file, locate))], remains);
  }
  if (envProblems.length > 0) throw new SchemaError(envProblems, remainsOf({ raw: parsed.data, original: (p) => [...p], removed: () => false }, locate, file, envProblems));
  return { raw: parsed.data, locate, file };
}

function remainsOf(draft: Draft | undefined, locate: LoadedConfig['locate'], file: string, envProblems: readonly ConfigProblem[]): Remains | undefined {
  if (draft === undefined) return undefined;
  return { loaded: { raw: draft.raw, locate, file }, original: draft.original, removed: draft.removed, skipLines: new Set(envProblems.map((p) => p.line)) };
}

type Issue = z.core.$ZodIssue;

// One problem per unknown key, on its own line, with the nearest known key when one is close.
function schemaProblem(issue: Issue, file: string, locate: LoadedConfig['locate']): ConfigProblem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code !== 'unrecognized_keys') return [{ file, line: locate(path), key: path.join('.'), message: issue.message }];
  const known = knownKeys(configSchema, path);
  return issue.keys.map((key) => {
    const keyPath = [...path, key];
    const near = nearestKey(key, known);
    const message = near === undefined ? 'unknown key' : `unknown key; did you mean \`${near}\`?`;
    return { file, line: locate(keyPath), key: keyPath.join('.'), message };
  });
}

// ${NAME} in scalar values only, so that line numbers stay those of the file. An unset variable is an
// error: silently substituting "" could turn a required value (an audience) into an empty one.
function interpolate(doc: Document, env: Env, problem: (offset: number | undefined, message: string) => ConfigProblem): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      node.value = node.value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
        const value = env[name];
        if (value === undefined) {
          problems.push(problem(node.range?.[0], `environment variable ${name} is not set`));
          return '';
        }
        return value;
      });
    },
  });
  return problems;
}

function locatePath(doc: Document, path: readonly (string | number)[], lineOf: (o: number | undefined) => number | undefined): number | undefined {
  // Walk down as far as the path exists; the deepest existing node is the best line we can name.
  for (let depth = path.length; depth >= 0; depth--) {
    const sub = path.slice(0, depth);
    const node = sub.length === 0 ? doc.contents : doc.getIn(sub, true);
    if (node !== undefined && node !== null && typeof node === 'object' && 'range' in node) {
      const range = (node as { range?: [number, number, number] }).range;
      // A key's line is best shown through the pair's key node; fall back to the value node.
      const keyLine = depth > 0 ? keyNodeLine(doc, sub, lineOf) : undefined;
      return keyLine ?? lineOf(range?.[0]);
    }
    if (isScalar(node)) return lineOf(node.range?.[0]);
  }
  return undefined;
}

function keyNodeLine(doc: Document, path: readonly (string | number)[], lineOf: (o: number | undefined) => number | undefined): number | undefined {
  const parentPath = path.slice(0, -1);
  const parent = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true);
  const last = path[path.length - 1];
  if (parent !== null && typeof parent === 'object' && 'items' in parent && typeof last === 'string') {
    const items = (parent as { items: unknown[] }).items;
    for (const item of items) {
      if (item !== null && typeof item === 'object' && 'key' in item) {
        const key = (item as { key: unknown }).key;
        if (isScalar(key) && key.value === last) return lineOf(key.range?.[0]);
      }
    }
  }
  return undefined;
}
