/** Polling with a deadline, for end-to-end tests that wait on something the server does. */

/** How often {@linkcode waitFor} polls. */
const POLL_MS = 20;

/**
 * Calls `read` until `done(value)` holds and returns that value; throws with the last value
 * once `timeoutMs` has passed. Never a fixed sleep: it returns as soon as the condition holds.
 */
export async function waitFor<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  options: { timeoutMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out waiting for ${options.what ?? "a condition"}: ${JSON.stringify(value)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
