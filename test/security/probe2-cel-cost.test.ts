import { describe, expect, it } from 'vitest';
import { compileCondition, type Condition } from '../../src/policy/condition.ts';

// Review probe (wip-review2): the cost estimate counts the elements of `args` and `claims`, not of a
// list the expression builds from them (split). An expression iterating over args.s.split(…) with a
// body that reads args.s again is quadratic in one string argument, yet estimated as linear: a caller
// with a valid token blocks the event loop with one call (210 KB: 28 s measured). Secure: cost_limit, or a bounded time.

function compiled(src: string): Condition {
  const c = compileCondition(src);
  if (typeof c === 'string') throw new Error(c);
  return c;
}
const bind = (args: unknown) => ({ args, claims: {}, tool: 'search', method: 'tools/call', upstream: 'mcp' });

describe('probe2: CEL conditions stay bounded in time on attacker-sized arguments', () => {
  it('a split-based comprehension reading its input again is refused by the budget or finishes within 1 s', () => {
    const c = compiled("args.q.split(',').exists(w, args.q.contains(w + '!'))");
    // 60 KB here (about 2 s measured); 210 KB measured 28 s, 1 MiB extrapolates to minutes. The estimate
    // calls it linear (2 elements, longest string / 64), far under CONDITION_BUDGET.
    const q = 'ab,'.repeat(20_000);
    const t0 = performance.now();
    const r = c.evaluate(bind({ q }));
    const ms = performance.now() - t0;
    console.log(`split/contains on ${q.length} chars: ${ms.toFixed(0)} ms, result ${JSON.stringify(r)}`);
    expect(ms).toBeLessThan(1_000);
  }, 60_000);

  it('a realistic path check (split + exists) on a 1 MB path is linear', () => {
    const c = compiled("args.path.split('/').exists(s, s == '..')");
    const path = '/a'.repeat(450_000);
    const t0 = performance.now();
    const r = c.evaluate(bind({ path }));
    const ms = performance.now() - t0;
    console.log(`split/exists on ${path.length} chars: ${ms.toFixed(0)} ms, result ${JSON.stringify(r)}`);
    expect(ms).toBeLessThan(1_000);
  }, 60_000);

  it('matches() with a literal pattern on a 1 MB string', () => {
    const c = compiled("args.q.matches('^([a-z]+,)*[a-z]+!$')");
    const q = 'ab,'.repeat(300_000);
    const t0 = performance.now();
    const r = c.evaluate(bind({ q }));
    const ms = performance.now() - t0;
    console.log(`matches on ${q.length} chars: ${ms.toFixed(0)} ms, result ${JSON.stringify(r)}`);
    expect(ms).toBeLessThan(1_000);
  }, 60_000);
});
