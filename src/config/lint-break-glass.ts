import type { RawConfig } from './schema.ts';

type Path = readonly (string | number)[];
type Report = (path: Path, message: string) => void;

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
// The assertion claims a grant stamps; a token's own claim of that name must never be copied over them.
export const BREAK_GLASS_CLAIMS = ['break_glass', 'break_glass_ticket'] as const;

/**
 * breakGlass rules the schema cannot express (README "Break-glass access"). An expired grant refuses the
 * config: the file must say what is open, so a grant nobody retired stops every reload and `validate`.
 * An active one is a warning naming its end, printed by validate and logged at start.
 */
export function lintBreakGlass(raw: RawConfig, err: Report, warn: Report, nowMs: number): void {
  const names = new Set<string>();
  raw.breakGlass.forEach((g, i) => {
    const at = (...k: (string | number)[]): Path => ['breakGlass', i, ...k];
    if (names.has(g.name)) err(at('name'), `duplicate break-glass grant name "${g.name}"`);
    names.add(g.name);
    if (g.clientId?.includes('*') === true) err(at('clientId'), 'wildcards are not allowed');
    const issuer = raw.issuers.find((iss) => iss.name === g.issuer);
    if (issuer === undefined) err(at('issuer'), `unknown issuer "${g.issuer}"`);
    // Once the grant is gone its tokens must stay refused, not become ordinary tokens of an accepted issuer.
    else if (g.clientId === undefined && !issuer.breakGlassOnly) err(at('issuer'), `a grant for every token of "${g.issuer}" needs breakGlassOnly: true on that issuer, so they stay refused once the grant is removed`);
    else if (g.clientId !== undefined && !issuer.breakGlassOnly && !issuer.breakGlassClients.includes(g.clientId)) err(at('clientId'), `list "${g.clientId}" in the breakGlassClients of issuer "${g.issuer}" (or set breakGlassOnly), so its tokens stay refused once the grant is removed`);
    g.upstreams.forEach((name, j) => {
      const up = raw.upstreams.find((u) => u.name === name);
      if (up === undefined) err(at('upstreams', j), `unknown upstream "${name}"`);
      // Break-glass narrows what an accepted token may do; it never makes an issuer acceptable.
      else if (!up.issuers.includes(g.issuer)) err(at('upstreams', j), `upstream "${name}" does not accept issuer "${g.issuer}": add it to that upstream's issuers`);
    });
    g.scopes.forEach((s, j) => {
      if (!SCOPE_TOKEN.test(s)) err(at('scopes', j), `"${s}" is not a valid scope token`);
    });
    lintWindow(raw, g, at, err, warn, nowMs);
  });
  raw.issuers.forEach((iss, i) => {
    iss.breakGlassClients.forEach((c, j) => {
      if (c.includes('*')) err(['issuers', i, 'breakGlassClients', j], 'wildcards are not allowed');
    });
    // RFC 8725 §3.8: a token's iss picks the first issuer of the upstream that names it, so a twin entry
    // with the same iss would take this issuer's tokens as ordinary ones: no window, limits or stamp.
    const twin = (iss.breakGlassOnly || iss.breakGlassClients.length > 0) ? raw.issuers.find((o, j) => j !== i && o.issuer === iss.issuer) : undefined;
    if (twin !== undefined) err(['issuers', i, 'issuer'], `issuer "${twin.name}" names the same iss: its entry would accept the break-glass tokens of "${iss.name}" as ordinary ones (use breakGlassClients on one entry)`);
  });
}

function lintWindow(raw: RawConfig, g: RawConfig['breakGlass'][number], at: (...k: (string | number)[]) => Path, err: Report, warn: Report, nowMs: number): void {
  const from = Date.parse(g.activatedAt);
  const until = Date.parse(g.expiresAt);
  const max = raw.limits.breakGlassMaxWindowSeconds;
  if (until <= from) {
    err(at('expiresAt'), 'must be after activatedAt');
    return;
  }
  if (until - from > max * 1000) err(at('expiresAt'), `the window is ${hours(until - from)} h; at most ${hours(max * 1000)} h after activatedAt (limits.breakGlassMaxWindowSeconds)`);
  if (until <= nowMs) err(at('expiresAt'), `expired at ${g.expiresAt}: remove this grant (ticket ${g.ticket}) from the file`);
  else if (from <= nowMs) warn(at(), `break-glass grant "${g.name}" (ticket ${g.ticket}) is ACTIVE until ${g.expiresAt} (in ${hours(until - nowMs)} h)`);
  else warn(at(), `break-glass grant "${g.name}" (ticket ${g.ticket}) opens at ${g.activatedAt} and expires at ${g.expiresAt}`);
}

function hours(ms: number): string {
  return (ms / 3_600_000).toFixed(1);
}
