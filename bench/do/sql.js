// Benchmark class `sql`: `POST …/insert?n=10` inserts n rows with one exec each;
// `GET …/select?from=K` answers the 20 rows from id K on; `GET …/count` answers count(*).
import { DurableObject } from "cloudflare:workers";

export class Sql extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, label TEXT NOT NULL, n INTEGER NOT NULL)",
    );
  }

  fetch(request) {
    const url = new URL(request.url);
    const action = url.pathname.slice(url.pathname.lastIndexOf("/") + 1);
    const sql = this.ctx.storage.sql;
    if (action === "insert" && request.method === "POST") {
      const count = Math.max(1, Math.min(1000, Number(url.searchParams.get("n") ?? 10) || 10));
      for (let i = 0; i < count; i++) {
        sql.exec("INSERT INTO rows (label, n) VALUES (?, ?)", `row ${i}`, i);
      }
      return new Response(String(count));
    }
    if (action === "select") {
      const from = Number(url.searchParams.get("from") ?? 1) || 1;
      const rows = sql.exec(
        "SELECT id, label, n FROM rows WHERE id >= ? ORDER BY id LIMIT 20",
        from,
      )
        .toArray();
      return Response.json(rows);
    }
    if (action === "count") {
      return new Response(String(sql.exec("SELECT count(*) AS total FROM rows").one().total));
    }
    return new Response("unknown action", { status: 404 });
  }
}
