import { Transform, type TransformCallback } from 'node:stream';

/**
 * Passes SSE bytes through untouched while remembering whether the stream currently stands at an
 * event boundary, so the gateway can add a final event without cutting one of the upstream's in two.
 */
export class SseTail extends Transform {
  #tail = '\n\n';

  get atBoundary(): boolean {
    return this.#tail.endsWith('\n\n') || this.#tail.endsWith('\r\n\r\n') || this.#tail.endsWith('\r\r');
  }

  override _transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    this.#tail = (this.#tail + text).slice(-4);
    cb(null, chunk);
  }
}

export type EndStream = (finalEvent?: string) => void;

/** Open SSE streams, so that shutdown can end each with a final event (and metrics can count them). */
export class StreamRegistry {
  readonly #streams = new Set<EndStream>();
  readonly #onChange: ((upstream: string, delta: 1 | -1) => void) | undefined;

  constructor(onChange?: (upstream: string, delta: 1 | -1) => void) {
    this.#onChange = onChange;
  }

  add(upstream: string, end: EndStream): () => void {
    this.#streams.add(end);
    this.#onChange?.(upstream, 1);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.#streams.delete(end);
      this.#onChange?.(upstream, -1);
    };
  }

  get size(): number {
    return this.#streams.size;
  }

  endAll(finalEvent: string): void {
    for (const end of [...this.#streams]) end(finalEvent);
  }
}
