import type { Principal } from '../auth/principal.ts';
import type { UpstreamConfig } from '../config/compile.ts';
import { decide } from './decide.ts';
import { foldUri } from './names.ts';

// A resource template (RFC 6570 URI Template) stands for every URI it can expand to. It is shown only
// when the caller may read ALL of them (fail closed).
//
// Every expansion starts with the template's literal text before its first expression (RFC 6570 §3.1:
// literals are copied), call it P; what follows can be anything. Resource rules match by URI prefix, so
// the URIs "P + anything" fall into finitely many classes: P itself, and each rule prefix R that
// extends P. A URI u = P + x is matched by the rules whose prefix is a prefix of P (all of them match
// every u) and by those R with P ⊂ R ⊑ u, a chain whose longest member L is matched by exactly the same
// rules as u. So deciding `resources/read` for P and for each such R decides every expansion.

// Literal characters RFC 6570 copies unchanged (unreserved, reserved except "'", pct-encoded). Any other
// literal would be pct-encoded on expansion, so the URIs would not start with P as written: not judged.
const LITERAL = /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&()*+,;=]|%[0-9A-Fa-f]{2})*$/;

/** Whether every URI the template can expand to may be read by the caller. */
export function templateAllowed(principal: Principal, upstream: UpstreamConfig, uriTemplate: string): boolean {
  const brace = uriTemplate.indexOf('{');
  const literal = brace < 0 ? uriTemplate : uriTemplate.slice(0, brace);
  if (!LITERAL.test(literal)) return false;
  const representatives = [literal];
  for (const rule of upstream.rules) {
    const prefix = rule.target?.kind === 'resource' ? rule.target.prefix : undefined;
    // Compared in normalised form too: a rule under FILE:/// still speaks of file:/// expansions.
    if (prefix !== undefined && (prefix.startsWith(literal) || foldUri(prefix).startsWith(foldUri(literal)))) representatives.push(prefix);
  }
  return representatives.every((uri) => decide(principal, upstream, { kind: 'rpc', method: 'resources/read', uri }).kind === 'allow');
}
