// Benchmark class `counter`: POST reads `count` with an awaited get, writes it back plus one, and
// answers the new value; GET answers the current value. Concurrent POSTs stay correct only if
// the input gate keeps each get → put pair from interleaving with another request.
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  async fetch(request) {
    const current = (await this.ctx.storage.get("count")) ?? 0;
    if (request.method !== "POST") return new Response(String(current));
    const next = current + 1;
    await this.ctx.storage.put("count", next);
    return new Response(String(next));
  }
}
