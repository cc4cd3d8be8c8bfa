/**
 * Deploy-time inspection: loads a bundle in a throwaway, hardened worker to learn which
 * exports are classes and to catch modules that throw (or never finish) at top level, before
 * anything is saved. Static analysis cannot tell `export const A = class {}` from a function.
 */

import type { WireExport } from "../workers/protocol.ts";
import { BundleError } from "./bundler.ts";
import type { ThreadSpawner } from "./thread_spawner.ts";
import { WorkerHost } from "./worker_host.ts";

/** How long a module's top-level code may run at deploy time. */
const INSPECT_TIMEOUT_MS = 10_000;

/** Loads `code` in a fresh worker and lists its exports with their kinds. */
export async function inspectBundle(
  spawner: ThreadSpawner,
  code: string,
  memoryLimitMb: number,
): Promise<WireExport[]> {
  const worker = new WorkerHost({ spawner, memoryLimitMb });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await new Promise<WireExport[]>((resolve, reject) => {
      const fail = (message: string) => reject(new BundleError("MODULE_INIT_FAILED", message));
      worker.init(null, {
        onMessage(message) {
          if (message.type === "inspected") resolve(message.exports);
          if (message.type === "init-error") {
            fail(`Module failed to load: ${message.error.name}: ${message.error.message}`);
          }
        },
        onExit(error) {
          fail(`Module failed to load: ${error?.message ?? "the worker exited"}`);
        },
      });
      // Only the module's own top-level code is timed, not the worker's boot (which can be
      // slow on a loaded machine and says nothing about the user's code).
      worker.booted.then(() => {
        timer = setTimeout(
          () => fail(`Module top-level code did not finish within ${INSPECT_TIMEOUT_MS} ms`),
          INSPECT_TIMEOUT_MS,
        );
        worker.post({ type: "inspect", code });
      });
    });
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}
