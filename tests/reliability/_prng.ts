/**
 * A small seeded PRNG for the reliability tests: every random choice (kill moments, fuzz
 * inputs) comes from one seed, printed on failure, so a failing run can be replayed with
 * `DOHOST_SEED=<seed>`.
 */

/** A deterministic random source (mulberry32). */
export class Prng {
  readonly seed: number;
  #state: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new RangeError("Cannot pick from an empty list");
    return item;
  }

  /** `length` random bytes. */
  bytes(length: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.int(0, 255);
    return out;
  }
}

/** The seed from `DOHOST_SEED`, or a fresh one; tests print it in their failure messages. */
export function seedFromEnv(): number {
  const text = Deno.env.get("DOHOST_SEED");
  const seed = text === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(text);
  if (!Number.isInteger(seed)) throw new TypeError(`Invalid DOHOST_SEED "${text}"`);
  return seed >>> 0;
}
