export type DrillStatus = 'pass' | 'fail' | 'skip' | 'warn';

export interface DrillResult {
  readonly drill: string;
  readonly status: DrillStatus;
  readonly detail: string;
}

export function formatReport(results: readonly DrillResult[]): string {
  const width = Math.max(...results.map((r) => r.drill.length));
  const lines = results.map((r) => `${r.status.toUpperCase().padEnd(4)}  ${r.drill.padEnd(width)}  ${r.detail}`);
  const count = (s: DrillStatus): number => results.filter((r) => r.status === s).length;
  lines.push('', `${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped, ${count('warn')} warnings`);
  return lines.join('\n') + '\n';
}

/** Exit 0 only when no drill failed (and, with --strict, nothing was skipped or warned about). */
export function exitCode(results: readonly DrillResult[], strict: boolean): number {
  return results.some((r) => r.status === 'fail' || (strict && (r.status === 'warn' || r.status === 'skip'))) ? 1 : 0;
}
