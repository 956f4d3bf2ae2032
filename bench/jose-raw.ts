import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { importJWK, jwtVerify, type CryptoKey, type JWK } from 'jose';
import { announceReady, serveIpc } from './ipc.ts';

// Raw jose jwtVerify (ES256) in its own process, on the same tokens and key the gateway sees, with the
// same claim options: the ceiling for the gateway's cold-verify path. Measured with `concurrency`
// verifications in flight (WebCrypto runs them on libuv's thread pool, as in the gateway) and serially.
// `stage` measures the gateway's own verify stage the same way, in the same process and on the same
// tokens: its authenticate() (cache lookup, issuer and algorithm selection, jose, our claim checks),
// alone and followed by minting the identity assertion, without HTTP around them.

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
  stage: async (arg) => {
    const { tokensFile, configFile, srcDir, seconds, concurrency, jwk, issuer, audience } = arg as { tokensFile: string; configFile: string; srcDir: string; seconds: number; concurrency: number; jwk: JWK; issuer: string; audience: string };
    const tokens = readFileSync(tokensFile, 'utf8').split('\n').filter((t) => t !== '');
    const load = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(join(srcDir, rel)).href)) as T;
    const { loadConfig } = await load<typeof import('../src/config/compile.ts')>('config/compile.ts');
    const { IssuerKeys } = await load<typeof import('../src/auth/keys.ts')>('auth/keys.ts');
    const { TokenCache } = await load<typeof import('../src/auth/token-cache.ts')>('auth/token-cache.ts');
    const { createAuthenticator } = await load<typeof import('../src/auth/verify.ts')>('auth/verify.ts');
    const { createIntrospector } = await load<typeof import('../src/auth/introspect.ts')>('auth/introspect.ts');
    const { loadGatewayKeys } = await load<typeof import('../src/identity/keys.ts')>('identity/keys.ts');
    const { createAssertionMinter } = await load<typeof import('../src/identity/assertion.ts')>('identity/assertion.ts');
    const config = loadConfig(configFile);
    const now = (): number => Date.now();
    const keys = new Map(config.issuers.map((i) => [i.name, new IssuerKeys(i, { now })] as const));
    const authenticate = createAuthenticator({ keys, cache: new TokenCache(config.limits.tokenCacheEntries), introspect: createIntrospector(now), now });
    const gatewayKeys = await loadGatewayKeys(config.identity.signingKeyFile, config.file);
    const mint = createAssertionMinter({ keys: gatewayKeys, issuer: config.publicUrl.origin, ttlSeconds: config.identity.ttlSeconds, now, maxEntries: config.limits.tokenCacheEntries });
    const upstream = config.upstreams[0] as (typeof config.upstreams)[number];
    const key = (await importJWK(jwk, 'ES256')) as CryptoKey;
    const joseOptions = { issuer, audience, algorithms: ['ES256'], clockTolerance: 30, requiredClaims: ['iss', 'aud', 'exp', 'sub'] };
    // Tokens are taken in order and never repeat within the run (the pool is larger than the caches).
    let i = 0;
    const measure = async (what: 'jose' | 'verify' | 'mint', ms: number): Promise<number> => {
      let ops = 0;
      const end = performance.now() + ms;
      const loop = async (): Promise<void> => {
        while (performance.now() < end) {
          const token = tokens[i++ % tokens.length] as string;
          if (what === 'jose') await jwtVerify(token, key, joseOptions);
          else {
            const p = await authenticate(token, upstream);
            if ('reason' in p) throw new Error(`stage refused a bench token: ${p.reason}`);
            if (what === 'mint') await mint(p, upstream);
          }
          ops++;
        }
      };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: concurrency }, loop));
      return ops / ((performance.now() - t0) / 1000);
    };
    await measure('mint', 500); // warm-up, and the JWKS fetched
    // Each round: jose and the stage in ten alternating 100 ms slices each (ABBA order, so neither is
    // always the one that follows the other), then one second of minting. A slow phase of the machine,
    // or the GC and sweeping that minting's garbage leaves behind, hits both alike. The ratio is taken
    // within each round, then the median of the rounds.
    const rounds = Math.max(3, Math.round(seconds));
    const rows: { jose: number; verify: number; mint: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      let jose = 0;
      let verify = 0;
      for (let k = 0; k < 10; k++) {
        const order = k % 4 === 0 || k % 4 === 3 ? (['jose', 'verify'] as const) : (['verify', 'jose'] as const);
        for (const what of order) {
          const rate = await measure(what, 100);
          if (what === 'jose') jose += rate / 10;
          else verify += rate / 10;
        }
      }
      rows.push({ jose, verify, mint: await measure('mint', 1_000) });
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const verify = median(rows.map((x) => x.verify));
    const verifyAndMint = median(rows.map((x) => x.mint));
    const verifyRatio = median(rows.map((x) => x.verify / x.jose));
    const mintRatio = median(rows.map((x) => x.mint / x.jose));
    return { verify, verifyAndMint, jose: median(rows.map((x) => x.jose)), verifyRatio, mintRatio, rounds, ratios: rows.map((x) => x.verify / x.jose) };
  },
  exit: () => setImmediate(() => process.exit(0)),
});

announceReady({});
