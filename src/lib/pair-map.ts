import { evictionCount } from './evict.ts';

interface Node<V> {
  readonly first: string;
  readonly second: string;
  value: V;
  /** The next entry with the same first key (a token used at several upstreams: rarely more than one). */
  next: Node<V> | undefined;
}

/**
 * An insertion-ordered map keyed by a pair of strings (a token hash and an upstream name), bounded by
 * the caller. Looked up by the two strings as they are: a composite key (hash + '|' + name) is a new
 * string on every request that V8 must flatten and hash in full before the Map can find it (~300 ns,
 * more than the rest of a cache hit), while the strings themselves keep their hash once computed.
 */
export class PairMap<V> {
  readonly #heads = new Map<string, Node<V>>();
  /** Every entry, oldest first (object keys hash by identity). */
  readonly #order = new Set<Node<V>>();

  get size(): number {
    return this.#order.size;
  }

  get(first: string, second: string): V | undefined {
    for (let n = this.#heads.get(first); n !== undefined; n = n.next) if (n.second === second) return n.value;
    return undefined;
  }

  /** As Map.set: a pair already held keeps its place in the order. */
  set(first: string, second: string, value: V): void {
    const head = this.#heads.get(first);
    for (let n = head; n !== undefined; n = n.next) {
      if (n.second === second) {
        n.value = value;
        return;
      }
    }
    const node: Node<V> = { first, second, value, next: head };
    this.#heads.set(first, node);
    this.#order.add(node);
  }

  delete(first: string, second: string): boolean {
    let prev: Node<V> | undefined;
    for (let n = this.#heads.get(first); n !== undefined; prev = n, n = n.next) {
      if (n.second !== second) continue;
      this.#unlink(n, prev);
      return true;
    }
    return false;
  }

  /** Entries oldest first, as [first, second, value]; deleting the current one while iterating is safe. */
  *entries(): IterableIterator<readonly [string, string, V]> {
    for (const n of this.#order) yield [n.first, n.second, n.value];
  }

  /**
   * Makes room for `incoming` more under `max` by lib/evict.ts's rule for a Map (evictionCount): the
   * oldest entries, in one pass.
   */
  evictOldest(max: number, incoming = 0): void {
    let excess = evictionCount(this.#order.size, max, incoming);
    if (excess === 0) return; // see lib/evict.ts: starting the iterator already walks the holes
    for (const n of this.#order) {
      if (excess-- <= 0) break;
      this.delete(n.first, n.second);
    }
  }

  #unlink(n: Node<V>, prev: Node<V> | undefined): void {
    if (prev !== undefined) prev.next = n.next;
    else if (n.next !== undefined) this.#heads.set(n.first, n.next);
    else this.#heads.delete(n.first);
    this.#order.delete(n);
  }
}
