// The issuer's signing keys over time: which are published, which one signs, persisted on change.
import type { PrivateJwk } from 'oidc-provider';
import { ConfigError } from '../config/errors.ts';
import { retainedKeys, signingKey, withRotation, type KeyRecord } from './key-schedule.ts';
import { generateKeyRecord, readKeysFile, writeKeysFile } from './keys-file.ts';
import type { SigningAlg } from './types.ts';
import type { IssuerSettings } from './options.ts';

export interface KeyView {
  /** Changes whenever the published set or the signing key changes. */
  readonly id: string;
  readonly signingKid: string;
  /** Private JWKs, the signing key first (oidc-provider signs ID tokens with the first match). */
  readonly keys: readonly PrivateJwk[];
}

export interface KeyRingSettings {
  readonly file: string;
  readonly alg: SigningAlg;
  readonly maxTokenLifetimeMs: number;
  readonly graceMs: number;
  readonly now: () => number;
}

export class KeyRing {
  readonly #settings: KeyRingSettings;
  #records: readonly KeyRecord[];
  #writes: Promise<void> = Promise.resolve();
  #writeError: unknown;

  private constructor(settings: KeyRingSettings, records: readonly KeyRecord[]) {
    this.#settings = settings;
    this.#records = records;
  }

  /** The key ring of an issuer's validated settings: its file, algorithm, token lifetime and grace. */
  static forIssuer(settings: IssuerSettings): Promise<KeyRing> {
    return KeyRing.open({
      file: settings.keysFile,
      alg: settings.signingAlg,
      // Every token this issuer signs (access and ID tokens) lives at most this long.
      maxTokenLifetimeMs: settings.accessTokenTtlSeconds * 1000,
      graceMs: settings.rotationGraceSeconds * 1000,
      now: settings.now,
    });
  }

  /** Loads the keys file, or creates it with one key that signs from now on. */
  static async open(settings: KeyRingSettings): Promise<KeyRing> {
    const now = settings.now();
    const stored = await readKeysFile(settings.file, settings.alg);
    const records = retainedKeys(stored ?? [await generateKeyRecord(settings.alg, now)], now);
    if (signingKey(records, now) === undefined) {
      throw new ConfigError([{ file: settings.file, line: undefined, key: 'keysFile', message: 'has no key active now (is the clock behind the file?)' }]);
    }
    if (stored === undefined || records.length !== stored.length) await writeKeysFile(settings.file, records);
    return new KeyRing(settings, records);
  }

  /** The keys as of now; retired keys are dropped here, and from the file in the background. */
  view(): KeyView {
    const now = this.#settings.now();
    const retained = retainedKeys(this.#records, now);
    if (retained.length !== this.#records.length) {
      this.#records = retained;
      void this.#persist(true);
    }
    const signing = signingKey(retained, now);
    // Unreachable while the clock moves forward: the newest key never retires.
    if (signing === undefined) throw new Error('no signing key is active');
    const keys = [signing.jwk, ...retained.filter((r) => r !== signing).map((r) => r.jwk)];
    return { id: keys.map((k) => k.kid).join(' '), signingKid: signing.jwk.kid, keys };
  }

  /** Publishes a new key now; it signs after the grace period, and older keys retire after it. */
  async rotate(): Promise<void> {
    const { alg, graceMs, maxTokenLifetimeMs, now } = this.#settings;
    const next = await generateKeyRecord(alg, now() + graceMs);
    const previous = this.#records;
    const rotated = withRotation(retainedKeys(previous, now()), next, maxTokenLifetimeMs);
    this.#records = rotated;
    try {
      await this.#persist(false);
    } catch (error) {
      // A key that would not survive a restart must not be published.
      if (this.#records === rotated) this.#records = previous;
      throw error;
    }
  }

  /**
   * Re-reads the keys file after another process changed it (`mcp-warden keys rotate --issuer`).
   * A file that cannot be read, or that leaves no key active now, is ignored: the current keys stay.
   */
  async reload(): Promise<boolean> {
    await this.#writes;
    const now = this.#settings.now();
    const stored = await readKeysFile(this.#settings.file, this.#settings.alg).catch(() => undefined);
    if (stored === undefined) return false;
    const records = retainedKeys(stored, now);
    if (signingKey(records, now) === undefined) return false;
    this.#records = records;
    return true;
  }

  /** Waits for pending writes; reports a background write that failed. */
  async flush(): Promise<void> {
    await this.#writes;
    if (this.#writeError !== undefined) throw this.#writeError;
  }

  /**
   * Writes are serialised and each writes the records current when it runs, so none is lost.
   * A background write's failure is kept for flush(); a foreground one's goes to its caller only.
   */
  #persist(background: boolean): Promise<void> {
    const write = this.#writes.then(() => writeKeysFile(this.#settings.file, this.#records));
    this.#writes = write.catch((error: unknown) => {
      if (background) this.#writeError ??= error;
    });
    return write;
  }
}
