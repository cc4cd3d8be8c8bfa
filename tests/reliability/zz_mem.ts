import { spawnServer } from "./_child_server.ts";
import { fixture } from "../_helpers.ts";
import { resources } from "./soak_harness.ts";
const dir = await Deno.makeTempDir();
const s = await spawnServer({ dataDir: dir, flags: ["--idle-timeout", "1"] });
await s.deploy("echo", await fixture("echo_do.ts"));
console.log("start", JSON.stringify(resources(s.pid)));
for (let round = 0; round < 6; round++) {
  const t = Date.now();
  for (let b = 0; b < 4; b++) {
    await Promise.all(Array.from({ length: 5 }, async (_, i) => {
      const r = await s.fetch(`/_do/echo/r${round}-${b}-${i}`);
      await r.body?.cancel();
    }));
  }
  const busy = resources(s.pid);
  const t2 = Date.now();
  while ((resources(s.pid).threads ?? 0) > 12 && Date.now() - t2 < 20000) {
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(
    "round",
    round,
    "20 instances in",
    t2 - t,
    "ms; busy",
    JSON.stringify(busy),
    "idle",
    JSON.stringify(resources(s.pid)),
  );
}
await s.kill("SIGTERM");
await Deno.remove(dir, { recursive: true });
