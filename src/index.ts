export { createGateway, type Gateway, type GatewayOptions } from './gateway.ts';
export { loadConfig, loadConfigText, type Config, type UpstreamConfig, type IssuerConfig } from './config/compile.ts';
export { ConfigError } from './config/errors.ts';
export type { Reason } from './reasons.ts';
