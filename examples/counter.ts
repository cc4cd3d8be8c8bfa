import { DurableObject } from "cloudflare:workers";

/**
 * A counter per instance id: POST increments, GET reads.
 * Deploy as `counter`, then call /_do/counter/<any-id>.
 */
export class Counter extends DurableObject {
  async fetch(request: Request): Promise<Response> {
    let value = (await this.ctx.storage.get<number>("value")) ?? 0;
    if (request.method === "POST") {
      value += 1;
      await this.ctx.storage.put("value", value);
    }
    return Response.json({ id: this.ctx.id.name, value });
  }
}
