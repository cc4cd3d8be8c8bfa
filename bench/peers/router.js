// The entry worker the peers (workerd, miniflare) run in front of the benchmark classes: it maps
// `/_do/<name>/<id>[/…]` to `idFromName(<id>)` in the namespace bound for <name> and forwards
// the request unchanged, which is the URL contract dohost serves natively.
export { Echo } from "./echo.js";
export { Counter } from "./counter.js";
export { Kv } from "./kv.js";
export { Sql } from "./sql.js";
export { Chat } from "./chat.js";

const NAMESPACES = {
  echo: "ECHO",
  counter: "COUNTER",
  kv: "KV",
  sql: "SQL",
  chat: "CHAT",
};

export default {
  fetch(request, env) {
    const { pathname } = new URL(request.url);
    const parts = pathname.split("/");
    // ["", "_do", name, id, ...]
    const binding = parts[1] === "_do" ? NAMESPACES[parts[2]] : undefined;
    if (!binding || !parts[3]) {
      return new Response("not found", { status: 404 });
    }
    const namespace = env[binding];
    const stub = namespace.get(
      namespace.idFromName(decodeURIComponent(parts[3])),
    );
    return stub.fetch(request);
  },
};
