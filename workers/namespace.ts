/**
 * `env.<BINDING>`: one `DurableObjectNamespace` per class of the app, so objects can reach
 * each other (`env.CHAT_ROOM.getByName("lobby").fetch(…)`, `await stub.join(user)`).
 *
 * Ids are the same 64-hex ids the data plane uses (`protocol.ts`), computed in the namespace
 * `<appId>/<class>`: `idFromName("x")` here and `/_do/<class>/x` reach the same instance.
 * `newUniqueId()` ids carry a check half, so `idFromString()` rejects strings that are not ids
 * of this namespace, with workerd's messages.
 */

import { DurableObjectId } from "./object_id.ts";
import { isObjectIdOf, newUniqueObjectId, objectIdFromName, type WireBinding } from "./protocol.ts";
import { type CallChannel, DurableObjectStub } from "./stub.ts";

/** One class's namespace binding. */
export class DurableObjectNamespace {
  readonly #namespace: string;
  readonly #className: string;
  readonly #channel: CallChannel;

  constructor(appId: string, className: string, channel: CallChannel) {
    this.#namespace = `${appId}/${className}`;
    this.#className = className;
    this.#channel = channel;
  }

  /** The id of the object called `name` (the same name always gives the same id). */
  idFromName(name: string): DurableObjectId {
    const text = String(name);
    return new DurableObjectId(objectIdFromName(this.#namespace, text), text);
  }

  /** Parses an id's `toString()` form; the name is not recovered. */
  idFromString(id: string): DurableObjectId {
    const text = String(id);
    if (!/^[0-9a-fA-F]{64}$/.test(text)) {
      throw new TypeError("Invalid Durable Object ID: must be 64 hex digits");
    }
    const hex = text.toLowerCase();
    if (!isObjectIdOf(this.#namespace, hex)) {
      throw new TypeError("Durable Object ID is not valid for this namespace.");
    }
    return new DurableObjectId(hex, null);
  }

  /** A new random id, different from every other. */
  newUniqueId(_options?: unknown): DurableObjectId {
    return new DurableObjectId(newUniqueObjectId(this.#namespace), null);
  }

  /** A stub for the object `id`; nothing starts until the stub is used. */
  get(id: DurableObjectId, _options?: unknown): DurableObjectStub {
    if (!(id instanceof DurableObjectId) || !isObjectIdOf(this.#namespace, id.toString())) {
      throw new TypeError("Durable Object ID is not valid for this namespace.");
    }
    const name = id.name ?? null;
    return new DurableObjectStub(id, {
      className: this.#className,
      idHex: id.toString(),
      name,
    }, this.#channel);
  }

  /** `get(idFromName(name))`. */
  getByName(name: string, options?: unknown): DurableObjectStub {
    return this.get(this.idFromName(name), options);
  }
}

/** The namespace bindings of an instance's `env`, keyed by binding name. */
export function namespaceBindings(
  appId: string,
  bindings: readonly WireBinding[],
  channel: CallChannel,
): Record<string, DurableObjectNamespace> {
  const env: Record<string, DurableObjectNamespace> = {};
  for (const { binding, name } of bindings) {
    env[binding] = new DurableObjectNamespace(appId, name, channel);
  }
  return env;
}
