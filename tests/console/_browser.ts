/**
 * Headless Chromium for the console tests, driven by playwright-core with Debian's `chromium`
 * (no browser download). playwright-core reads `/proc` paths that Deno only allows with
 * `--allow-all`, so the browser tests run under `deno task test:console`; in the plain test
 * run they are reported as ignored, with the reason in their name.
 */

import type { BrowserContext } from "playwright-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** Flags for a quiet, reproducible headless run. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why the browser tests cannot run here, or null when they can. */
export function browserSkipReason(): string | null {
  if (Deno.permissions.querySync({ name: "run" }).state !== "granted") {
    return "needs --allow-all for playwright-core; run `deno task test:console`";
  }
  if (!chromiumPath()) {
    return "no chromium found; install it with `apt-get install -y chromium` (.ci/run does)";
  }
  return null;
}

/** `CHROMIUM_PATH`, or the first Chromium found in the usual places. */
export function chromiumPath(): string | null {
  const candidates = [Deno.env.get("CHROMIUM_PATH") ?? "", ...CANDIDATES].filter(Boolean);
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not here
    }
  }
  return null;
}

/** A browser context with a fresh profile directory; dispose it to close and clean up. */
export async function openBrowser(): Promise<BrowserContext & AsyncDisposable> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error("chromium not found");
  const { chromium } = await import("playwright-core");
  const profile = await Deno.makeTempDir({ prefix: "dohost-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 860 },
  });
  return Object.assign(context, {
    async [Symbol.asyncDispose]() {
      await context.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  });
}
