import { DurableObject } from "cloudflare:workers";

const LIMIT = 100;
const WINDOW_MS = 60_000;

/**
 * A sliding-window rate limiter: one instance per user (/_do/rate-limiter/<user-id>).
 * Answers 429 once 100 requests fall inside 60 seconds.
 */
export class RateLimiter extends DurableObject {
  async fetch(_request: Request): Promise<Response> {
    const now = Date.now();
    const recent = ((await this.ctx.storage.get<number[]>("hits")) ?? [])
      .filter((time) => now - time < WINDOW_MS);
    if (recent.length >= LIMIT) {
      await this.ctx.storage.put("hits", recent);
      return new Response("rate limit", { status: 429 });
    }
    recent.push(now);
    await this.ctx.storage.put("hits", recent);
    return Response.json({ ok: true, remaining: LIMIT - recent.length });
  }
}
