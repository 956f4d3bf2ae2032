import type { Config } from '../config/compile.ts';
import { deny, type Denial } from '../reasons.ts';
import type { Principal } from './principal.ts';

export type EnvironmentCheck = (principal: Principal) => Denial | undefined;

/**
 * README "Environment profiles": a token that names its environment (config `environmentClaim`,
 * default `env`) is accepted only by a gateway of that environment, so a development token replayed
 * against staging or production is refused whatever its issuer. Anything but the exact string fails.
 */
export function createEnvironmentCheck(config: Config): EnvironmentCheck {
  const { environment, environmentClaim } = config;
  if (environment === undefined) return () => undefined;
  return function checkEnvironment(principal) {
    const value = principal.claims[environmentClaim];
    if (value === undefined || value === environment) return undefined;
    return deny('environment_mismatch');
  };
}
