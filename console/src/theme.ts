/// <reference lib="dom" />
/**
 * Light, dark or the system's choice. The choice is not a secret, so it is kept in
 * `localStorage` and applied as `data-theme` on the root element (the CSS reads it).
 */

/** The theme choices, in the order the toggle cycles through them. */
export const THEMES = ["auto", "light", "dark"] as const;

/** One of {@linkcode THEMES}. */
export type Theme = typeof THEMES[number];

const KEY = "dohost.theme";

/** The saved theme. */
export function loadTheme(): Theme {
  try {
    const saved = localStorage.getItem(KEY);
    return THEMES.find((theme) => theme === saved) ?? "auto";
  } catch {
    return "auto";
  }
}

/** Applies and saves `theme`. */
export function applyTheme(theme: Theme): void {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  try {
    localStorage.setItem(KEY, theme);
  } catch {
    // not saved: applies to this page only
  }
}
