/**
 * Small formatters shared by the views.
 */

/** `1536` → `1.5 KB`. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** An ISO time as local date and time, or `—`. */
export function dateTime(iso: string | null): string {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** An ISO time relative to now (`3 min ago`, `in 20 s`), or `—`. */
export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return "—";
  const ms = new Date(iso).getTime() - now;
  if (Number.isNaN(ms)) return iso;
  const seconds = Math.round(Math.abs(ms) / 1000);
  const text = seconds < 60
    ? `${seconds} s`
    : seconds < 3600
    ? `${Math.round(seconds / 60)} min`
    : seconds < 86400
    ? `${Math.round(seconds / 3600)} h`
    : `${Math.round(seconds / 86400)} d`;
  return ms < 0 ? `${text} ago` : `in ${text}`;
}

/** An integer with thousands separators. */
export function count(n: number): string {
  return Math.round(n).toLocaleString();
}

/** Where a deploy error points: `Syntax error at line 3, column 7: …`. */
export function errorPosition(message: string): { line: number; column: number } | null {
  const match = /line (\d+), column (\d+)/.exec(message);
  return match ? { line: Number(match[1]), column: Number(match[2]) } : null;
}
