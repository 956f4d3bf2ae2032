// The controls a drill can be evidence for, with the identifiers the mission's framework table uses.
// What each drill proves for them is the drill's own title and result line; this file only names them.
export const CONTROLS = {
  'OWASP NHI-03': 'OWASP Non-Human Identities',
  'OWASP Agentic A-02': 'OWASP Agentic AI',
  'CSA MAESTRO IAM-01': 'CSA MAESTRO',
} as const;

export type ControlId = keyof typeof CONTROLS;

export const NHI = 'OWASP NHI-03' satisfies ControlId;
export const AGENTIC = 'OWASP Agentic A-02' satisfies ControlId;
export const IAM = 'CSA MAESTRO IAM-01' satisfies ControlId;
