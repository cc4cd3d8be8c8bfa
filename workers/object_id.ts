/** `DurableObjectId`: what `ctx.id` and the namespace methods return. */

/** Names longer than this are not kept on the id (workerd drops them the same way). */
const MAX_NAME_LENGTH = 1024;

/** A Durable Object id: a 64-hex string, plus the name it was derived from (if any). */
export class DurableObjectId {
  readonly #hex: string;
  readonly name: string | undefined;
  readonly jurisdiction: string | undefined = undefined;

  constructor(hex: string, name: string | null | undefined) {
    this.#hex = hex;
    this.name = typeof name === "string" && name.length <= MAX_NAME_LENGTH ? name : undefined;
  }

  /** The stable 64-hex-character form. */
  toString(): string {
    return this.#hex;
  }

  /** Whether both ids name the same object. */
  equals(other: DurableObjectId): boolean {
    return other instanceof DurableObjectId && other.#hex === this.#hex;
  }

  toJSON(): string {
    return this.#hex;
  }
}
