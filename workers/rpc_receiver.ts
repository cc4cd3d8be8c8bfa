/**
 * The target's side of JS RPC: `await stub.method(...args)` from another object arrives as an
 * `rpc` event, passes the input gate like a request, and calls the method on the instance.
 *
 * As on Cloudflare, only classes that extend `DurableObject` accept RPC, and only methods of
 * the class (its prototype chain below `DurableObject`) can be called: not fields, not
 * `Object.prototype` members, and never the reserved `fetch`, `connect`, `dup` or
 * `constructor`. The result is committed storage-wise (output gate) before it is sent back.
 */

import { decodeValue, encodeValue } from "./value_codec.ts";
import { DurableObject } from "./runtime.ts";

const RESERVED = new Set(["fetch", "connect", "dup", "constructor"]);

const NOT_EXTENDED = "The receiving Durable Object does not support RPC, because its class " +
  "was not declared with `extends DurableObject`. In order to enable RPC, make sure your " +
  "class extends the special class `DurableObject`, which can be imported from the module " +
  '"cloudflare:workers".';

/** What the receiver needs from the object runtime. */
export interface RpcHost {
  deliver<T>(event: (instance: Record<string, unknown>) => Promise<T>): Promise<T>;
  /** `storage.sync()` resolves once every earlier write is committed. */
  readonly state: { readonly storage: { sync(): Promise<void> } };
}

/** Runs one RPC call and returns the encoded result (throws what the method threw). */
export async function receiveRpc(
  host: RpcHost,
  method: string,
  args: Uint8Array,
): Promise<Uint8Array> {
  const value = await host.deliver(async (instance) => {
    const handler = rpcMethod(instance, method);
    const decoded = decodeValue(args);
    const list = Array.isArray(decoded) ? decoded : [];
    return await handler.apply(instance, list);
  });
  const encoded = encodeValue(value);
  await host.state.storage.sync();
  return encoded;
}

/** The method `name` of `instance` if RPC may call it; throws Cloudflare's TypeError if not. */
function rpcMethod(
  instance: Record<string, unknown>,
  name: string,
): (...args: unknown[]) => unknown {
  if (!(instance instanceof DurableObject)) throw new TypeError(NOT_EXTENDED);
  const missing = new TypeError(`The RPC receiver does not implement the method "${name}".`);
  if (RESERVED.has(name)) throw missing;
  for (
    let proto: object | null = Object.getPrototypeOf(instance);
    proto !== null && proto !== DurableObject.prototype && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, name);
    if (!descriptor) continue;
    if (typeof descriptor.value === "function") {
      return descriptor.value as (...args: unknown[]) => unknown;
    }
    throw missing;
  }
  throw missing;
}
