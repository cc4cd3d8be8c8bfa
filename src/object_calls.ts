/**
 * Calls between objects: what an `env.<BINDING>` stub sends (`stub.fetch()`, RPC) is routed
 * here, on the host, to the target instance, which is started if needed.
 *
 * These calls come from object code of the same app, so they skip the data plane's access
 * check, like a Worker calling its own namespace on Cloudflare. Each call carries its depth
 * in the chain of calls; past {@linkcode MAX_CALL_DEPTH} it fails with Cloudflare's "Subrequest
 * depth limit exceeded" error, so an A → B → A loop ends instead of running forever. A call
 * counts as one request of the target class in the usage meter.
 */

import {
  isObjectIdOf,
  MAX_CALL_DEPTH,
  objectIdFromName,
  type WireCall,
  type WireCallResult,
  type WireError,
} from "../workers/protocol.ts";
import { type Instance, InstanceError, type InstanceManager } from "./instances.ts";
import type { Logger } from "./log.ts";
import type { Registry } from "./registry.ts";
import type { UsageMeter } from "./usage.ts";

const DEPTH_EXCEEDED = "Subrequest depth limit exceeded. This request recursed through Workers " +
  "too many times. This can happen e.g. if you have a Worker or Durable Object that calls " +
  "other Workers or objects recursively.";

/** What call routing needs. */
export interface ObjectCallsOptions {
  registry: Registry;
  instances: InstanceManager;
  usage: UsageMeter;
  logger: Logger;
}

/** Routes object-to-object calls and posts their results back to the caller. */
export class ObjectCalls {
  readonly #options: ObjectCallsOptions;

  constructor(options: ObjectCallsOptions) {
    this.#options = options;
  }

  /** Handles call `callId` of `caller`; the result is posted to the caller's worker. */
  call(caller: Instance, callId: number, call: WireCall): void {
    this.#route(caller, call).then(({ result, transfer }) => {
      caller.host.post({ type: "call-result", callId, result }, transfer);
    });
  }

  async #route(
    caller: Instance,
    call: WireCall,
  ): Promise<{ result: WireCallResult; transfer: Transferable[] }> {
    const { registry, instances, usage } = this.#options;
    if (call.depth > MAX_CALL_DEPTH) {
      return failed({ name: "Error", code: "CALL_DEPTH_EXCEEDED", message: DEPTH_EXCEEDED });
    }
    const { app } = caller.target;
    const { className, idHex } = call.target;
    const record = registry.ready(app.appId, className);
    if (!record) {
      return failed({
        name: "Error",
        code: "CLASS_NOT_FOUND",
        message: `Durable Object class "${className}" is not deployed`,
      });
    }
    const namespace = `${app.appId}/${record.name}`;
    if (!isObjectIdOf(namespace, idHex)) {
      return failed({
        name: "TypeError",
        code: "INVALID_ID",
        message: "Durable Object ID is not valid for this namespace.",
      });
    }
    const claimed = call.target.name;
    const name = claimed !== null && objectIdFromName(namespace, claimed) === idHex
      ? claimed
      : null;
    const target = { app, record, idHex, name };
    usage.countRequest(app.appId, record.name);
    try {
      if (call.kind === "fetch") {
        const answer = await instances.request(
          target,
          { type: "fetch", req: call.req, depth: call.depth },
          call.req.body ? [call.req.body] : [],
        );
        if (answer.type === "response") {
          return { result: { ok: true, res: answer.res }, transfer: bodyOf(answer.res.body) };
        }
      } else {
        const answer = await instances.request(target, {
          type: "rpc",
          method: call.method,
          args: call.args,
          depth: call.depth,
        });
        if (answer.type === "rpc-result") {
          return { result: { ok: true, value: answer.value }, transfer: [] };
        }
      }
      return failed({ name: "Error", code: "INTERNAL", message: "Unexpected answer to a call" });
    } catch (error) {
      if (error instanceof InstanceError) return failed(error.wire);
      this.#options.logger.log("error", `Object call failed: ${String(error)}`, {
        app: app.appId,
        class: record.name,
      });
      return failed({ name: "Error", code: "INTERNAL", message: "internal error" });
    }
  }
}

function failed(error: WireError): { result: WireCallResult; transfer: Transferable[] } {
  return { result: { ok: false, error }, transfer: [] };
}

function bodyOf(body: ArrayBuffer | null): Transferable[] {
  return body ? [body] : [];
}
