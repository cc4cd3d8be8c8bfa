import assert from "node:assert/strict";
import { buildConsole, GENERATED_PATH, renderModule } from "../console/build.ts";

Deno.test("the committed console bundle is what console/ builds to", async () => {
  const built = await renderModule(await buildConsole());
  const committed = await Deno.readTextFile(GENERATED_PATH);
  assert.ok(
    built === committed,
    "src/console_assets.gen.ts is stale: run `deno task console:build` and commit it",
  );
});

Deno.test("the console bundle stays under 150 KB gzipped", async () => {
  const { js, css, html } = await buildConsole();
  const gzipped = await new Response(
    new Blob([html, js, css]).stream().pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer();
  assert.ok(gzipped.byteLength < 150 * 1024, `${gzipped.byteLength} bytes gzipped`);
});
