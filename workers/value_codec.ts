/**
 * Storage value encoding with structured-clone semantics.
 *
 * Values that JSON represents exactly (plain objects and dense arrays of strings, finite
 * numbers other than -0, booleans and null) are stored as UTF-8 JSON: about 20× cheaper than
 * `node:v8`. Everything else (Date, Map, Set, BigInt, typed arrays, cycles, undefined inside
 * objects, …) goes through the V8 serializer, the format workerd itself stores. A V8 payload
 * always starts with the version tag 0xFF, which JSON text never does, so no extra tag byte is
 * needed to tell them apart.
 */

import { deserialize, serialize } from "node:v8";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const V8_TAG = 0xff;
/** Past this many objects the V8 path is used: its cost no longer dominates. */
const MAX_JSON_OBJECTS = 1024;

/** Encodes `value` synchronously; throws a `DataCloneError` for uncloneable values. */
export function encodeValue(value: unknown): Uint8Array {
  if (isJsonExact(value, new Set())) return encoder.encode(JSON.stringify(value));
  try {
    return serialize(value);
  } catch (error) {
    throw new DOMException(
      error instanceof Error ? error.message : String(error),
      "DataCloneError",
    );
  }
}

/** Decodes bytes written by {@linkcode encodeValue}. */
export function decodeValue(bytes: Uint8Array): unknown {
  if (bytes[0] === V8_TAG) return deserialize(bytes);
  return JSON.parse(decoder.decode(bytes));
}

/** JSON-exact: no shared or cyclic references (structured clone keeps identity), bounded depth. */
function isJsonExact(value: unknown, seen: Set<object>): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value) && !Object.is(value, -0);
    case "object":
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (seen.has(value) || seen.size >= MAX_JSON_OBJECTS) return false;
  seen.add(value);
  const proto = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    if (proto !== Array.prototype || Object.keys(value).length !== value.length) return false;
    return value.every((item) => isJsonExact(item, seen));
  }
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key of Object.keys(value)) {
    const descriptor = Object.getOwnPropertyDescriptor(value, key);
    if (!descriptor || !("value" in descriptor)) return false;
    if (!isJsonExact(descriptor.value, seen)) return false;
  }
  return Object.getOwnPropertySymbols(value).length === 0;
}
