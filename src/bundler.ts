/**
 * Deploy-time bundling of a class file with esbuild-wasm.
 *
 * esbuild runs in-process through its `esm/browser.js` entry (no subprocess, no native
 * download); the wasm binary is imported as bytes so a compiled executable carries it. Every
 * import except `cloudflare:workers` is rejected, including `require()` and literal dynamic
 * `import()` (esbuild is told dynamic import is unsupported, so it turns each one into a
 * `require` that reaches the same resolver). `cloudflare:workers` resolves to the shim that
 * reads the worker runtime's exports, so the bundle needs nothing outside itself.
 */

import * as esbuild from "esbuild-wasm/esm/browser.js";
import wasm from "esbuild-wasm/esbuild.wasm" with { type: "bytes" };
import { CLOUDFLARE_WORKERS_SHIM } from "../workers/protocol.ts";

/** A bundled class file. */
export interface Bundle {
  code: string;
  /** Names the module exports (classes and anything else). */
  exports: string[];
}

/** Why a source was rejected, with a message for the user. */
export class BundleError extends Error {
  override name = "BundleError";
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

let compiled: Promise<WebAssembly.Module> | null = null;
let ready: Promise<void> | null = null;
/** The build in progress: builds run one at a time (see {@linkcode bundleSource}). */
let queue: Promise<unknown> = Promise.resolve();

/** Starts esbuild once (about 100 ms); later calls share the same promise. */
export function initBundler(): Promise<void> {
  compiled ??= WebAssembly.compile(wasm);
  ready ??= compiled.then((wasmModule) => esbuild.initialize({ wasmModule, worker: false }));
  return ready;
}

/**
 * Bundles one TypeScript class file. Throws {@linkcode BundleError} for user mistakes.
 *
 * Builds run one at a time because a source nested a few thousand levels deep overflows the
 * stack inside esbuild's Go runtime, which leaves that esbuild instance unusable: the bundler
 * then stops it and starts a fresh one, and no other build may be in flight on the old one
 * (its promise would never settle).
 */
export function bundleSource(source: string): Promise<Bundle> {
  const run = queue.then(() => build(source));
  queue = run.catch(() => {});
  return run;
}

async function build(source: string): Promise<Bundle> {
  await initBundler();
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
    if (disallowed !== null) {
      throw new BundleError("DISALLOWED_IMPORT", disallowedMessage(disallowed));
    }
    if (!Array.isArray((error as Partial<esbuild.BuildFailure>).errors)) {
      await restart();
      throw compilerCrash(error);
    }
    throw syntaxError(error);
  }
  const output = result.outputFiles[0];
  const meta = Object.values(result.metafile.outputs)[0];
  if (!output || !meta) throw new BundleError("SYNTAX_ERROR", "esbuild produced no output");
  return { code: output.text, exports: meta.exports };
}

function disallowedMessage(specifier: string): string {
  if (specifier.startsWith("cloudflare:")) {
    return `Import '${specifier}' is not supported by dohost. Only 'cloudflare:workers' is available.`;
  }
  return `Import '${specifier}' is not allowed. v1 DO source files may only import from ` +
    `cloudflare:* (e.g. 'cloudflare:workers'). npm packages are not supported.`;
}

/** Drops a broken esbuild instance; the next build starts a fresh one. */
async function restart(): Promise<void> {
  ready = null;
  await esbuild.stop();
}

/** The error for a source that crashed the compiler instead of failing to parse. */
function compilerCrash(error: unknown): BundleError {
  if (error instanceof RangeError) {
    return new BundleError(
      "SYNTAX_ERROR",
      "Cannot compile the source: it is nested too deeply (maximum call stack size exceeded)",
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return new BundleError("SYNTAX_ERROR", `Cannot compile the source: ${message}`);
}

function syntaxError(error: unknown): BundleError {
  const failure = error as Partial<esbuild.BuildFailure>;
  const first = failure.errors?.[0];
  if (!first) {
    return new BundleError("SYNTAX_ERROR", error instanceof Error ? error.message : String(error));
  }
  const where = first.location
    ? ` at line ${first.location.line}, column ${first.location.column + 1}`
    : "";
  return new BundleError("SYNTAX_ERROR", `Syntax error${where}: ${first.text}`);
}
