/**
 * The bundler thread: runs esbuild-wasm for `src/bundler.ts`, so a large or hostile source keeps
 * this thread busy instead of the main thread that serves every request.
 *
 * esbuild runs in-process through its `esm/browser.js` entry (no subprocess, no native
 * download); the wasm binary is imported as bytes so a compiled executable carries it (the
 * compile task `--include`s this file). Every import except `cloudflare:workers` is rejected,
 * including `require()` and literal dynamic `import()` (esbuild is told dynamic import is
 * unsupported, so it turns each one into a `require` that reaches the same resolver).
 * `cloudflare:workers` resolves to the shim that reads the worker runtime's exports, so the
 * bundle needs nothing outside itself.
 *
 * The thread takes a Web Lock before anything else: in Deno 2.9 only a `node:worker_threads`
 * worker holding one is preempted by `terminate()` while it computes, which is how the main
 * thread ends a build that runs past its timeout. (A 5 MB build was also ended without the lock:
 * esbuild's Go runtime returns to the event loop now and then. The lock covers a loop that does
 * not.)
 */

import * as esbuild from "esbuild-wasm/esm/browser.js";
import wasm from "esbuild-wasm/esbuild.wasm" with { type: "bytes" };
import { parentPort } from "node:worker_threads";
import { SCRIPT_MARK } from "../workers/class_loader.ts";
import { CLOUDFLARE_WORKERS_SHIM } from "../workers/protocol.ts";

/** Main thread → bundler thread: bundle one class file. */
export interface BuildRequest {
  type: "build";
  id: number;
  source: string;
}

/** Why a source was rejected (the `reason` of the deploy error). */
export type BuildFailureReason = "DISALLOWED_IMPORT" | "SYNTAX_ERROR";

/** What one build ends with. */
export type BuildOutcome =
  | { type: "built"; code: string; exports: string[] }
  | {
    type: "failed";
    reason: BuildFailureReason;
    message: string;
    /** esbuild crashed rather than rejecting the source: this thread must not build again. */
    crashed: boolean;
  };

/** Bundler thread → main thread: `ready` once esbuild is up, then one outcome per request. */
export type BundlerMessage = { type: "ready" } | (BuildOutcome & { id: number });

type Failure = Extract<BuildOutcome, { type: "failed" }>;

if (!parentPort) throw new Error("src/bundler_worker.ts must run as a node:worker_threads worker");
const port = parentPort;

/** The Web Locks API (present in Deno workers; missing from the worker lib typings). */
interface LockManager {
  request(name: string, callback: () => Promise<never>): Promise<unknown>;
}
const locks = (navigator as unknown as { locks: LockManager }).locks;
await new Promise<void>((locked) => {
  locks.request(`dohost-bundler-${crypto.randomUUID()}`, () => {
    locked();
    return new Promise<never>(() => {});
  });
});
// esbuild's browser build reads the global scope as `self`, which a node:worker_threads worker
// lacks.
(globalThis as { self?: typeof globalThis }).self ??= globalThis;
await esbuild.initialize({ wasmModule: await WebAssembly.compile(wasm), worker: false });
// The first build costs several times a later one (measured ~500 ms against ~40 ms): pay it now.
await build("export class Warm {}");

port.on("message", (request: BuildRequest) => {
  build(request.source).then((outcome) => post({ ...outcome, id: request.id }));
});
post({ type: "ready" });

function post(message: BundlerMessage): void {
  port.postMessage(message);
}

/** Bundles `source`; never rejects. */
async function build(source: string): Promise<BuildOutcome> {
  let disallowed: string | null = null;
  let result: esbuild.BuildResult<{ write: false; metafile: true }>;
  try {
    result = await esbuild.build({
      stdin: { contents: source, loader: "ts", sourcefile: "class.ts" },
      bundle: true,
      format: "esm",
      platform: "neutral",
      target: "es2022",
      write: false,
      metafile: true,
      logLevel: "silent",
      supported: { "dynamic-import": false },
      plugins: [{
        name: "dohost-imports",
        setup(build: esbuild.PluginBuild) {
          build.onResolve({ filter: /.*/ }, (args) => {
            if (args.path === "cloudflare:workers") {
              return { path: args.path, namespace: "cloudflare" };
            }
            disallowed ??= args.path;
            return { errors: [{ text: disallowedMessage(args.path) }] };
          });
          build.onLoad({ filter: /.*/, namespace: "cloudflare" }, () => ({
            contents: CLOUDFLARE_WORKERS_SHIM,
            loader: "js",
          }));
        },
      }],
    });
  } catch (error) {
    if (disallowed !== null) return rejected("DISALLOWED_IMPORT", disallowedMessage(disallowed));
    if (!Array.isArray((error as Partial<esbuild.BuildFailure>).errors)) {
      // Cancels the Go runtime's timers: resumed after the crash, it dumps a fatal error to stderr.
      await esbuild.stop();
      return compilerCrash(error);
    }
    return syntaxError(error);
  }
  const output = result.outputFiles[0];
  const meta = Object.values(result.metafile.outputs)[0];
  if (!output || !meta) return rejected("SYNTAX_ERROR", "esbuild produced no output");
  return { type: "built", code: await asScript(output.text), exports: meta.exports };
}

/**
 * The bundle as a classic script (`workers/class_loader.ts` says why); a bundle that cannot be
 * one (top-level `await`) stays an ES module.
 */
async function asScript(module: string): Promise<string> {
  try {
    const script = await esbuild.transform(module, {
      format: "cjs",
      loader: "js",
      target: "es2022",
      logLevel: "silent",
    });
    return SCRIPT_MARK + script.code;
  } catch {
    return module;
  }
}

function rejected(reason: BuildFailureReason, message: string): Failure {
  return { type: "failed", reason, message, crashed: false };
}

function disallowedMessage(specifier: string): string {
  if (specifier.startsWith("cloudflare:")) {
    return `Import '${specifier}' is not supported by dohost. Only 'cloudflare:workers' is available.`;
  }
  return `Import '${specifier}' is not allowed. v1 DO source files may only import from ` +
    `cloudflare:* (e.g. 'cloudflare:workers'). npm packages are not supported.`;
}

/**
 * The failure for a source that crashed the compiler instead of failing to parse. A source
 * nested a few thousand levels deep overflows the stack inside esbuild's Go runtime, which
 * leaves that esbuild instance unusable: the main thread then replaces this thread.
 */
function compilerCrash(error: unknown): Failure {
  const message = error instanceof RangeError
    ? "Cannot compile the source: it is nested too deeply (maximum call stack size exceeded)"
    : `Cannot compile the source: ${error instanceof Error ? error.message : String(error)}`;
  return { type: "failed", reason: "SYNTAX_ERROR", message, crashed: true };
}

function syntaxError(error: unknown): Failure {
  const failure = error as Partial<esbuild.BuildFailure>;
  const first = failure.errors?.[0];
  if (!first) {
    return rejected("SYNTAX_ERROR", error instanceof Error ? error.message : String(error));
  }
  const where = first.location
    ? ` at line ${first.location.line}, column ${first.location.column + 1}`
    : "";
  return rejected("SYNTAX_ERROR", `Syntax error${where}: ${first.text}`);
}
