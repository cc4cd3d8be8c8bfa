/// <reference lib="dom" />
/**
 * Hash routes of the console (`#/<app>/do/<class>/…`): the page is one document served at
 * `/_console/`, so the server needs no route per view and reloads keep the view.
 */

import { useEffect, useState } from "preact/hooks";

/** Every view the console can show. */
export type Route =
  | { view: "apps" }
  | { view: "deploy"; app: string; name: string | null }
  | { view: "env"; app: string }
  | { view: "instances"; app: string; name: string }
  | { view: "storage"; app: string; name: string; id: string }
  | { view: "logs"; app: string; name: string; instance: string | null }
  | { view: "try"; app: string; name: string; instance: string | null };

/** Parses a location hash (`#/…`). Unknown hashes show the apps. */
export function parseRoute(hash: string): Route {
  const [path = "", query = ""] = hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decode);
  const instance = new URLSearchParams(query).get("instance") || null;
  const [app, section, name, sub, id] = parts;
  if (!app) return { view: "apps" };
  if (section === "env") return { view: "env", app };
  if (section === "deploy") return { view: "deploy", app, name: name ?? null };
  if (section === "do" && name) {
    if (sub === "logs") return { view: "logs", app, name, instance };
    if (sub === "try") return { view: "try", app, name, instance };
    if (sub === "i" && id) return { view: "storage", app, name, id };
    return { view: "instances", app, name };
  }
  return { view: "apps" };
}

/** The hash of `route` (for links). */
export function href(route: Route): string {
  const e = encodeURIComponent;
  switch (route.view) {
    case "apps":
      return "#/";
    case "deploy":
      return `#/${e(route.app)}/deploy${route.name ? `/${e(route.name)}` : ""}`;
    case "env":
      return `#/${e(route.app)}/env`;
    case "instances":
      return `#/${e(route.app)}/do/${e(route.name)}`;
    case "storage":
      return `#/${e(route.app)}/do/${e(route.name)}/i/${e(route.id)}`;
    case "logs":
    case "try": {
      const query = route.instance ? `?instance=${e(route.instance)}` : "";
      return `#/${e(route.app)}/do/${e(route.name)}/${route.view}${query}`;
    }
    default: {
      const unknown: never = route;
      throw new Error(`unknown route ${JSON.stringify(unknown)}`);
    }
  }
}

/** Goes to `route`. */
export function navigate(route: Route): void {
  location.hash = href(route);
}

/** The current route, updated on every hash change. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
