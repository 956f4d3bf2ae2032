import { defineConfig } from 'vitest/config';

// `npm run test:redis`: the shared rate-limit store against a real redis-server. Kept out of
// `npm test` (test/**/*.test.ts) so that one passes on a machine without Redis.
export default defineConfig({
  test: {
    include: ['test/**/*.redis.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
