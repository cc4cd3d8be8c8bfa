/**
 * Error messages for user SQL in workerd's shape: SQLite's own message, the syntax error's
 * byte offset when there is one, then the result code by name, e.g.
 * `near "bunk": syntax error at offset 9: SQLITE_ERROR` or
 * `UNIQUE constraint failed: t.a: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)`.
 */

const PRIMARY = [
  "SQLITE_OK",
  "SQLITE_ERROR",
  "SQLITE_INTERNAL",
  "SQLITE_PERM",
  "SQLITE_ABORT",
  "SQLITE_BUSY",
  "SQLITE_LOCKED",
  "SQLITE_NOMEM",
  "SQLITE_READONLY",
  "SQLITE_INTERRUPT",
  "SQLITE_IOERR",
  "SQLITE_CORRUPT",
  "SQLITE_NOTFOUND",
  "SQLITE_FULL",
  "SQLITE_CANTOPEN",
  "SQLITE_PROTOCOL",
  "SQLITE_EMPTY",
  "SQLITE_SCHEMA",
  "SQLITE_TOOBIG",
  "SQLITE_CONSTRAINT",
  "SQLITE_MISMATCH",
  "SQLITE_MISUSE",
  "SQLITE_NOLFS",
  "SQLITE_AUTH",
  "SQLITE_FORMAT",
  "SQLITE_RANGE",
  "SQLITE_NOTADB",
];

const EXTENDED = new Map<number, string>([
  [275, "SQLITE_CONSTRAINT_CHECK"],
  [531, "SQLITE_CONSTRAINT_COMMITHOOK"],
  [787, "SQLITE_CONSTRAINT_FOREIGNKEY"],
  [1043, "SQLITE_CONSTRAINT_FUNCTION"],
  [1299, "SQLITE_CONSTRAINT_NOTNULL"],
  [1555, "SQLITE_CONSTRAINT_PRIMARYKEY"],
  [1811, "SQLITE_CONSTRAINT_TRIGGER"],
  [2067, "SQLITE_CONSTRAINT_UNIQUE"],
  [2323, "SQLITE_CONSTRAINT_VTAB"],
  [2579, "SQLITE_CONSTRAINT_ROWID"],
  [3091, "SQLITE_CONSTRAINT_DATATYPE"],
  [257, "SQLITE_ERROR_MISSING_COLLSEQ"],
  [264, "SQLITE_READONLY_RECOVERY"],
  [1032, "SQLITE_READONLY_DBMOVED"],
  [516, "SQLITE_ABORT_ROLLBACK"],
]);

/** The SQLite result code of a node:sqlite error, or null for other errors. */
export function sqliteCode(error: unknown): number | null {
  if (!(error instanceof Error) || !("errcode" in error)) return null;
  return typeof error.errcode === "number" ? error.errcode : null;
}

/** Whether SQLite's message is a parse error that carries an offset in workerd. */
export function isSyntaxMessage(message: string): boolean {
  return (message.startsWith('near "') && message.endsWith('": syntax error')) ||
    message.startsWith("unrecognized token: ");
}

/** The user-facing message for a SQLite failure. */
export function formatSqliteError(message: string, code: number, offset: number): string {
  const primary = PRIMARY[code & 0xff] ?? `SQLITE_${code & 0xff}`;
  const extended = code > 0xff ? EXTENDED.get(code) : undefined;
  const at = offset >= 0 ? ` at offset ${offset}` : "";
  return `${message}${at}: ${primary}${extended ? ` (extended: ${extended})` : ""}`;
}
