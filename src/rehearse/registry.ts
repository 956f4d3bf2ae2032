import { directUpstream } from './direct.ts';
import { dpop } from './dpop.ts';
import type { Drill } from './drill.ts';
import { expiredToken, keyRotation } from './expiry.ts';
import {
  audienceMismatch, insufficientScope, issuance, issuerMetadata, noToken, registration, resourceMetadata, tamperedSignature,
  unknownSigningKey, validCall,
} from './gateway-drills.ts';
import { federation } from './federation.ts';
import { expiredClientSecret } from './issuer-drills.ts';
import { rateLimit } from './limits.ts';
import { keyFetchOutage } from './outage.ts';
import { revocation } from './revocation.ts';
import { refreshReplay } from './refresh.ts';
import { stepUp } from './step-up.ts';

/**
 * Every drill, in the order `rehearse` runs them. A new drill is one module exporting a `Drill`
 * ({ id, title, controls, run }) and one line here. The rate-limit burst and the local outage stay
 * last: the first spends the shared client's budget, the second takes seconds.
 */
export const DRILLS: readonly Drill[] = [
  resourceMetadata,
  issuerMetadata,
  registration,
  issuance,
  validCall,
  noToken,
  audienceMismatch,
  tamperedSignature,
  unknownSigningKey,
  insufficientScope,
  expiredToken,
  expiredClientSecret,
  refreshReplay,
  federation,
  stepUp,
  keyRotation,
  dpop,
  directUpstream,
  rateLimit,
  keyFetchOutage,
  revocation,
];
