/**
 * Makes room in an insertion-ordered Map bounded at `max`: drops the oldest entries, a sixteenth of
 * `max` beyond what is needed, in one pass. Deleting the first key one insert at a time makes every
 * keys().next() walk the holes left at the front (7.7 µs per insert at 10,000 entries).
 */
export function evictOldest<K, V>(map: Map<K, V>, max: number, incoming = 0): void {
  let excess = evictionCount(map.size, max, incoming);
  // Not even one step of the iterator when nothing is due: its first next() walks those holes too.
  if (excess === 0) return;
  for (const oldest of map.keys()) {
    if (excess-- <= 0) break;
    map.delete(oldest);
  }
}

/** How many of the oldest entries evictOldest drops: none while `incoming` more fit, else a sixteenth of `max` beyond what is needed. */
export function evictionCount(size: number, max: number, incoming = 0): number {
  return size + incoming <= max ? 0 : size + incoming - max + (max >> 4);
}
