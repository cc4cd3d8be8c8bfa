/**
 * A small SQLite tokenizer for what node:sqlite does not expose.
 *
 * `sql.exec()` needs three facts that workerd reads from the SQLite C API: whether any
 * statement is left in the text (node:sqlite crashes the process when asked to prepare text
 * that holds only whitespace, comments and semicolons), how many parameters a statement has
 * and which of them are named (`sqlite3_bind_parameter_count`/`_name`), and the byte offset
 * of a syntax error (`sqlite3_error_offset`). The rules below follow SQLite's own tokenizer
 * closely enough for all three: strings, quoted identifiers and comments hide their content,
 * and a variable is `?`, `?NNN` or `:name`/`@name`/`$name`/`#name`. Statement boundaries are
 * not decided here; SQLite reports those itself (the prepared statement's source text).
 */

/** Kinds of token; only the distinctions the SQL API needs. */
export type SqlTokenKind = "space" | "comment" | "semi" | "variable" | "word" | "quoted" | "other";

/** One token: its kind and its [start, end) range in UTF-16 code units. */
export interface SqlToken {
  kind: SqlTokenKind;
  start: number;
  end: number;
}

/** The parameters of one statement, as SQLite numbers them. */
export interface SqlParameters {
  /** `sqlite3_bind_parameter_count`: the largest parameter index. */
  count: number;
  /** For each index (0-based), the name when it is `:x`/`@x`/`$x`/`#x`, else null. */
  names: (string | null)[];
  /** Whether any index is named (then binding needs an object). */
  hasNamed: boolean;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

function isIdChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
    c === 0x5f || c === 0x24 || c >= 0x80;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** End of a quoted run starting at `i` (the opening quote); doubled quotes escape. */
function quotedEnd(sql: string, i: number, close: string): number {
  const doubled = close !== "]";
  let j = i + 1;
  for (;;) {
    const k = sql.indexOf(close, j);
    if (k < 0) return sql.length;
    if (doubled && sql[k + 1] === close) {
      j = k + 2;
      continue;
    }
    return k + 1;
  }
}

/** End of a `:name`-style variable starting at `i` (SQLite's TCL-flavoured rules). */
function variableEnd(sql: string, i: number): { end: number; valid: boolean } {
  let j = i + 1;
  let n = 0;
  while (j < sql.length) {
    const c = sql.charCodeAt(j);
    if (isIdChar(c)) {
      n++;
      j++;
    } else if (c === 0x28 && n > 0) {
      j++;
      while (j < sql.length && !isSpace(sql.charCodeAt(j)) && sql[j] !== ")") j++;
      if (sql[j] === ")") return { end: j + 1, valid: true };
      return { end: j, valid: false };
    } else if (c === 0x3a && sql[j + 1] === ":") {
      j += 2;
    } else {
      break;
    }
  }
  return { end: j, valid: n > 0 };
}

function tokenAt(sql: string, i: number): SqlToken {
  const c = sql.charCodeAt(i);
  const next = sql[i + 1];
  const token = (kind: SqlTokenKind, end: number): SqlToken => ({ kind, start: i, end });
  if (isSpace(c)) {
    let j = i + 1;
    while (j < sql.length && isSpace(sql.charCodeAt(j))) j++;
    return token("space", j);
  }
  switch (sql[i]) {
    case "-":
      if (next !== "-") return token("other", i + 1);
      return token("comment", sql.indexOf("\n", i) < 0 ? sql.length : sql.indexOf("\n", i));
    case "/": {
      if (next !== "*") return token("other", i + 1);
      const close = sql.indexOf("*/", i + 2);
      return token("comment", close < 0 ? sql.length : close + 2);
    }
    case ";":
      return token("semi", i + 1);
    case "'":
      return token("quoted", quotedEnd(sql, i, "'"));
    case '"':
      return token("quoted", quotedEnd(sql, i, '"'));
    case "`":
      return token("quoted", quotedEnd(sql, i, "`"));
    case "[":
      return token("quoted", quotedEnd(sql, i, "]"));
    case "?": {
      let j = i + 1;
      while (j < sql.length && isDigit(sql.charCodeAt(j))) j++;
      return token("variable", j);
    }
    case ":":
    case "@":
    case "$":
    case "#": {
      const { end, valid } = variableEnd(sql, i);
      return token(valid ? "variable" : "other", end);
    }
  }
  const numeric = isDigit(c) || (c === 0x2e && isDigit(sql.charCodeAt(i + 1)));
  if (numeric || isIdChar(c)) {
    let j = i + 1;
    while (j < sql.length && (isIdChar(sql.charCodeAt(j)) || (numeric && sql[j] === "."))) j++;
    return token("word", j);
  }
  return token("other", i + 1);
}

/** Splits SQL text into tokens (never fails; malformed input just makes odd tokens). */
export function scanSql(sql: string): SqlToken[] {
  const tokens: SqlToken[] = [];
  let i = 0;
  while (i < sql.length) {
    const token = tokenAt(sql, i);
    tokens.push(token);
    i = token.end;
  }
  return tokens;
}

/** Whether the token is part of a statement (not whitespace, a comment or a bare `;`). */
export function isStatementToken(token: SqlToken): boolean {
  return token.kind !== "space" && token.kind !== "comment" && token.kind !== "semi";
}

/** Whether SQLite would find a statement in the text (it returns none for trivia only). */
export function hasStatement(sql: string): boolean {
  let i = 0;
  while (i < sql.length) {
    const token = tokenAt(sql, i);
    if (isStatementToken(token)) return true;
    i = token.end;
  }
  return false;
}

/** Numbers the parameters of one statement the way SQLite does. */
export function statementParameters(sql: string, tokens: SqlToken[]): SqlParameters {
  let count = 0;
  const names: (string | null)[] = [];
  const byName = new Map<string, number>();
  for (const token of tokens) {
    if (token.kind !== "variable") continue;
    const text = sql.slice(token.start, token.end);
    if (text[0] === "?") {
      const index = text.length > 1 ? Number(text.slice(1)) : count + 1;
      count = Math.max(count, index);
      continue;
    }
    if (byName.has(text)) continue;
    count++;
    byName.set(text, count);
    names[count - 1] = text;
  }
  const result: (string | null)[] = [];
  for (let i = 0; i < count; i++) result.push(names[i] ?? null);
  return { count, names: result, hasNamed: byName.size > 0 };
}

/** The unquoted text of an identifier token. */
export function identifierText(sql: string, token: SqlToken): string {
  const text = sql.slice(token.start, token.end);
  if (token.kind !== "quoted") return text;
  const open = text[0];
  const close = open === "[" ? "]" : open ?? "";
  const inner = text.slice(1, text.endsWith(close) ? -1 : undefined);
  return open === "[" ? inner : inner.replaceAll(close + close, close);
}

/** The target of `ALTER TABLE … RENAME TO name`, which SQLite's authorizer never sees. */
export function renameTarget(sql: string, tokens: SqlToken[]): string | null {
  const words = tokens.filter(isStatementToken);
  const first = words[0];
  if (!first || sql.slice(first.start, first.end).toUpperCase() !== "ALTER") return null;
  for (let i = 0; i + 2 < words.length; i++) {
    const [rename, to, name] = [words[i], words[i + 1], words[i + 2]];
    if (!rename || !to || !name) break;
    if (
      sql.slice(rename.start, rename.end).toUpperCase() === "RENAME" &&
      sql.slice(to.start, to.end).toUpperCase() === "TO"
    ) {
      return identifierText(sql, name);
    }
  }
  return null;
}

/**
 * The PRAGMA a statement sets (`PRAGMA [schema.]name = value` or `name(value)`), lower-cased,
 * or null. SQLite applies flag PRAGMAs while compiling them, so some must be seen beforehand.
 */
export function pragmaAssignment(sql: string, tokens: SqlToken[]): string | null {
  const words = tokens.filter(isStatementToken).slice(0, 5).map((t) => identifierText(sql, t));
  if (words[0]?.toUpperCase() !== "PRAGMA") return null;
  const rest = words[2] === "." ? words.slice(3) : words.slice(1);
  const [name, operator] = rest;
  return name !== undefined && (operator === "=" || operator === "(") ? name.toLowerCase() : null;
}

/** UTF-8 length of `text` (SQLite reports error offsets in bytes). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}
