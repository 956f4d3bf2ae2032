// Policy rules → predicates, compiled once at config load (STYLE rule 2).
import { compileCondition, type Condition } from './condition.ts';
import { fold, foldUri } from './names.ts';

/**
 * How a rule's pattern meets a name: in both its literal and its normalised form (`exact`), in only one
 * of them (`folded`), or not at all. A restricting rule (deny, scopes, claims) applies on either fit;
 * a rule allows only on an exact fit, so `delete_*` judges `Delete_File` and `ｄelete_file`, while
 * `search` never lets `SEARCH` through (README "Names").
 */
export type Fit = 'exact' | 'folded' | 'none';

/** A name as the policy judges it: literal, and folded once per call (names.ts), never once per rule. */
export interface JudgedName {
  readonly literal: string;
  readonly folded: string;
}

export type NameMatcher = (name: JudgedName) => Fit;

/** What a rule names besides the method: a tool or prompt name glob, or a resource URI prefix. */
export interface RuleTarget {
  readonly kind: 'tool' | 'prompt' | 'resource';
  readonly match: NameMatcher;
  /** The resource rule's URI prefix as configured (resource templates are judged against it). */
  readonly prefix?: string;
}

export interface PolicyRule {
  /** Where the rule came from, for the audit log: "tools[0]", "rules[2]". */
  readonly source: string;
  readonly method: NameMatcher;
  readonly target: RuleTarget | undefined;
  readonly scopes: readonly string[];
  readonly claims: ReadonlyMap<string, ReadonlySet<string>> | undefined;
  readonly deny: boolean;
  /** `when`: the rule applies only to calls for which this CEL condition holds. */
  readonly condition: Condition | undefined;
}

/** Where a rule's problem sits (relative to its upstream: ["rules", 2, "when"]) and what it is. */
export type RuleProblem = (path: readonly (string | number)[], message: string) => void;

interface RawToolRule {
  readonly name: string;
  readonly scopes: readonly string[];
  readonly claims?: Readonly<Record<string, readonly string[]>> | undefined;
  readonly deny: boolean;
  readonly when?: string | undefined;
}
interface RawRule {
  readonly method: string;
  readonly tool?: string | undefined;
  readonly prompt?: string | undefined;
  readonly resource?: string | undefined;
  readonly scopes: readonly string[];
  readonly claims?: Readonly<Record<string, readonly string[]>> | undefined;
  readonly deny: boolean;
  readonly when?: string | undefined;
}

/** Evaluation order: `tools` entries first (the most specific form), then `rules`, each in file order. */
export function compileRules(tools: readonly RawToolRule[], rules: readonly RawRule[], problem: RuleProblem): readonly PolicyRule[] {
  const out: PolicyRule[] = [];
  tools.forEach((t, i) => {
    out.push(Object.freeze({
      source: `tools[${i}]`,
      method: globMatcher('tools/call'),
      target: Object.freeze({ kind: 'tool' as const, match: globMatcher(t.name) }),
      scopes: Object.freeze([...t.scopes]),
      claims: compileClaims(t.claims),
      deny: t.deny,
      condition: condition(t.when, ['tools', i, 'when'], problem),
    }));
  });
  rules.forEach((r, i) => {
    let target: RuleTarget | undefined;
    if (r.tool !== undefined) target = { kind: 'tool', match: globMatcher(r.tool) };
    else if (r.prompt !== undefined) target = { kind: 'prompt', match: globMatcher(r.prompt) };
    else if (r.resource !== undefined) target = { kind: 'resource', match: prefixMatcher(r.resource), prefix: r.resource };
    out.push(Object.freeze({
      source: `rules[${i}]`,
      method: globMatcher(r.method),
      target: target === undefined ? undefined : Object.freeze(target),
      scopes: Object.freeze([...r.scopes]),
      claims: compileClaims(r.claims),
      deny: r.deny,
      condition: condition(r.when, ['rules', i, 'when'], problem),
    }));
  });
  return Object.freeze(out);
}

function condition(source: string | undefined, path: readonly (string | number)[], problem: RuleProblem): Condition | undefined {
  if (source === undefined) return undefined;
  const compiled = compileCondition(source);
  if (typeof compiled === 'string') return void problem(path, compiled);
  return compiled;
}

function compileClaims(claims: Readonly<Record<string, readonly string[]>> | undefined): ReadonlyMap<string, ReadonlySet<string>> | undefined {
  if (claims === undefined) return undefined;
  return new Map(Object.entries(claims).map(([k, v]) => [k, new Set(v)]));
}

/** `*` matches any run of characters; everything else is literal. Both forms compiled here, once per config. */
export function globMatcher(pattern: string): NameMatcher {
  const literal = glob(pattern.split('*'));
  // The wildcards stay where the pattern puts them: only the literal parts are folded (a fullwidth ＊
  // in a pattern is a literal character, not a second wildcard).
  const folded = glob(pattern.split('*').map(fold));
  return (name) => fit(literal(name.literal), folded(name.folded));
}

/** A resource rule's URI prefix, literal and in the normalised URI form (names.ts foldUri). */
function prefixMatcher(prefix: string): NameMatcher {
  const folded = foldUri(prefix);
  return (name) => fit(name.literal.startsWith(prefix), name.folded.startsWith(folded));
}

function fit(literal: boolean, folded: boolean): Fit {
  if (literal && folded) return 'exact';
  return literal || folded ? 'folded' : 'none';
}

function glob(parts: readonly string[]): (value: string) => boolean {
  if (parts.length === 1) {
    const only = parts[0] as string;
    return (value) => value === only;
  }
  const re = new RegExp('^' + parts.map((p) => p.replace(/[.*+?^${}()|[\]\\\/-]/g, '\\$&')).join('.*') + '$', 's');
  return (value) => re.test(value);
}
