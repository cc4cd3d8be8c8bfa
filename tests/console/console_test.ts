/**
 * The web console end to end, in headless Chromium: sign in, deploy a class with a syntax
 * error and see where it is, fix it, call an instance from "try it" (HTTP and WebSocket), read
 * its KV value, run SQL, watch a log line arrive, purge it.
 *
 * With `DOHOST_CONSOLE_SCREENSHOTS=docs/console` the test also saves screenshots of the main
 * views there (the ones the README shows).
 */

import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { fixture, startServer } from "../_helpers.ts";
import { browserSkipReason, openBrowser } from "./_browser.ts";

const skip = browserSkipReason();
const shots = Deno.env.get("DOHOST_CONSOLE_SCREENSHOTS") ?? null;

async function shot(page: Page, name: string): Promise<void> {
  if (!shots) return;
  await Deno.mkdir(shots, { recursive: true });
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

Deno.test({
  name: `console: an operator deploys, inspects, follows logs and purges in the browser${
    skip ? ` (skipped: ${skip})` : ""
  }`,
  ignore: skip !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await startServer();
    await using browser = await openBrowser();
    const { page } = browser;
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    const source = await fixture("console_notes_do.ts");

    // Sign in: a wrong token is refused, the admin token is kept for the tab.
    await page.goto(`${server.url}/_console/`);
    await shot(page, "sign-in");
    const tokenField = page.getByLabel("Admin token or service key");
    await tokenField.fill("wrong-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "Sign-in failed" }).waitFor();
    await tokenField.fill(server.adminToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Apps and classes" }).waitFor();

    // A deploy with a syntax error names the line; the class is saved as ERROR.
    await page.getByRole("link", { name: "Deploy a class" }).first().click();
    await page.getByRole("heading", { name: "Deploy a class" }).waitFor();
    await page.getByLabel("Name", { exact: true }).fill("notes");
    await page.getByLabel("Access mode").selectOption("public");
    const broken = source.replace("const text = await request.text();", "const text = await (;");
    const brokenLine = broken.split("\n").findIndex((line) => line.includes("await (;")) + 1;
    await page.getByLabel(/^Source/).fill(broken);
    await page.getByRole("button", { name: "Deploy", exact: true }).click();
    const failure = page.getByRole("alert").filter({ hasText: "Deploy failed" });
    await failure.waitFor();
    assert.match(await failure.innerText(), new RegExp(`line ${brokenLine}, column \\d+`));
    assert.match(await failure.innerText(), /SYNTAX_ERROR/);
    const where = page.getByRole("region", { name: "Where the error is" });
    assert.match(await where.innerText(), new RegExp(`> +${brokenLine} \\| .*await \\(;`));
    await page.getByRole("button", { name: "Go to line" }).click();
    await shot(page, "deploy-error");
    await page.getByRole("link", { name: "Apps" }).click();
    const row = page.getByRole("row").filter({ hasText: "notes" });
    await row.getByText("ERROR", { exact: true }).waitFor();
    assert.match(await row.innerText(), new RegExp(`line ${brokenLine}`));

    // Fixed and redeployed: READY.
    await page.getByRole("link", { name: "notes" }).click();
    await page.getByRole("link", { name: "Redeploy" }).click();
    const editor = page.getByLabel(/^Source/);
    for (let i = 0; (await editor.inputValue()) === ""; i++) {
      assert.ok(i < 100, "the redeploy form never loaded the class's code");
      await page.waitForTimeout(50);
    }
    await editor.fill(source);
    await page.getByRole("button", { name: "Redeploy", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "READY" }).waitFor();
    await page.getByRole("link", { name: "Open the class" }).click();
    await shot(page, "class");

    // "Try it": an HTTP request through the console relay, then a WebSocket echo.
    await page.getByRole("link", { name: "Try it" }).click();
    await page.getByLabel("Instance name or id").fill("lobby");
    await page.getByLabel("Method").selectOption("POST");
    await page.getByLabel("Body").fill("first note");
    await page.getByRole("button", { name: "Send request" }).click();
    const exchange = page.getByRole("region", { name: "Exchange" });
    await exchange.getByText("200").first().waitFor();
    assert.match(await exchange.innerText(), /"stored":"first note"/);
    await page.getByRole("button", { name: "Connect" }).click();
    const frames = page.getByRole("log", { name: "WebSocket messages" });
    await frames.getByText("open", { exact: true }).waitFor();
    await page.getByLabel("Message", { exact: true }).fill("hi");
    await page.getByRole("button", { name: "Send", exact: true }).click();
    await frames.getByText("echo:hi").waitFor();
    await shot(page, "try-it");
    await page.getByRole("button", { name: "Close" }).click();
    await frames.getByText(/^closed 1000/).waitFor();

    // The instance list shows it; its storage page reads KV and runs read-only SQL.
    await page.getByRole("link", { name: "Instances" }).click();
    const instance = page.getByRole("row").filter({ hasText: "lobby" });
    await instance.waitFor();
    await page.getByLabel("Filter").fill("no-such-instance");
    await page.getByText("No instances.").waitFor();
    await page.getByLabel("Filter").fill("lob");
    await instance.waitFor();
    assert.match(await instance.innerText(), /live|hibernated|stopped/);
    await shot(page, "instances");
    await instance.getByRole("link", { name: "lobby" }).click();
    const kv = page.getByRole("row").filter({ hasText: "last" });
    await kv.waitFor();
    assert.match(await kv.innerText(), /"text": "first note"/);
    await page.getByLabel("Query", { exact: true }).fill("SELECT id, text FROM notes");
    await page.getByRole("button", { name: "Run query" }).click();
    const result = page.getByRole("region", { name: "Query result" });
    await result.getByRole("cell", { name: "first note" }).waitFor();
    await page.getByLabel("Query", { exact: true }).fill("DELETE FROM notes");
    await page.getByRole("button", { name: "Run query" }).click();
    await page.getByRole("alert").filter({ hasText: "Query failed" }).waitFor();
    await page.getByLabel("Query", { exact: true }).fill("SELECT id, text FROM notes");
    await page.getByRole("button", { name: "Run query" }).click();
    await result.getByRole("cell", { name: "first note" }).waitFor();
    await shot(page, "storage");

    // Logs: a request made while the view is open shows up in the stream.
    await page.getByRole("link", { name: "Logs" }).first().click();
    await page.getByText("Stream: following").waitFor();
    const marker = `note-${crypto.randomUUID().slice(0, 8)}`;
    const response = await server.fetch("/_do/notes/lobby", { method: "POST", body: marker });
    assert.equal(response.status, 200);
    await response.body?.cancel();
    await page.getByRole("log", { name: /Log lines/ }).getByText(`stored note: ${marker}`)
      .waitFor();
    // The chart samples usage every 5 s: the request shows up as a bar.
    await page.getByRole("img", { name: /^[1-9]\d* requests in the last/ }).waitFor();
    await shot(page, "logs");

    // Export downloads the instance's SQLite file.
    await page.getByRole("link", { name: "Instances" }).click();
    const download = page.waitForEvent("download");
    await page.getByRole("button", { name: "Export lobby" }).click();
    const file = await (await download).path();
    const header = (await Deno.readFile(file)).subarray(0, 15);
    assert.equal(new TextDecoder().decode(header), "SQLite format 3");

    // Purge: the dialog says what goes; afterwards the instance and its storage are gone.
    await page.getByRole("button", { name: "Purge lobby" }).click();
    const dialog = page.getByRole("dialog");
    assert.match(await dialog.innerText(), /deletes its storage/);
    await dialog.getByRole("button", { name: "Purge instance" }).click();
    await page.getByText("No instances.").waitFor();
    const after = await server.api(
      "GET",
      "/v1/app_default/durable-objects/notes/instances/lobby/storage",
    );
    assert.deepEqual((await after.json()).items, []);

    // The apps view in dark mode and on a phone-sized screen (screenshots only).
    if (shots) {
      await page.getByRole("link", { name: "dohost console" }).click();
      await page.getByRole("heading", { name: "Apps and classes" }).waitFor();
      await shot(page, "apps");
      await page.emulateMedia({ colorScheme: "dark" });
      await page.setViewportSize({ width: 390, height: 844 });
      await shot(page, "apps-phone-dark");
    }
    assert.deepEqual(pageErrors, []);
  },
});

Deno.test({
  name: `console: a service key sees only its app and tries an instance on the app's host${
    skip ? ` (skipped: ${skip})` : ""
  }`,
  ignore: skip !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await startServer();
    const created = await (await server.api("POST", "/v1/apps", { name: "demo" })).json();
    const deployed = await server.api("POST", `/v1/${created.app_id}/durable-objects`, {
      name: "notes",
      code: await fixture("console_notes_do.ts"),
      access_mode: "service_key",
    }, created.service_key);
    assert.equal((await deployed.json()).status, "READY");
    await using browser = await openBrowser();
    const { page } = browser;

    await page.goto(`${server.url}/_console/`);
    await page.getByLabel("Admin token or service key").fill(created.service_key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Apps and classes" }).waitFor();
    await page.getByRole("heading", { name: /^demo/ }).waitFor();
    assert.equal(await page.getByRole("heading", { name: /^default/ }).count(), 0);
    assert.equal(await page.getByRole("heading", { name: "Create an app" }).count(), 0);

    // HTTP goes through the relay to demo's data plane, with the object's own Authorization.
    await page.goto(`${server.url}/_console/#/${created.app_id}/do/notes/try?instance=room`);
    await page.getByLabel("Method").selectOption("POST");
    await page.getByLabel("Headers").fill(`Authorization: Bearer ${created.service_key}`);
    await page.getByLabel("Body").fill("from the relay");
    await page.getByRole("button", { name: "Send request" }).click();
    const exchange = page.getByRole("region", { name: "Exchange" });
    await exchange.getByText("200").first().waitFor();
    assert.match(await exchange.innerText(), /"stored":"from the relay"/);

    // The WebSocket goes straight to <subdomain>.localhost, with the token in the query.
    const address = await page.getByLabel("Address").inputValue();
    const port = new URL(server.url).port;
    assert.equal(address, `ws://${created.subdomain}.localhost:${port}/_do/notes/room`);
    await page.getByRole("button", { name: "Connect" }).click();
    const frames = page.getByRole("log", { name: "WebSocket messages" });
    await frames.getByText(/^closed/).or(frames.getByText("open", { exact: true })).waitFor();
    assert.match(await frames.innerText(), /closed 1006|closed 4\d\d\d|error/);
    await page.getByLabel(/^Token/).fill(created.service_key);
    await page.getByRole("button", { name: /Connect|Reconnect/ }).click();
    await frames.getByText("open", { exact: true }).waitFor();
    await page.getByLabel("Message", { exact: true }).fill("hello");
    await page.getByRole("button", { name: "Send", exact: true }).click();
    await frames.getByText("echo:hello").waitFor();

    // Env vars: set one (the value is never shown back), then delete it.
    await page.goto(`${server.url}/_console/#/${created.app_id}/env`);
    await page.getByText("stops every live instance of this app").waitFor();
    await page.getByLabel("Key", { exact: true }).fill("GREETING");
    await page.getByLabel("Value", { exact: true }).fill("secret-value");
    await page.getByRole("button", { name: "Set and restart instances" }).click();
    const keys = page.getByRole("list", { name: "Env var keys" });
    await keys.getByText("GREETING", { exact: true }).first().waitFor();
    assert.equal(await page.getByText("secret-value").count(), 0);
    await keys.getByRole("button", { name: "Delete GREETING" }).click();
    await page.getByRole("dialog").getByRole("button", { name: /^Delete/ }).click();
    await page.getByText("No env vars.").waitFor();

    // Deleting the class says what is purged first.
    await page.goto(`${server.url}/_console/#/${created.app_id}/do/notes`);
    await page.getByRole("button", { name: "Delete class" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText(/purges 1 instance and all their storage/).waitFor();
    await dialog.getByRole("button", { name: "Delete class and purge storage" }).click();
    await page.getByRole("heading", { name: "Apps and classes" }).waitFor();
    await page.getByText("No classes yet.").waitFor();

    // Sign out forgets the key.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.reload();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
  },
});
