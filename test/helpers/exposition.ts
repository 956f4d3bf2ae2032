// The naming rules `promtool check metrics` applies to a Prometheus text exposition, checked by us so
// the test holds on a machine without promtool (issue 24 §3). Returns one line per problem.

const NON_BASE_UNITS: Readonly<Record<string, string>> = {
  milliseconds: 'seconds', microseconds: 'seconds', nanoseconds: 'seconds', minutes: 'seconds', hours: 'seconds', days: 'seconds',
  ms: 'seconds', kilobytes: 'bytes', megabytes: 'bytes', gigabytes: 'bytes', kib: 'bytes', mib: 'bytes', bits: 'bytes', percent: 'ratio',
};
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Readonly<Record<string, readonly string[]>> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count', ''], counter: [''], gauge: [''], untyped: [''] };

interface Family {
  type: string | undefined;
  help: boolean;
}

export function expositionProblems(text: string): string[] {
  const families = new Map<string, Family>();
  const problems: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (meta !== null) {
      problems.push(...metaProblems(families, meta[1] as 'HELP' | 'TYPE', meta[2] as string, meta[3] ?? ''));
      continue;
    }
    if (line.startsWith('#')) continue;
    const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)?.[1];
    if (name === undefined || familyOf(families, name) === undefined) problems.push(`${name ?? line}: sample without a # TYPE of its family`);
  }
  for (const [name, family] of families) problems.push(...nameProblems(name, family));
  return problems;
}

function metaProblems(families: Map<string, Family>, kind: 'HELP' | 'TYPE', name: string, rest: string): string[] {
  const family = families.get(name) ?? { type: undefined, help: false };
  families.set(name, family);
  if (kind === 'HELP') {
    if (family.help) return [`${name}: duplicate HELP`];
    family.help = rest.trim() !== '';
    return family.help ? [] : [`${name}: no help text`];
  }
  if (family.type !== undefined) return [`${name}: duplicate TYPE`];
  family.type = rest;
  return TYPES.has(rest) ? [] : [`${name}: unknown type ${rest}`];
}

/** The family a sample belongs to: its own name, or a histogram/summary name plus a reserved suffix. */
function familyOf(families: ReadonlyMap<string, Family>, sample: string): Family | undefined {
  for (const [name, family] of families) {
    const suffixes = SUFFIXES[family.type ?? 'untyped'] ?? [''];
    if (suffixes.some((s) => sample === name + s)) return family;
  }
  return undefined;
}

function nameProblems(name: string, family: Family): string[] {
  const out: string[] = [];
  if (family.type === undefined) out.push(`${name}: no TYPE`);
  if (!family.help) out.push(`${name}: no HELP`);
  if (family.type === 'counter' && !name.endsWith('_total')) out.push(`${name}: counter metrics should have "_total" suffix`);
  if (family.type !== 'counter' && name.endsWith('_total')) out.push(`${name}: non-counter metrics should not have "_total" suffix`);
  if (/[A-Z]/.test(name)) out.push(`${name}: metric names should be written in snake_case`);
  if (name.includes(':')) out.push(`${name}: colons are reserved for recording rules`);
  for (const part of name.split('_')) {
    const base = NON_BASE_UNITS[part];
    if (base !== undefined) out.push(`${name}: use base unit "${base}" instead of "${part}"`);
  }
  if (/_(?:counter|gauge|histogram|summary)(?:_|$)/.test(name)) out.push(`${name}: metric name should not include its type`);
  return out;
}
