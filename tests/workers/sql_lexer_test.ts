import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  hasStatement,
  pragmaAssignment,
  renameTarget,
  scanSql,
  statementParameters,
  utf8Length,
} from "../../workers/sql_lexer.ts";

Deno.test("hasStatement() sees only whitespace, comments and semicolons as empty", () => {
  for (const empty of ["", " \t\r\n\f", ";", " ; ;", "-- c", "/* c */", "/* open", "-- a\n;/**/"]) {
    assert.equal(hasStatement(empty), false, JSON.stringify(empty));
  }
  for (const text of ["SELECT 1", "x", "'", "\v", "-", "/", "é", "; SELECT 1"]) {
    assert.equal(hasStatement(text), true, JSON.stringify(text));
  }
});

Deno.test("statementParameters() numbers parameters the way SQLite does", () => {
  const db = new DatabaseSync(":memory:");
  try {
    const cases: [string, number, (string | null)[]][] = [
      ["SELECT 1", 0, []],
      ["SELECT ?, ?", 2, [null, null]],
      ["SELECT ?3, ?", 4, [null, null, null, null]],
      ["SELECT :a, ?, :a, @b, $c::d, #e", 5, [":a", null, "@b", "$c::d", "#e"]],
      ["SELECT '?' AS \"?\", ? AS [?], ? AS `?` -- ?\n /* ? */", 2, [null, null]],
      ["SELECT 'it''s ?', x'3f', ?", 1, [null]],
      ["SELECT $a(b), ?", 2, ["$a(b)", null]],
    ];
    for (const [sql, count, names] of cases) {
      const params = statementParameters(sql, scanSql(sql));
      assert.equal(params.count, count, sql);
      assert.deepEqual(params.names, names, sql);
      if (names.every((name) => name === null)) {
        // SQLite agrees: exactly `count` positional values bind.
        const statement = db.prepare(sql);
        statement.all(...Array(count).fill(1));
        assert.throws(() => statement.all(...Array(count + 1).fill(1)), /out of range/);
      }
    }
  } finally {
    db.close();
  }
});

Deno.test("renameTarget() finds ALTER TABLE … RENAME TO, quoted or not", () => {
  const target = (sql: string) => renameTarget(sql, scanSql(sql));
  assert.equal(target("ALTER TABLE t RENAME TO _cf_x"), "_cf_x");
  assert.equal(target('alter table t rename to "_CF_""x"'), '_CF_"x');
  assert.equal(target("ALTER TABLE t RENAME TO [a b]"), "a b");
  assert.equal(target("ALTER TABLE t RENAME COLUMN a TO _cf_b"), null);
  assert.equal(target("SELECT 'RENAME TO _cf_x'"), null);
});

Deno.test("pragmaAssignment() names the PRAGMA a statement sets", () => {
  const pragma = (sql: string) => pragmaAssignment(sql, scanSql(sql));
  assert.equal(pragma("PRAGMA foreign_keys = OFF"), "foreign_keys");
  assert.equal(pragma("pragma main.Foreign_Keys(0)"), "foreign_keys");
  assert.equal(pragma("PRAGMA foreign_keys"), null);
  assert.equal(pragma("SELECT 1"), null);
});

Deno.test("utf8Length() counts bytes like SQLite", () => {
  assert.equal(utf8Length("abc"), 3);
  assert.equal(utf8Length("é"), 2);
  assert.equal(utf8Length("€"), 3);
  assert.equal(utf8Length("😀"), 4);
  assert.equal(utf8Length("\ud800"), 3);
});
