import { runCrashCycles } from "./crash_harness.ts";
const dir = await Deno.makeTempDir();
const t = Date.now();
const r = await runCrashCycles({
  cycles: 5,
  seed: 42,
  dataDir: dir,
  onProgress: (l) => console.log(Date.now() - t, l),
});
console.log({ ...r, problems: r.problems.slice(0, 10) });
