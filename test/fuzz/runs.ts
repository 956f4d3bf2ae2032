/** Bounded in `npm test`; `npm run fuzz` sets FUZZ_RUNS for long runs. */
export const RUNS = Number(process.env['FUZZ_RUNS'] ?? 300);
export const TIMEOUT_MS = Math.max(20_000, RUNS * 20);
