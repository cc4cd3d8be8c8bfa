/**
 * Deploy-time bundling of a class file, on a background thread.
 *
 * esbuild-wasm runs in `src/bundler_worker.ts` (which also holds the import policy), one
 * long-lived `node:worker_threads` worker: bundling a large source takes seconds of CPU, and on
 * the main thread that stalled every HTTP request for as long. The main thread only posts the
 * source and waits for the outcome.
 */

import { Worker } from "node:worker_threads";
import type { BuildOutcome, BuildRequest, BundlerMessage } from "./bundler_worker.ts";

const ENTRY = new URL("./bundler_worker.ts", import.meta.url);
/**
 * How long one build may take, from its turn in the queue to the answer (a thread started for it
 * boots within this time too), before its thread is ended.
 */
const BUILD_TIMEOUT_MS = 60_000;

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

/** Options for {@linkcode Bundler}. */
export interface BundlerOptions {
  /** How long one build may take before it fails and its thread is ended (default 60 s). */
  timeoutMs?: number;
}

/**
 * esbuild on its own thread. Builds run one at a time: a source nested a few thousand levels
 * deep overflows the stack inside esbuild's Go runtime, which leaves that esbuild instance
 * unusable, and no other build may be in flight there when it is thrown away. A build that
 * crashes esbuild, runs past its timeout or sees the thread die fails with a
 * {@linkcode BundleError} (`SYNTAX_ERROR`, "Cannot compile the source: …"), and the next build
 * starts a fresh thread.
 */
export class Bundler {
  readonly #timeoutMs: number;
  #thread: BundlerThread | null = null;
  /** The build in progress. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: BundlerOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? BUILD_TIMEOUT_MS;
  }

  /** Starts the thread if none is running; resolves once esbuild is ready in it. */
  start(): Promise<void> {
    return this.#current().ready;
  }

  /** Bundles one TypeScript class file. Throws {@linkcode BundleError} for user mistakes. */
  build(source: string): Promise<Bundle> {
    const run = this.#queue.then(() => this.#build(source));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Ends the thread; a later build starts a fresh one. */
  async close(): Promise<void> {
    const thread = this.#thread;
    this.#thread = null;
    await thread?.terminate();
  }

  async #build(source: string): Promise<Bundle> {
    const thread = this.#current();
    const outcome = await thread.build(source, this.#timeoutMs);
    if (outcome.type === "built") return { code: outcome.code, exports: outcome.exports };
    if (outcome.crashed) {
      if (this.#thread === thread) this.#thread = null;
      void thread.terminate();
    }
    throw new BundleError(outcome.reason, outcome.message);
  }

  #current(): BundlerThread {
    if (!this.#thread?.alive) this.#thread = new BundlerThread();
    return this.#thread;
  }
}

/** One bundler worker and the build it is running. */
class BundlerThread {
  readonly #worker: Worker;
  /** Settles once esbuild is initialized; rejects if the thread dies first. */
  readonly ready: Promise<void>;
  #pending: { id: number; settle(outcome: BuildOutcome): void } | null = null;
  #nextId = 1;
  /** Why the thread failed, from its `error` event. */
  #failure: string | null = null;
  #exited = false;

  constructor() {
    // Referenced while it boots or builds (someone awaits it), not while idle: an idle bundler
    // does not keep the process alive.
    this.#worker = new Worker(ENTRY);
    const booted = Promise.withResolvers<void>();
    this.ready = booted.promise;
    this.ready.catch(() => {});
    this.#worker.on("message", (message: BundlerMessage) => {
      if (message.type === "ready") {
        if (!this.#pending) this.#worker.unref();
        return booted.resolve();
      }
      if (message.id === this.#pending?.id) this.#pending.settle(message);
    });
    this.#worker.on("error", (error: Error) => {
      this.#failure ??= error.message;
    });
    this.#worker.on("exit", () => {
      this.#exited = true;
      const why = `the bundler thread stopped (${this.#failure ?? "it exited"})`;
      booted.reject(new Error(`Cannot start esbuild: ${why}`));
      this.#pending?.settle(crashed(why));
    });
  }

  /** False once the thread has exited. */
  get alive(): boolean {
    return !this.#exited;
  }

  /** Runs one build; a timeout or the thread's death is a crashed outcome, never a rejection. */
  build(source: string, timeoutMs: number): Promise<BuildOutcome> {
    if (this.#exited) return Promise.resolve(crashed("the bundler thread stopped"));
    const id = this.#nextId++;
    const answered = Promise.withResolvers<BuildOutcome>();
    const settle = (outcome: BuildOutcome) => {
      clearTimeout(timer);
      this.#pending = null;
      this.#worker.unref();
      answered.resolve(outcome);
    };
    const timer = setTimeout(
      () => settle(crashed(`bundling did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
    this.#pending = { id, settle };
    this.#worker.ref();
    // Posted once the thread listens: what arrives while it boots is dropped (seen in Deno 2.9).
    this.ready.then(() => {
      if (this.#pending?.id === id) {
        this.#worker.postMessage({ type: "build", id, source } satisfies BuildRequest);
      }
    }, () => {});
    return answered.promise;
  }

  /** Ends the thread, even mid-build (it holds a Web Lock, so `terminate()` preempts it). */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }
}

function crashed(why: string): BuildOutcome {
  return {
    type: "failed",
    reason: "SYNTAX_ERROR",
    message: `Cannot compile the source: ${why}`,
    crashed: true,
  };
}

/** The bundler deploys use. */
const shared = new Bundler();

/**
 * Starts the shared bundler's thread and esbuild in it: about 1 s, all but `new Worker()` itself
 * (60–300 ms) off the main thread.
 */
export function initBundler(): Promise<void> {
  return shared.start();
}

/**
 * Bundles one TypeScript class file on the shared bundler's thread. Throws
 * {@linkcode BundleError} for user mistakes (see {@linkcode Bundler}).
 */
export function bundleSource(source: string): Promise<Bundle> {
  return shared.build(source);
}
