/**
 * Remembers whether the bytes sent so far stand at an SSE event boundary, so the gateway can add a
 * final event without cutting one of the upstream's in two. Not a stream of its own: one per open SSE
 * stream, so it is kept to a four-character string.
 */
export class SseTail {
  #tail = '\n\n';

  get atBoundary(): boolean {
    return this.#tail.endsWith('\n\n') || this.#tail.endsWith('\r\n\r\n') || this.#tail.endsWith('\r\r');
  }

  saw(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk.slice(-4) : chunk.subarray(-4).toString('latin1');
    this.#tail = (this.#tail + text).slice(-4);
  }
}

export type EndStream = (finalEvent?: string) => void;

/**
 * Open SSE streams, so that shutdown can end each with a final event, metrics can count them, and one
 * identity cannot hold more than its share (SC-155).
 */
export class StreamRegistry {
  readonly #streams = new Set<EndStream>();
  readonly #perIdentity = new Map<string, number>();
  readonly #onChange: ((upstream: string, delta: 1 | -1) => void) | undefined;

  constructor(onChange?: (upstream: string, delta: 1 | -1) => void) {
    this.#onChange = onChange;
  }

  add(upstream: string, identity: string, end: EndStream): () => void {
    this.#streams.add(end);
    this.#perIdentity.set(identity, this.countFor(identity) + 1);
    this.#onChange?.(upstream, 1);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.#streams.delete(end);
      const left = this.countFor(identity) - 1;
      if (left <= 0) this.#perIdentity.delete(identity);
      else this.#perIdentity.set(identity, left);
      this.#onChange?.(upstream, -1);
    };
  }

  countFor(identity: string): number {
    return this.#perIdentity.get(identity) ?? 0;
  }

  get size(): number {
    return this.#streams.size;
  }

  endAll(finalEvent: string): void {
    for (const end of [...this.#streams]) end(finalEvent);
  }
}
