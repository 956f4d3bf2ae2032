// The authorization-code flow's user interaction, kept minimal on purpose: on a loopback issuer
// (a demo on one machine) it signs in a fixed demo user and approves what was asked; anywhere
// else it refuses, because the embedded issuer authenticates nobody.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors, type InteractionDetails, type InteractionResult, type Provider } from 'oidc-provider';

export const DEMO_SUBJECT = 'demo-user';
export const NOT_LOCAL =
  'the embedded issuer is for single-node demos and tests; use your IdP in production';

export async function handleInteraction(provider: Provider, local: boolean, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET') {
    respond(res, 405, { error: 'invalid_request', error_description: 'method not allowed' });
    return;
  }
  let details: InteractionDetails;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (error) {
    // No interaction cookie or an expired interaction: a client error, not ours.
    if (error instanceof errors.OIDCProviderError) {
      respond(res, error.status, { error: error.error, error_description: error.error_description ?? '' });
      return;
    }
    throw error;
  }
  // Errors go back to the client's redirect_uri as RFC 6749 §4.1.2.1 error responses.
  const result = local ? await approve(provider, details) : { error: 'access_denied', error_description: NOT_LOCAL };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

async function approve(provider: Provider, details: InteractionDetails): Promise<InteractionResult> {
  switch (details.prompt.name) {
    case 'login':
      return { login: { accountId: DEMO_SUBJECT } };
    case 'consent':
      return { consent: { grantId: await grantRequested(provider, details) } };
    default:
      return { error: 'access_denied', error_description: `unsupported prompt ${details.prompt.name}` };
  }
}

/** Grants exactly what oidc-provider reports as missing, already limited to allowed scopes. */
async function grantRequested(provider: Provider, details: InteractionDetails): Promise<string> {
  const accountId = details.session?.accountId;
  const clientId = details.params['client_id'];
  if (accountId === undefined || typeof clientId !== 'string') throw new Error('consent without a signed-in user');
  const existing = details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId);
  const grant = existing ?? new provider.Grant({ accountId, clientId });
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
  if (missingOIDCScope !== undefined) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims !== undefined) grant.addOIDCClaims(missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return grant.save();
}

function respond(res: ServerResponse, status: number, body: Readonly<Record<string, string>>): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
