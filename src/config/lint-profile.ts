import type { Environment, RawConfig } from './schema.ts';
import { isLoopbackHost, parseUrl } from './urls.ts';

type Path = readonly (string | number)[];
type Report = (path: Path, message: string) => void;

/**
 * The environment profile's start-up rules (README "Environment profiles", the rule × environment
 * table). Every rule reports each offending key; staging and development skip only the rules the table
 * marks for production. A file without `environment` keeps the rules every config obeys (a production
 * default would refuse every loopback development and test setup on upgrade; README says to set it).
 */
export function lintProfile(raw: RawConfig, err: Report): void {
  const env = raw.environment;
  if (env === undefined) {
    raw.issuers.forEach((iss, i) => {
      if (iss.environments !== undefined) err(['issuers', i, 'environments'], 'needs a top-level environment to be checked against');
    });
    return;
  }
  lintIssuerEnvironments(raw, env, err);
  if (env !== 'development') lintTyp(raw, env, err);
  if (env === 'production') lintProduction(raw, err);
}

/** A development issuer's tokens must never be accepted in a shared environment, nor any issuer outside its own. */
function lintIssuerEnvironments(raw: RawConfig, env: Environment, err: Report): void {
  raw.issuers.forEach((iss, i) => {
    const listed = iss.environments;
    if (listed === undefined) return;
    if (!listed.includes(env)) err(['issuers', i, 'environments'], `issuer "${iss.name}" is listed for ${listed.join(', ')}, not for ${env}`);
    else if (env !== 'development' && listed.includes('development')) err(['issuers', i, 'environments'], `issuer "${iss.name}" is also listed as development: its tokens must not be accepted in ${env}`);
  });
}

/** RFC 9068 §4 / RFC 8725 §3.11: only explicitly typed access tokens where tokens are shared. */
function lintTyp(raw: RawConfig, env: Environment, err: Report): void {
  raw.issuers.forEach((iss, i) => {
    if (iss.introspection === undefined && iss.typ === undefined) err(['issuers', i, 'typ'], `${env}: set typ: at+jwt so only RFC 9068 access tokens are accepted`);
  });
}

function lintProduction(raw: RawConfig, err: Report): void {
  const cap = raw.limits.productionMaxTokenLifetimeSeconds;
  raw.issuers.forEach((iss, i) => {
    const at = (...k: (string | number)[]): Path => ['issuers', i, ...k];
    productionUrl(iss.issuer, at('issuer'), err);
    if (iss.jwksUri !== undefined) productionUrl(iss.jwksUri, at('jwksUri'), err);
    if (iss.introspection !== undefined) productionUrl(iss.introspection.endpoint, at('introspection', 'endpoint'), err);
    // Tokens past the cap are refused at runtime by the same setting (token_lifetime_exceeded).
    if (iss.maxTokenLifetimeSeconds > cap) err(at('maxTokenLifetimeSeconds'), `production: tokens may live ${iss.maxTokenLifetimeSeconds} s; set maxTokenLifetimeSeconds to at most ${cap} (limits.productionMaxTokenLifetimeSeconds)`);
  });
  raw.upstreams.forEach((up, i) => {
    // An upstream that reads plain X-MCP-* headers trusts what it cannot verify; the signed assertion is the identity.
    if (up.identity.informationalHeaders) err(['upstreams', i, 'identity', 'informationalHeaders'], 'production: unsigned identity headers; upstreams verify the signed assertion instead');
  });
  lintEmbeddedIssuer(raw, err);
}

function productionUrl(value: string, path: Path, err: Report): void {
  const url = parseUrl(value);
  if (url === undefined) return; // the common lint already refuses it
  if (url.protocol !== 'https:') err(path, 'production: must use https');
  else if (isLoopbackHost(url.hostname)) err(path, 'production: a loopback address is a development issuer');
}

/** The embedded issuer's demo behaviour: auto sign-in and consent on loopback, open registration, shared secrets. */
function lintEmbeddedIssuer(raw: RawConfig, err: Report): void {
  const as = raw.authorizationServer;
  if (as === undefined) return;
  const host = as.issuer === undefined ? undefined : parseUrl(as.issuer)?.hostname;
  if (host === undefined || isLoopbackHost(host) || isLoopbackHost(as.listen.host)) {
    err(['authorizationServer', as.issuer === undefined ? 'listen' : 'issuer'], 'production: on loopback the embedded issuer signs in a demo user and consents by itself');
  }
  if (as.registration.initialAccessToken === undefined) err(['authorizationServer', 'registration', 'initialAccessToken'], 'production: dynamic client registration is open to anyone; set an initial access token');
  as.clients.forEach((c, j) => {
    if (c.client_secret !== undefined) err(['authorizationServer', 'clients', j, 'client_secret'], 'production: a plain static secret never rotates; use private_key_jwt with jwks or jwks_uri');
  });
}
