// Which rule a verified platform token falls under: the first whose subject pattern and claims match.
import type { JWTPayload } from 'jose';
import type { FederationRule } from './types.ts';

/** `*` matches any run of characters, everything else itself; anchored at both ends. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === subject;
  const first = parts[0] ?? '';
  const last = parts.at(-1) ?? '';
  if (!subject.startsWith(first) || subject.length < first.length + last.length || !subject.endsWith(last)) return false;
  let at = first.length;
  const end = subject.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = subject.indexOf(middle, at);
    if (found === -1 || found + middle.length > end) return false;
    at = found + middle.length;
  }
  return true;
}

export function matchRule(rules: readonly FederationRule[], claims: JWTPayload): FederationRule | undefined {
  const subject = claims.sub;
  if (typeof subject !== 'string') return undefined;
  return rules.find((rule) =>
    subjectMatches(rule.subject, subject)
    // Exact string equality: a claim that is absent, not a string, or different never matches.
    && Object.entries(rule.claims ?? {}).every(([name, value]) => claims[name] === value));
}
