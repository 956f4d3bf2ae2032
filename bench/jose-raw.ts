import { readFileSync } from 'node:fs';
import { importJWK, jwtVerify, type CryptoKey, type JWK } from 'jose';
import { announceReady, serveIpc } from './ipc.ts';

// Raw jose jwtVerify (ES256) in its own process, on the same tokens and key the gateway sees, with the
// same claim options: the ceiling for the gateway's cold-verify path. Measured with `concurrency`
// verifications in flight (WebCrypto runs them on libuv's thread pool, as in the gateway) and serially.

serveIpc({
  run: async (arg) => {
    const { tokensFile, jwk, issuer, audience, seconds, concurrency } = arg as { tokensFile: string; jwk: JWK; issuer: string; audience: string; seconds: number; concurrency: number };
    const tokens = readFileSync(tokensFile, 'utf8').split('\n').filter((t) => t !== '');
    const key = (await importJWK(jwk, 'ES256')) as CryptoKey;
    const options = { issuer, audience, algorithms: ['ES256'], clockTolerance: 30, requiredClaims: ['iss', 'aud', 'exp', 'sub'] };
    const measure = async (inFlight: number, ms: number): Promise<number> => {
      let ops = 0;
      let i = 0;
      const end = performance.now() + ms;
      const loop = async (): Promise<void> => {
        while (performance.now() < end) {
          await jwtVerify(tokens[i++ % tokens.length] as string, key, options);
          ops++;
        }
      };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: inFlight }, loop));
      return ops / ((performance.now() - t0) / 1000);
    };
    await measure(concurrency, 500); // warm-up
    const cpu0 = process.cpuUsage();
    const concurrent = await measure(concurrency, seconds * 1000);
    const cpu = process.cpuUsage(cpu0);
    const serial = await measure(1, Math.max(1, seconds / 2) * 1000);
    return { concurrent, serial, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  },
  exit: () => setImmediate(() => process.exit(0)),
});

announceReady({});
