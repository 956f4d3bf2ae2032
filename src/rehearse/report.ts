import type { ControlId } from './controls.ts';

export type DrillStatus = 'pass' | 'fail' | 'skip' | 'warn';

export interface DrillResult {
  /** The result line's name (a drill may record several). */
  readonly drill: string;
  readonly status: DrillStatus;
  readonly detail: string;
  /** The drill module that recorded it, and the controls it is evidence for. */
  readonly id: string;
  readonly controls: readonly ControlId[];
  /** ISO 8601: from the drill's start (or its previous line) to this line. */
  readonly startedAt: string;
  readonly endedAt: string;
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
