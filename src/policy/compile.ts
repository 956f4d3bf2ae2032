// Policy rules → predicates, compiled once at config load (STYLE rule 2).

export type RuleTarget =
  | { readonly kind: 'tool' | 'prompt'; readonly match: (name: string) => boolean }
  | { readonly kind: 'resource'; readonly prefix: string };

export interface PolicyRule {
  /** Where the rule came from, for the audit log: "tools[0]", "rules[2]". */
  readonly source: string;
  readonly method: (method: string) => boolean;
  readonly target: RuleTarget | undefined;
  readonly scopes: readonly string[];
  readonly claims: ReadonlyMap<string, ReadonlySet<string>> | undefined;
  readonly deny: boolean;
}

interface RawToolRule {
  readonly name: string;
  readonly scopes: readonly string[];
  readonly claims?: Readonly<Record<string, readonly string[]>> | undefined;
  readonly deny: boolean;
}
interface RawRule {
  readonly method: string;
  readonly tool?: string | undefined;
  readonly prompt?: string | undefined;
  readonly resource?: string | undefined;
  readonly scopes: readonly string[];
  readonly claims?: Readonly<Record<string, readonly string[]>> | undefined;
  readonly deny: boolean;
}

/** Evaluation order: `tools` entries first (the most specific form), then `rules`, each in file order. */
export function compileRules(tools: readonly RawToolRule[], rules: readonly RawRule[]): readonly PolicyRule[] {
  const out: PolicyRule[] = [];
  tools.forEach((t, i) => {
    out.push(Object.freeze({
      source: `tools[${i}]`,
      method: globMatcher('tools/call'),
      target: Object.freeze({ kind: 'tool' as const, match: globMatcher(t.name) }),
      scopes: Object.freeze([...t.scopes]),
      claims: compileClaims(t.claims),
      deny: t.deny,
    }));
  });
  rules.forEach((r, i) => {
    let target: RuleTarget | undefined;
    if (r.tool !== undefined) target = { kind: 'tool', match: globMatcher(r.tool) };
    else if (r.prompt !== undefined) target = { kind: 'prompt', match: globMatcher(r.prompt) };
    else if (r.resource !== undefined) target = { kind: 'resource', prefix: r.resource };
    out.push(Object.freeze({
      source: `rules[${i}]`,
      method: globMatcher(r.method),
      target: target === undefined ? undefined : Object.freeze(target),
      scopes: Object.freeze([...r.scopes]),
      claims: compileClaims(r.claims),
      deny: r.deny,
    }));
  });
  return Object.freeze(out);
}

function compileClaims(claims: Readonly<Record<string, readonly string[]>> | undefined): ReadonlyMap<string, ReadonlySet<string>> | undefined {
  if (claims === undefined) return undefined;
  return new Map(Object.entries(claims).map(([k, v]) => [k, new Set(v)]));
}

/** `*` matches any run of characters; everything else is literal. */
export function globMatcher(pattern: string): (value: string) => boolean {
  if (!pattern.includes('*')) return (value) => value === pattern;
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\\/-]/g, '\\$&')).join('.*') + '$', 's');
  return (value) => re.test(value);
}
