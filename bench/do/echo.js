// Benchmark class `echo`: answers "ok" and touches no storage, so it measures only the cost of
// routing a request into an instance and its answer back out.
import { DurableObject } from "cloudflare:workers";

export class Echo extends DurableObject {
  fetch() {
    return new Response("ok");
  }
}
