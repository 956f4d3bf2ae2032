/**
 * A pure function of a short string, remembered for the first `maxEntries` keys of at most
 * `maxKeyLength` characters: peers send the same few header names and values on every message, and
 * whatever else they send is computed each time, never held (issue 25).
 */
export function boundedMemo<T>(maxEntries: number, maxKeyLength: number, compute: (key: string) => T): (key: string) => T {
  const known = new Map<string, T>();
  return (key) => {
    const hit = known.get(key);
    if (hit !== undefined) return hit;
    const value = compute(key);
    if (known.size < maxEntries && key.length <= maxKeyLength) known.set(key, value);
    return value;
  };
}
