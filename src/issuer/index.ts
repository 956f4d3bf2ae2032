// The embedded OAuth 2.1 authorization server (oidc-provider) for single-node demos and tests.
export { startIssuer } from './start.ts';
export type { IssuerOptions, IssuerResource, IssuerStaticClient, RunningIssuer, SigningAlg } from './types.ts';
