/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * Entry point of the console bundle: applies the saved theme and renders the app.
 */

import { render } from "preact";
import { App } from "./app.tsx";
import { applyTheme, loadTheme } from "./theme.ts";

applyTheme(loadTheme());
const root = document.getElementById("root");
if (root) render(<App />, root);
