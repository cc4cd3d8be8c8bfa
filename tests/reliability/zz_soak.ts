import { runSoak } from "./soak_harness.ts";
const dir = await Deno.makeTempDir();
const r = await runSoak({
  dataDir: dir,
  seed: 1,
  durationMs: 15000,
  instances: 200,
  httpLoops: 6,
  sockets: 30,
  controlEveryMs: Number(Deno.env.get("SOAK_CTRL") ?? "3000"),
  maxInstances: 100,
  onProgress: (l) => console.log(l),
});
console.log(JSON.stringify(r, null, 1));
await Deno.remove(dir, { recursive: true });
