// The policy test file (README "Policy tests"): YAML, validated strictly like the config itself.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../config/errors.ts';

const expectation = z.union([
  z.literal('allow'),
  z.literal('deny'),
  // The deciding entry, e.g. { allow: "rules[0]" }.
  z.strictObject({ allow: z.string().min(1) }),
  z.strictObject({ deny: z.string().min(1) }),
  z.strictObject({ insufficient_scope: z.array(z.string().min(1)).min(1) }),
]);

const testCase = z.strictObject({
  name: z.string().min(1),
  upstream: z.string().min(1).optional(),
  issuer: z.string().min(1).optional(),
  // Verified token claims (sub and exp are filled in when absent); scopes come from its scope claim.
  claims: z.record(z.string(), z.unknown()).default({}),
  method: z.string().min(1).optional(),
  tool: z.string().min(1).optional(),
  prompt: z.string().min(1).optional(),
  uri: z.string().min(1).optional(),
  arguments: z.unknown().optional(),
  expect: expectation,
}).superRefine((c, ctx) => {
  if ([c.tool, c.prompt, c.uri].filter((x) => x !== undefined).length > 1) ctx.addIssue({ code: 'custom', message: 'name one of tool, prompt or uri', path: [] });
  if (c.method === undefined && c.tool === undefined && c.prompt === undefined && c.uri === undefined) ctx.addIssue({ code: 'custom', message: 'a case needs a method (or a tool, prompt or uri)', path: ['method'] });
});

const testFile = z.strictObject({
  // The config under test, relative to the test file.
  config: z.string().min(1),
  cases: z.array(testCase).min(1),
});

export type PolicyCase = z.infer<typeof testCase>;
export type Expectation = z.infer<typeof expectation>;
export interface PolicyTests {
  readonly file: string;
  readonly configFile: string;
  readonly cases: readonly (PolicyCase & { readonly line: number | undefined })[];
}

/** Reads a policy test file; a problem in it is a ConfigError naming file:line, like the config's. */
export function loadPolicyTests(file: string, configOverride?: string): PolicyTests {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: undefined, key: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineAt = (path: readonly (string | number)[]): number | undefined => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
      const offset = (node as { range?: [number, number, number] } | null | undefined)?.range?.[0];
      if (offset !== undefined) return lines.linePos(offset).line;
    }
    return undefined;
  };
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => ({ file, line: lines.linePos(e.pos[0]).line, key: '', message: `YAML: ${e.message.split('\n')[0]}` })));
  const raw = doc.toJS() as unknown;
  // A bare list of cases needs --config; a mapping names its config.
  const input = Array.isArray(raw) ? { config: configOverride ?? '', cases: raw } : { ...(raw as object), ...(configOverride === undefined ? {} : { config: configOverride }) };
  const parsed = testFile.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      const inFile = Array.isArray(raw) && path[0] === 'cases' ? path.slice(1) : path;
      return { file, line: lineAt(inFile), key: path.join('.'), message: path[0] === 'config' ? 'needs config: <file> (or --config)' : issue.message };
    }));
  }
  const base = Array.isArray(raw) ? [] : ['cases'];
  return {
    file,
    configFile: configOverride ?? resolve(dirname(file), parsed.data.config),
    cases: parsed.data.cases.map((c, i) => ({ ...c, line: lineAt([...base, i]) })),
  };
}
