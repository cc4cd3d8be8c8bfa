/**
 * Hostile inputs for the fuzz tests, all drawn from a seeded {@linkcode Prng}: path segments
 * with traversal, encoding and unicode tricks, JSON bodies that are valid, mutated or broken,
 * and odd methods. Every traversal attempt names `dohostfuzz` so a file it managed to create
 * outside the data dir can be found afterwards.
 */

import type { Prng } from "./_prng.ts";

/** The marker every traversal attempt carries. */
export const ESCAPE_MARKER = "dohostfuzz";

/** Path segments, already in the form they take inside a URL path. */
const SEGMENTS = [
  "..",
  "%2e%2e",
  "%2E%2E%2F%2E%2E",
  `..%2F..%2F..%2F${ESCAPE_MARKER}`,
  `%2e%2e%2f%2e%2e%2f${ESCAPE_MARKER}`,
  `..%5C..%5C${ESCAPE_MARKER}`,
  "%2F",
  "a%2Fb",
  "%00",
  "a%00b",
  "%",
  "%zz",
  "%C0%AE%C0%AE",
  "%E6%97%A5%E6%9C%AC",
  "%F0%9F%A6%95",
  "%E2%80%AE",
  "%EF%BB%BF",
  "%ED%A0%80",
  ".",
  "~",
  "CON",
  "nul",
  "__proto__",
  "constructor",
  "toString",
  "%24(rm%20-rf)",
  "'%3B%20DROP%20TABLE%20classes%3B--",
  "%3Cscript%3E",
  "%20",
  "a b",
  "UPPER",
  "snake_case",
  "app_default",
  "counter",
  "echo",
  "-",
  "a-",
  "9lives",
];

/** Methods, including ones no route expects. */
export const METHODS = [
  "GET",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "OPTIONS",
  "HEAD",
  "PROPFIND",
  "MKCOL",
  "X-CUSTOM",
] as const;

/** A path segment: a hostile one, a long one, or a plausible name. */
export function segment(prng: Prng): string {
  const roll = prng.next();
  if (roll < 0.6) return prng.pick(SEGMENTS);
  if (roll < 0.7) return "a".repeat(prng.pick([256, 1024, 5000, 10_240]));
  if (roll < 0.8) return encodeURIComponent("日本".repeat(prng.int(1, 1400)));
  if (roll < 0.9) return randomName(prng);
  return percentEncode(randomText(prng, prng.int(1, 40)));
}

/** Percent-encodes the UTF-8 bytes of `text` (lone surrogates become U+FFFD). */
export function percentEncode(text: string): string {
  return Array.from(
    new TextEncoder().encode(text),
    (byte) =>
      /[A-Za-z0-9._~-]/.test(String.fromCharCode(byte))
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`,
  ).join("");
}

/** A kebab-case name that passes the class-name rule. */
export function randomName(prng: Prng): string {
  const words = Array.from({ length: prng.int(1, 3) }, () => randomWord(prng));
  return words.join("-");
}

function randomWord(prng: Prng): string {
  const letters = "abcdefghijklmnopqrstuvwxyz";
  return Array.from({ length: prng.int(1, 8) }, () => prng.pick([...letters])).join("");
}

/** Text of random code points, including control characters and lone surrogates. */
export function randomText(prng: Prng, length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) {
    const kind = prng.int(0, 4);
    const code = kind === 0
      ? prng.int(0, 31)
      : kind === 1
      ? prng.int(0xd800, 0xdfff)
      : kind === 2
      ? prng.int(0x80, 0xffff)
      : prng.int(32, 126);
    text += String.fromCharCode(code);
  }
  return text;
}

/** A JSON value of random shape, up to `depth` levels. */
export function randomJson(prng: Prng, depth = 3): unknown {
  const kind = prng.int(0, depth > 0 ? 8 : 5);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return prng.chance(0.5);
    case 2:
      return prng.pick([0, -1, 1e308, -0, 2 ** 53 + 1, 0.1, 1e-320]);
    case 3:
      return randomText(prng, prng.int(0, 20));
    case 4:
      return "x".repeat(prng.pick([0, 1, 100, 9000, 70_000]));
    case 5:
      return prng.pick(["", "public", "authenticated", "service_key", "admin", "PUBLIC"]);
    case 6:
      return Array.from({ length: prng.int(0, 4) }, () => randomJson(prng, depth - 1));
    default: {
      const out: Record<string, unknown> = {};
      for (let i = prng.int(0, 4); i > 0; i--) {
        out[
          prng.pick(["name", "code", "value", "access_mode", "__proto__", "dir", randomWord(prng)])
        ] = randomJson(prng, depth - 1);
      }
      return out;
    }
  }
}

/** Small class sources: valid, broken, hostile or not code at all. */
export function randomCode(prng: Prng): unknown {
  return prng.pick<unknown>([
    "export class Fuzz { fetch() { return new Response('ok'); } }",
    "export class Fuzz {",
    "export default class Fuzz {}",
    "import x from 'node:fs'; export class Fuzz {}",
    "export class A {} export class B {}",
    "throw new Error('top level');",
    "export class Fuzz { constructor() { throw new Error('ctor'); } }",
    "export const Fuzz = 1;",
    "\u0000\u0001\u0002",
    "export class Fuzz {}\n".repeat(3),
    "{".repeat(5_000),
    "",
    42,
    null,
    ["export class Fuzz {}"],
    { code: "export class Fuzz {}" },
  ]);
}

/** A request body: mostly JSON aimed at the route's schema, sometimes anything else. */
export function randomBody(prng: Prng): BodyInit | undefined {
  const roll = prng.next();
  if (roll < 0.15) return undefined;
  if (roll < 0.55) {
    return JSON.stringify({
      name: prng.chance(0.5) ? randomName(prng) : randomJson(prng, 1),
      code: randomCode(prng),
      access_mode: randomJson(prng, 0),
      value: prng.chance(0.5) ? randomText(prng, prng.int(0, 30)) : randomJson(prng, 1),
    });
  }
  if (roll < 0.75) return JSON.stringify(randomJson(prng));
  if (roll < 0.85) {
    return prng.pick([
      "{",
      '{"name":',
      "[1,2,",
      "null",
      '"just a string"',
      '{"__proto__":{"admin":true},"name":"x"}',
      '{"name":"a","name":"b"}',
      "[".repeat(100_000),
      '{"a":'.repeat(50_000),
      "\uFEFF{}",
      "NaN",
      "1e999999",
    ]);
  }
  return prng.bytes(prng.int(0, 2048));
}
