/**
 * Headless Chromium for the console tests, driven by playwright-core with Debian's `chromium`
 * (no browser download). playwright-core reads `/proc` paths that Deno only allows with
 * `--allow-all`, so the browser tests run under `deno task test:console`; in the plain test
 * run they are reported as ignored, with the reason in their name. That task also leaves out
 * `--disallow-code-generation-from-strings`: playwright-core compiles its own helpers with it,
 * and the browser tests do not exercise the object sandbox.
 */

import type { Page } from "playwright-core";

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
  const names = ["run", "sys", "ffi", "env", "net", "read", "write"] as const;
  if (names.some((name) => Deno.permissions.querySync({ name }).state !== "granted")) {
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

/** A page of a freshly started browser; dispose it to close the browser. */
export interface BrowserPage extends AsyncDisposable {
  page: Page;
}

/**
 * Starts Chromium and opens a page. playwright-core gives each launch a fresh, temporary
 * `--user-data-dir` (and removes it on close), so no profile state leaks between tests.
 */
export async function openBrowser(): Promise<BrowserPage> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error("chromium not found");
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath, headless: true, args: FLAGS });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    return { page, [Symbol.asyncDispose]: () => browser.close() };
  } catch (error) {
    await browser.close();
    throw error;
  }
}
