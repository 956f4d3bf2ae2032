import type { Denial } from './reasons.ts';

/** A stage answered the request itself (a public document, a CORS preflight, the upstream's answer). */
export interface Answered {
  readonly kind: 'answered';
}

export const ANSWERED: Answered = Object.freeze({ kind: 'answered' });

/** What every stage returns: what it produced for the next stage, a refusal, or "answered". */
export type Step<T> = T | Denial | Answered;

/** True when the pipeline stops here: the step refused or answered. */
export function halted<T>(step: Step<T>): step is Denial | Answered {
  const kind = (step as { readonly kind?: unknown }).kind;
  return kind === 'deny' || kind === 'answered';
}
