// Benchmark class `kv`: `POST …/put?n=100` stores n small records with ONE multi-key put;
// `GET …/list` answers list({ limit: 100 }) as a JSON object. Paths are matched by their last
// segment so the class works whether it sees the full URL or only the remainder.
import { DurableObject } from "cloudflare:workers";

export class Kv extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    const action = url.pathname.slice(url.pathname.lastIndexOf("/") + 1);
    if (action === "put" && request.method === "POST") {
      const count = Math.max(1, Math.min(128, Number(url.searchParams.get("n") ?? 100) || 100));
      const now = Date.now();
      const batch = {};
      for (let i = 0; i < count; i++) {
        batch[`key-${String(i).padStart(3, "0")}`] = { index: i, at: now, note: "benchmark row" };
      }
      await this.ctx.storage.put(batch);
      return new Response(String(count));
    }
    if (action === "list") {
      const entries = await this.ctx.storage.list({ limit: 100 });
      return Response.json(Object.fromEntries(entries));
    }
    return new Response("unknown action", { status: 404 });
  }
}
