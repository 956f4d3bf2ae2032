// CEL conditions on policy rules (README "Conditions"), compiled once per config with @bufbuild/cel
// (a conformance-tested evaluator: we choose the environment and the bounds, never interpret CEL).
import { createHash } from 'node:crypto';
import { celEnv, CelScalar, isCelError, parse, plan } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';

type Ast = ReturnType<typeof parse>['expr'];
type Bindings = { readonly args: unknown; readonly claims: unknown; readonly tool: string; readonly method: string; readonly upstream: string };

const VARIABLES = { args: CelScalar.DYN, claims: CelScalar.DYN, tool: CelScalar.STRING, method: CelScalar.STRING, upstream: CelScalar.STRING };
// The strings extension without the functions whose output can outgrow their input by a product
// (replace("", big), join(big separator), format): a condition must not build what it cannot bound.
const UNBOUNDED = new Set(['replace', 'join', 'format']);
const ENV = celEnv({ variables: VARIABLES, funcs: strings.filter((f) => !UNBOUNDED.has(f.name)) });
// Operators the planner evaluates itself (short-circuit logic, indexing): no entry in the function table.
const PLANNED = new Set(['_&&_', '_||_', '_?_:_', '_[_]', '@not_strictly_false']);

/**
 * The static bounds (the library has no cost estimator, so the gateway bounds what it can see):
 * source length, AST size and depth, and no comprehension (all, exists, map, filter …) inside another
 * one's body, so one evaluation walks each collection of its input at most a bounded number of times.
 */
export const CONDITION_LIMITS = Object.freeze({ maxSourceChars: 2048, maxNodes: 200, maxDepth: 32, maxComprehensions: 4 });
// Functions whose result is a list built from a string: their output counts as input to iterate.
const LIST_BUILDERS = new Set(['split']);
/** estimateCost's answer for input the evaluator would read as a protobuf message. */
const MESSAGE_SHAPED = -1;

/** The runtime bound, checked before evaluating (see estimateCost). */
export const CONDITION_BUDGET = 10_000_000;

/** Why a condition could not be decided: a category, never a value from the call (SC: no argument values in logs). */
export type ConditionFault = 'cost_limit' | 'message_shape' | 'no_such_field' | 'no_such_overload' | 'not_bool' | 'conversion' | 'arithmetic' | 'evaluation';

export interface Condition {
  /** Stable id for audit lines: a digest of the expression text, "cel:" + 12 hex. */
  readonly id: string;
  readonly source: string;
  /** Whether the expression reads `args` at all (a listing has no arguments to judge). */
  readonly readsArgs: boolean;
  /** true / false, or why it failed (the rule then denies: fail closed). */
  readonly evaluate: (bindings: Bindings) => boolean | { readonly fault: ConditionFault; readonly column: number | undefined };
}

interface Shape {
  nodes: number;
  depth: number;
  comprehensions: number;
  readsArgs: boolean;
  /** It calls a function that builds a list from a string (split): its elements count as input. */
  buildsLists: boolean;
  problem: string | undefined;
}

/** Parses, checks and plans one expression; a string = why the config is refused. */
export function compileCondition(source: string): Condition | string {
  if (source.length > CONDITION_LIMITS.maxSourceChars) return `condition longer than ${CONDITION_LIMITS.maxSourceChars} characters`;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
  } catch (err) {
    return `CEL syntax error: ${(err as Error).message.replace(/^<input>:/, 'at ')}`;
  }
  const shape: Shape = { nodes: 0, depth: 0, comprehensions: 0, readsArgs: false, buildsLists: false, problem: undefined };
  walk(parsed.expr, new Set(), 1, false, shape);
  if (shape.problem !== undefined) return shape.problem;
  const root = parsed.expr.exprKind;
  if (root.case === 'constExpr' && root.value.constantKind.case !== 'boolValue') return 'a condition must be a bool expression';
  const positions = parsed.sourceInfo?.positions ?? {};
  let run: (bindings: never) => unknown;
  try {
    run = plan(ENV, parsed);
  } catch (err) {
    return `CEL: ${(err as Error).message}`;
  }
  const { nodes, comprehensions, buildsLists } = shape;
  return Object.freeze({
    id: `cel:${createHash('sha256').update(source).digest('hex').slice(0, 12)}`,
    source,
    readsArgs: shape.readsArgs,
    evaluate: (bindings: Bindings) => {
      const cost = estimateCost(nodes, comprehensions > 0, buildsLists, bindings);
      if (cost === MESSAGE_SHAPED) return { fault: 'message_shape' as const, column: undefined };
      if (cost > CONDITION_BUDGET) return { fault: 'cost_limit' as const, column: undefined };
      let result: unknown;
      try {
        result = run(bindings as never);
      } catch {
        return { fault: 'evaluation' as const, column: undefined };
      }
      if (typeof result === 'boolean') return result;
      if (!isCelError(result)) return { fault: 'not_bool' as const, column: undefined };
      const at = result.exprId === undefined ? undefined : positions[String(result.exprId)];
      return { fault: faultOf(result.message), column: at === undefined ? undefined : at + 1 };
    },
  });
}

/** Bounds and names: every identifier a declared variable or a comprehension's own, every function known. */
function walk(e: Ast | undefined, scope: ReadonlySet<string>, depth: number, inBody: boolean, s: Shape): void {
  if (e === undefined || s.problem !== undefined) return;
  s.nodes++;
  s.depth = Math.max(s.depth, depth);
  if (s.nodes > CONDITION_LIMITS.maxNodes) return void (s.problem = `condition too large (over ${CONDITION_LIMITS.maxNodes} nodes)`);
  if (depth > CONDITION_LIMITS.maxDepth) return void (s.problem = `condition nested deeper than ${CONDITION_LIMITS.maxDepth}`);
  const k = e.exprKind;
  const next = depth + 1;
  switch (k.case) {
    case 'identExpr':
      if (k.value.name === 'args') s.readsArgs = true;
      if (!Object.hasOwn(VARIABLES, k.value.name) && !scope.has(k.value.name)) s.problem = `undeclared reference to '${k.value.name}' (variables: ${Object.keys(VARIABLES).join(', ')})`;
      return;
    case 'selectExpr':
      return walk(k.value.operand, scope, next, inBody, s);
    case 'callExpr': {
      if (!PLANNED.has(k.value.function) && ENV.funcs.find(k.value.function) === undefined) return void (s.problem = `unknown function '${k.value.function}'`);
      if (LIST_BUILDERS.has(k.value.function)) s.buildsLists = true;
      // A caller-supplied pattern would cost |pattern| × |input|: patterns are policy, written in it.
      const pattern = k.value.target === undefined ? k.value.args[1] : k.value.args[0];
      if (k.value.function === 'matches' && !(pattern?.exprKind.case === 'constExpr' && pattern.exprKind.value.constantKind.case === 'stringValue')) {
        return void (s.problem = 'matches() takes a string literal as its pattern');
      }
      walk(k.value.target, scope, next, inBody, s);
      for (const a of k.value.args) walk(a, scope, next, inBody, s);
      return;
    }
    case 'listExpr':
      for (const a of k.value.elements) walk(a, scope, next, inBody, s);
      return;
    case 'structExpr':
      for (const entry of k.value.entries) {
        if (entry.keyKind.case === 'mapKey') walk(entry.keyKind.value, scope, next, inBody, s);
        walk(entry.value, scope, next, inBody, s);
      }
      return;
    case 'comprehensionExpr': {
      const c = k.value;
      if (inBody) return void (s.problem = 'a comprehension (all, exists, map, filter) inside another one is not allowed: its cost grows with the product of the collections');
      if (++s.comprehensions > CONDITION_LIMITS.maxComprehensions) return void (s.problem = `more than ${CONDITION_LIMITS.maxComprehensions} comprehensions`);
      walk(c.iterRange, scope, next, inBody, s);
      walk(c.accuInit, scope, next, inBody, s);
      const inner = new Set([...scope, c.iterVar, c.iterVar2, c.accuVar].filter((v) => v !== ''));
      for (const part of [c.loopCondition, c.loopStep, c.result]) walk(part, inner, next, true, s);
      return;
    }
    default:
      return;
  }
}

/**
 * An upper bound on one evaluation's work, in units of "one step over one element or 64 characters".
 * Any node may walk a whole value (equality, `in`, concatenation), so a node costs at most the
 * input's size S = max(elements of every collection in args and claims, longest string / 64); an
 * expression that iterates runs its nodes at most once per element. So: nodes × (1 + S), times
 * (1 + elements) when it iterates. Walked iteratively and stopped once past the budget, so a deep or
 * huge argument costs the walk no more than the budget.
 */
function estimateCost(nodes: number, iterates: boolean, buildsLists: boolean, bindings: Bindings): number {
  let elements = 0;
  let longest = Math.max(bindings.tool.length, bindings.method.length, bindings.upstream.length);
  const stack: unknown[] = [bindings.args, bindings.claims];
  let cost = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      longest = Math.max(longest, v.length);
      // split() may turn one string into a list of as many elements as it has characters.
      if (buildsLists) elements += v.length;
    } else if (typeof v === 'object' && v !== null) {
      // @bufbuild/cel reads any object with a string $typeName as a protobuf message (a Struct, a
      // wrapper), not as the JSON the upstream will read: such input is never judged.
      if (!Array.isArray(v) && Object.hasOwn(v, '$typeName')) return MESSAGE_SHAPED;
      const items = Array.isArray(v) ? v : Object.entries(v).flat();
      elements += items.length;
      for (const item of items) stack.push(item);
    }
    const size = Math.max(elements, Math.ceil(longest / 64));
    cost = nodes * (1 + size) * (iterates ? 1 + elements : 1);
    if (cost > CONDITION_BUDGET) return cost;
  }
  return cost;
}

/** The library's message mapped to a category: its text may quote a value of the call (int("…")). */
function faultOf(message: string): ConditionFault {
  if (/field not found|no such key|unresolved attribute/i.test(message)) return 'no_such_field';
  if (/no matching overload|no such overload|unbound function/i.test(message)) return 'no_such_overload';
  if (/convert|range|overflow/i.test(message)) return 'conversion';
  if (/divide|modulus|division/i.test(message)) return 'arithmetic';
  return 'evaluation';
}
