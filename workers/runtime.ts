/**
 * What user code gets from `import … from "cloudflare:workers"`.
 *
 * The deploy bundler resolves `cloudflare:workers` to a tiny virtual module that reads these
 * exports from `globalThis.__CF`, which the worker bootstrap sets before the class is loaded,
 * so every class shares one `DurableObject` identity (needed for `instanceof` and RPC).
 */

/** Base class of Durable Objects: keeps `ctx` and `env` as own properties. */
export class DurableObject {
  readonly ctx: unknown;
  readonly env: unknown;
  constructor(ctx: unknown, env: unknown) {
    this.ctx = ctx;
    this.env = env;
  }
}

/** Marker base class for objects passed by reference over RPC. */
export class RpcTarget {}

/** Base class of stateless entrypoints; accepted so shared code type-checks and loads. */
export class WorkerEntrypoint {
  readonly ctx: unknown;
  readonly env: unknown;
  constructor(ctx: unknown, env: unknown) {
    this.ctx = ctx;
    this.env = env;
  }
}

/** The exports object placed on `globalThis.__CF`. */
export interface CloudflareWorkersModule {
  DurableObject: typeof DurableObject;
  RpcTarget: typeof RpcTarget;
  WorkerEntrypoint: typeof WorkerEntrypoint;
  env: Record<string, unknown>;
  waitUntil(promise: Promise<unknown>): void;
}
