/**
 * SQLite's math functions (`cos`, `sqrt`, `pow`, `log`, …) for user SQL.
 *
 * Cloudflare's SQLite is built with them; Deno's is not (`SELECT cos(0)` says "no such
 * function"). They are registered on the connection as deterministic JS functions with
 * SQLite's semantics: only INTEGER and REAL (or text that reads as a number) are accepted,
 * anything else gives NULL, a domain error (NaN) gives NULL, and ceil/floor/trunc keep an
 * INTEGER argument an INTEGER.
 */

import type { DatabaseSync } from "node:sqlite";

const NUMERIC_TEXT = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?\s*$/i;
const INTEGER_TEXT = /^\s*[+-]?\d+\s*$/;

/** The argument as a number, or null when SQLite would not treat it as numeric. */
function numeric(value: unknown): number | null {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "string" && NUMERIC_TEXT.test(value)) return Number(value);
  return null;
}

/** Wraps a numeric function so non-numeric arguments give NULL. */
function unary(fn: (x: number) => number): (value: unknown) => number | null {
  return (value) => {
    const x = numeric(value);
    return x === null ? null : fn(x);
  };
}

function binary(fn: (x: number, y: number) => number): (a: unknown, b: unknown) => number | null {
  return (a, b) => {
    const x = numeric(a);
    const y = numeric(b);
    return x === null || y === null ? null : fn(x, y);
  };
}

/** ceil/floor/trunc: an INTEGER argument comes back unchanged (and still an INTEGER). */
function rounding(fn: (x: number) => number): (value: unknown) => number | bigint | null {
  return (value) => {
    if (typeof value === "bigint") return value;
    if (typeof value === "string" && INTEGER_TEXT.test(value)) return BigInt(value.trim());
    const x = numeric(value);
    return x === null ? null : fn(x);
  };
}

function logarithm(x: number): number {
  return x > 0 ? Math.log10(x) : NaN;
}

const UNARY: Record<string, (x: number) => number> = {
  acos: Math.acos,
  acosh: Math.acosh,
  asin: Math.asin,
  asinh: Math.asinh,
  atan: Math.atan,
  atanh: Math.atanh,
  cos: Math.cos,
  cosh: Math.cosh,
  sin: Math.sin,
  sinh: Math.sinh,
  tan: Math.tan,
  tanh: Math.tanh,
  exp: Math.exp,
  sqrt: Math.sqrt,
  ln: (x) => x > 0 ? Math.log(x) : NaN,
  log: logarithm,
  log10: logarithm,
  log2: (x) => x > 0 ? Math.log2(x) : NaN,
  degrees: (x) => x * 180 / Math.PI,
  radians: (x) => x * Math.PI / 180,
};

const BINARY: Record<string, (x: number, y: number) => number> = {
  atan2: Math.atan2,
  mod: (x, y) => x % y,
  pow: Math.pow,
  power: Math.pow,
  log: (base, x) => base > 0 && x > 0 ? Math.log(x) / Math.log(base) : NaN,
};

const ROUNDING: Record<string, (x: number) => number> = {
  ceil: Math.ceil,
  ceiling: Math.ceil,
  floor: Math.floor,
  trunc: Math.trunc,
};

/** Registers the math functions on a connection. */
export function registerMathFunctions(db: DatabaseSync): void {
  const options = { deterministic: true, useBigIntArguments: true };
  for (const [name, fn] of Object.entries(UNARY)) db.function(name, options, unary(fn));
  for (const [name, fn] of Object.entries(BINARY)) db.function(name, options, binary(fn));
  for (const [name, fn] of Object.entries(ROUNDING)) db.function(name, options, rounding(fn));
  db.function("pi", { deterministic: true }, () => Math.PI);
}
