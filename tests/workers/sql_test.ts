import assert from "node:assert/strict";
import { InstanceDb } from "../../workers/instance_db.ts";
import { SqlStorage } from "../../workers/sql.ts";

interface SqlFixture extends AsyncDisposable {
  db: InstanceDb;
  sql: SqlStorage;
}

/** A SqlStorage over a fresh in-memory InstanceDb; dispose lets the commit timer run. */
function openSql(): SqlFixture {
  const fatal: unknown[] = [];
  const db = new InstanceDb(":memory:", { onFatal: (error) => fatal.push(error) });
  return {
    db,
    sql: new SqlStorage(db),
    async [Symbol.asyncDispose]() {
      await new Promise((resolve) => setTimeout(resolve, 0));
      db.close();
      if (fatal.length > 0) throw fatal[0];
    },
  };
}

const TRANSACTION_HINT =
  /please use the state\.storage\.transaction\(\) or state\.storage\.transactionSync\(\) APIs/;

Deno.test("sql.exec() returns scalars, raw rows and blobs as ArrayBuffer", async () => {
  await using t = openSql();
  assert.deepEqual(t.sql.exec("SELECT 123").toArray(), [{ "123": 123 }]);
  assert.deepEqual([...t.sql.exec("SELECT 123").raw()], [[123]]);
  assert.deepEqual(t.sql.exec("SELECT 'hello'").toArray(), [{ "'hello'": "hello" }]);
  const blob = t.sql.exec("SELECT x'ff' AS blob").one().blob;
  assert.ok(blob instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(blob)], [255]);
});

Deno.test("sql.exec() binds parameters and checks their number", async () => {
  await using t = openSql();
  assert.deepEqual(t.sql.exec("SELECT ?", 456).one(), { "?": 456 });
  assert.deepEqual(t.sql.exec("SELECT ? + ?", 123, 456).one(), { "? + ?": 579 });
  assert.throws(() => t.sql.exec("SELECT ?"), /^Error: Wrong number of parameter bindings/);
  assert.throws(() => t.sql.exec("SELECT ?", 1, 2), /Wrong number of parameter bindings/);
  assert.deepEqual(t.sql.exec("SELECT ?2 AS a, ?1 AS b", "x", "y").one(), { a: "y", b: "x" });
  assert.deepEqual(
    t.sql.exec("SELECT :a AS a, ? AS b, :a AS c, @d AS d", 1, 2, 3).one(),
    { a: 1, b: 2, c: 1, d: 3 },
  );
  assert.deepEqual(t.sql.exec("SELECT ?3 AS a, ? AS b", 1, 2, 3, 4).one(), { a: 3, b: 4 });
  assert.deepEqual(t.sql.exec("SELECT '?' AS q, ? AS v -- ?\n", 7).one(), { q: "?", v: 7 });
});

Deno.test("sql.exec() converts bindings like workerd's binding union", async () => {
  await using t = openSql();
  const row = t.sql.exec(
    "SELECT ? AS t, ? AS f, ? AS u, ? AS o, typeof(?) AS n",
    true,
    false,
    undefined,
    { toString: () => "obj" },
    5,
  ).one();
  assert.deepEqual(row, { t: 1, f: 0, u: null, o: "obj", n: "real" });
  assert.throws(() => t.sql.exec("SELECT ?", 1n), TypeError);
  const buffer = new Uint8Array([1, 2, 3, 4]).buffer;
  const blobs = t.sql.exec(
    "SELECT ? AS a, ? AS b",
    buffer,
    new DataView(buffer, 1, 2),
  ).one();
  assert.deepEqual([...new Uint8Array(blobs.a as ArrayBuffer)], [1, 2, 3, 4]);
  assert.deepEqual([...new Uint8Array(blobs.b as ArrayBuffer)], [2, 3]);
});

Deno.test("sql.exec() stores blob and null bindings", async () => {
  await using t = openSql();
  t.sql.exec("CREATE TABLE test_blob (id INTEGER PRIMARY KEY, data BLOB)");
  t.sql.exec(
    "INSERT INTO test_blob(data) VALUES (?), (ZEROBLOB(10)), (null), (?)",
    new Uint8Array(12),
    null,
  );
  const values = t.sql.exec("SELECT data FROM test_blob ORDER BY id").toArray().map((r) => r.data);
  assert.ok(values[0] instanceof ArrayBuffer && values[0].byteLength === 12);
  assert.ok(values[1] instanceof ArrayBuffer && values[1].byteLength === 10);
  assert.deepEqual(values.slice(2), [null, null]);
});

Deno.test("cursor.next() ends with {done: true} and no value key", async () => {
  await using t = openSql();
  t.sql.exec("CREATE TABLE abc (col)");
  t.sql.exec("INSERT INTO abc VALUES (1), ('foo'), (3)");
  const cursor = t.sql.exec("SELECT col FROM abc ORDER BY rowid");
  assert.deepEqual(cursor.next(), { done: false, value: { col: 1 } });
  assert.deepEqual(cursor.next(), { done: false, value: { col: "foo" } });
  assert.deepEqual(cursor.next(), { done: false, value: { col: 3 } });
  const end = cursor.next();
  assert.equal(end.done, true);
  assert.equal("value" in end, false);
});

Deno.test("cursor.one() needs exactly one row and consumes the cursor", async () => {
  await using t = openSql();
  const cursor = t.sql.exec('SELECT 123 AS foo, "abc" AS bar');
  assert.deepEqual(cursor.one(), { foo: 123, bar: "abc" });
  assert.deepEqual([...cursor], []);
  t.sql.exec("CREATE TABLE two (x)");
  t.sql.exec("INSERT INTO two VALUES (1), (2)");
  const many = t.sql.exec("SELECT * FROM two");
  assert.throws(() => many.one(), /but got multiple results\.$/);
  assert.deepEqual(many.toArray(), []);
  assert.throws(
    () => t.sql.exec("SELECT * FROM two WHERE x > 5").one(),
    /^Error: Expected exactly one result from SQL query, but got no results\.$/,
  );
});

Deno.test("duplicate column names collapse in row objects but not in raw rows", async () => {
  await using t = openSql();
  t.sql.exec("CREATE TABLE abc (a, b, c); CREATE TABLE cde (c, d, e)");
  t.sql.exec("INSERT INTO abc VALUES (1, 2, 3), (4, 5, 6)");
  t.sql.exec("INSERT INTO cde VALUES (7, 8, 9), (1, 2, 3)");
  const query = "SELECT * FROM abc, cde ORDER BY abc.a, cde.c DESC";
  const cursor = t.sql.exec(query);
  const rows = cursor.toArray();
  assert.deepEqual(rows.map((row) => Object.keys(row).length), [5, 5, 5, 5]);
  assert.deepEqual(rows.map((row) => row.c), [7, 1, 7, 1]);
  assert.deepEqual(cursor.columnNames, ["a", "b", "c", "c", "d", "e"]);
  assert.deepEqual(t.sql.exec(query).raw().toArray()[0], [1, 2, 3, 7, 8, 9]);
  assert.deepEqual(t.sql.exec("UPDATE abc SET a = a").columnNames, []);
});

Deno.test("cursor.raw() shares its position with the cursor", async () => {
  await using t = openSql();
  const cursor = t.sql.exec("SELECT value AS v FROM json_each('[1,2,3,4]')");
  assert.deepEqual(cursor.next(), { done: false, value: { v: 1 } });
  const raw = cursor.raw();
  assert.deepEqual(raw.next(), { done: false, value: [2] });
  assert.deepEqual(cursor.next(), { done: false, value: { v: 3 } });
  assert.deepEqual([...raw], [[4]]);
  assert.equal(cursor.next().done, true);
});

Deno.test("cursor.rowsRead and rowsWritten count the statement's rows", async () => {
  await using t = openSql();
  t.sql.exec("CREATE TABLE tbl (id INTEGER PRIMARY KEY, value TEXT)");
  t.sql.exec("INSERT INTO tbl VALUES (?, ?)", 100000, "initial");
  const insert = t.sql.exec("INSERT INTO tbl (id, value) VALUES (?, ?)", 1, "v");
  assert.equal(insert.rowsWritten, 1);
  assert.equal(t.sql.exec("INSERT INTO tbl VALUES (?, ?)", 2, "w").rowsWritten, 1);
  assert.equal(insert.rowsWritten, 1);
  const select = t.sql.exec("SELECT * FROM tbl");
  assert.equal(select.rowsRead, 1);
  select.next();
  assert.equal(select.rowsRead, 2);
  select.toArray();
  assert.equal(select.rowsRead, 3);
  assert.equal(select.rowsWritten, 0);
  const filtered = t.sql.exec("SELECT * FROM tbl WHERE id IN (1,2,3,4,5,6)");
  filtered.toArray();
  assert.equal(filtered.rowsRead, 2);
  assert.equal(filtered.rowsWritten, 0);
});

Deno.test("sql.exec() rejects SQL without a statement", async () => {
  await using t = openSql();
  for (const query of ["", ";", "  ", "-- only a comment", "/* open comment", "SELECT 1; ;"]) {
    assert.throws(() => t.sql.exec(query), /^Error: SQL code did not contain a statement\.$/);
  }
  t.sql.exec("CREATE TABLE log (x)");
  assert.throws(
    () => t.sql.exec("INSERT INTO log VALUES (1); SELECT 456; -- trailing comment"),
    /SQL code did not contain a statement/,
  );
  // Like workerd, the statements before the bad tail already ran.
  assert.deepEqual(t.sql.exec("SELECT x FROM log").toArray(), [{ x: 1 }]);
  assert.deepEqual(t.sql.exec("SELECT 1 AS one;  \n").toArray(), [{ one: 1 }]);
});

Deno.test("sql.exec() reports syntax errors with SQLite's byte offset", async () => {
  await using t = openSql();
  assert.throws(() => t.sql.exec("SELECT ;"), /near ";": syntax error at offset 7: SQLITE_ERROR$/);
  assert.throws(() => t.sql.exec("SELECT -;"), /syntax error at offset 8/);
  assert.throws(() => t.sql.exec("SELECT * bunk;"), /near "bunk": syntax error at offset 9/);
  assert.throws(() => t.sql.exec("SELECT 'é', ;"), /near ";": syntax error at offset 13/);
  assert.throws(() => t.sql.exec("SELECT 1 = = 2"), /near "=": syntax error at offset 11/);
  assert.throws(() => t.sql.exec("SELECT 1; SELEC 2"), /near "SELEC": syntax error at offset 0/);
  assert.throws(() => t.sql.exec("SELECT"), /^Error: incomplete input: SQLITE_ERROR$/);
  assert.throws(() => t.sql.exec("SELECT * FROM nope"), /no such table: nope: SQLITE_ERROR/);
});

Deno.test("finding a syntax error's offset does not run the statement", async () => {
  await using t = openSql();
  assert.throws(
    () => t.sql.exec("CREATE TABLE t (x) 5"),
    /near "5": syntax error at offset 19/,
  );
  assert.deepEqual(t.sql.exec("SELECT name FROM sqlite_master WHERE name = 't'").toArray(), []);
});

Deno.test("a column named __proto__ is an own property", async () => {
  await using t = openSql();
  const row = t.sql.exec("SELECT 1 AS __proto__, 2 AS b").one();
  assert.deepEqual(Object.keys(row), ["__proto__", "b"]);
  assert.equal(Object.getPrototypeOf(row), Object.prototype);
});

Deno.test("sql.exec() runs every statement and returns the last one's cursor", async () => {
  await using t = openSql();
  const cursor = t.sql.exec(`
    CREATE TABLE t (x TEXT);
    INSERT INTO t VALUES ('a;b'), ("c"";d"), ('-- not a comment');
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO t2 VALUES (1); SELECT 1; END;
    CREATE TABLE t2 (y);
    SELECT count(*) AS n FROM t`);
  assert.deepEqual(cursor.toArray(), [{ n: 3 }]);
  assert.throws(
    () => t.sql.exec("SELECT ?; SELECT 2", 1),
    /^Error: When executing multiple SQL statements in a single call, only the last statement can have parameters\.$/,
  );
  assert.deepEqual(t.sql.exec("INSERT INTO t VALUES ('e'); SELECT ? AS v", 9).one(), { v: 9 });
  assert.deepEqual(t.sql.exec("SELECT count(*) AS n FROM t2").one(), { n: 1 });
});

Deno.test("sql.exec() writes take effect without reading the cursor", async () => {
  await using t = openSql();
  t.sql.exec("CREATE TABLE t (x)");
  t.sql.exec("INSERT INTO t VALUES (1) RETURNING x");
  t.sql.exec("INSERT INTO t VALUES (2)");
  assert.deepEqual(t.sql.exec("SELECT x FROM t ORDER BY x").raw().toArray(), [[1], [2]]);
});

Deno.test("SQL writes share the implicit transaction with internal writes", async () => {
  await using t = openSql();
  t.sql.exec("CREATE TABLE log (x)");
  await t.db.flush();
  assert.equal(t.db.dirty, false);
  t.sql.exec("SELECT * FROM log");
  assert.equal(t.db.dirty, false, "a read does not open the write transaction");
  t.sql.exec("INSERT INTO log VALUES (1)");
  assert.equal(t.db.dirty, true);
  t.db.statement("INSERT INTO _cf_KV (key, value) VALUES ('k', 1)").run();
  t.db.rollback();
  assert.deepEqual(t.sql.exec("SELECT * FROM log").toArray(), []);
  assert.equal(t.db.statement("SELECT count(*) AS n FROM _cf_KV").get()?.n, 0);
});

Deno.test("SQL inside a savepoint rolls back with it, DDL included", async () => {
  await using t = openSql();
  assert.equal(
    t.db.savepoint(() => {
      t.sql.exec("CREATE TABLE IF NOT EXISTS should_succeed (v)");
      return "some data";
    }),
    "some data",
  );
  assert.throws(
    () =>
      t.db.savepoint(() => {
        t.sql.exec("CREATE TABLE should_be_rolled_back (v)");
        t.sql.exec("SELECT * FROM misspelled_table_name");
      }),
    /no such table: misspelled_table_name/,
  );
  const tables = t.sql.exec("SELECT name FROM sqlite_master WHERE name LIKE 'should%'").toArray();
  assert.deepEqual(tables, [{ name: "should_succeed" }]);
  t.sql.exec("CREATE TABLE i (v); INSERT INTO i VALUES (1)");
  t.db.savepoint(() => {
    t.sql.exec("UPDATE i SET v = 2");
    try {
      t.db.savepoint(() => {
        t.sql.exec("UPDATE i SET v = 3");
        throw new Error("foo");
      });
    } catch {
      // the inner transaction is undone alone
    }
  });
  assert.equal(t.sql.exec("SELECT v FROM i").one().v, 2);
});

Deno.test("user SQL cannot touch _cf_ names", async () => {
  await using t = openSql();
  for (const name of ["_cf_test", "_CF_test", "_Cf_test", "_cF_test"]) {
    assert.throws(() => t.sql.exec(`CREATE TABLE ${name} (x)`), /not authorized/);
  }
  assert.throws(() => t.sql.exec("SELECT * FROM _cf_KV"), /access to _cf_KV\.key is prohibited/);
  assert.throws(() => t.sql.exec("SELECT count(*) FROM _cf_kv"), /not authorized/);
  assert.throws(() => t.sql.exec("DELETE FROM _cf_KV"), /not authorized/);
  assert.throws(() => t.sql.exec("CREATE INDEX i ON _cf_KV (value)"), /not authorized/);
  assert.throws(() => t.sql.exec("DROP TABLE _cf_META"), /not authorized/);
  assert.throws(() => t.sql.exec("PRAGMA table_info(_cf_KV)"), /not authorized/);
  assert.throws(() => t.sql.exec("CREATE VIRTUAL TABLE _cf_f USING fts5(c)"), /not authorized/);
  t.sql.exec("CREATE TABLE mine (x)");
  assert.throws(() => t.sql.exec("ALTER TABLE mine RENAME TO _cf_mine"), /not authorized/);
  assert.throws(() => t.sql.exec('ALTER TABLE mine RENAME TO "_CF_x"'), /not authorized/);
  t.sql.exec("ALTER TABLE mine RENAME TO yours");
  t.sql.exec("CREATE VIEW v AS SELECT * FROM _cf_KV");
  assert.throws(() => t.sql.exec("SELECT * FROM v"), /prohibited|not authorized/);
});

Deno.test("user SQL cannot control transactions, attach or use temp objects", async () => {
  await using t = openSql();
  for (const query of ["BEGIN TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT foo", "RELEASE foo"]) {
    assert.throws(() => t.sql.exec(query), TRANSACTION_HINT, query);
  }
  assert.throws(() => t.sql.exec("ATTACH DATABASE ':memory:' AS other"), /not authorized/);
  assert.throws(() => t.sql.exec("CREATE TEMP TABLE tmp (x)"), /not authorized/);
  assert.throws(() => t.sql.exec("CREATE TEMP VIEW tv AS SELECT 1"), /not authorized/);
  assert.throws(() => t.sql.exec("VACUUM"), /authorization denied/);
  assert.throws(() => t.sql.exec("CREATE VIRTUAL TABLE r USING rtree(id, a, b)"), /not authorized/);
});

Deno.test("user SQL gets allow-listed PRAGMAs and no sqlite_* functions", async () => {
  await using t = openSql();
  assert.throws(
    () => t.sql.exec("SELECT sqlite_version()"),
    /not authorized to use function: sqlite_version/,
  );
  assert.throws(() => t.sql.exec("PRAGMA page_size = 8192"), /not authorized: SQLITE_AUTH/);
  assert.throws(() => t.sql.exec("PRAGMA user_version"), /not authorized/);
  assert.throws(() => t.sql.exec("PRAGMA user_version = 3"), /not authorized/);
  assert.throws(() => t.sql.exec("PRAGMA journal_mode = DELETE"), /not authorized/);
  assert.throws(() => t.sql.exec("PRAGMA data_version = 5"), /not authorized/);
  t.sql.exec("CREATE TABLE myTable (foo TEXT, bar INTEGER)");
  const info = t.sql.exec("PRAGMA table_info(myTable)").toArray().map((row) => row.name);
  assert.deepEqual(info, ["foo", "bar"]);
  assert.deepEqual(t.sql.exec("pragma quick_check").toArray(), [{ quick_check: "ok" }]);
  assert.deepEqual(t.sql.exec("pragma quick_check(myTable)").toArray(), [{ quick_check: "ok" }]);
  assert.equal(t.sql.exec("PRAGMA data_version").toArray().length, 1);
  for (const [value, expected] of [["true", 1], ["'yes'", 1], ["  off  ", 0], ["NO", 0]]) {
    t.sql.exec(`PRAGMA defer_foreign_keys = ${value}`);
    assert.equal(t.sql.exec("PRAGMA defer_foreign_keys").one().defer_foreign_keys, expected);
  }
  assert.throws(() => t.sql.exec("PRAGMA defer_foreign_keys = abcd"), /not authorized/);
  assert.deepEqual(t.sql.exec("PRAGMA optimize=0x10002").toArray(), []);
  assert.deepEqual(t.sql.exec("ANALYZE").toArray(), []);
  const listed = t.sql.exec("SELECT name FROM pragma_table_list WHERE name = 'myTable'");
  assert.deepEqual(listed.toArray(), [{ name: "myTable" }]);
});

Deno.test("PRAGMA foreign_keys = OFF takes effect after writes in the same turn", async () => {
  await using t = openSql();
  t.sql.exec("CREATE TABLE parent (id INTEGER PRIMARY KEY)");
  t.sql.exec("PRAGMA foreign_keys = OFF");
  t.sql.exec("CREATE TABLE child (p REFERENCES parent (id)); INSERT INTO child VALUES (5)");
  assert.deepEqual(t.sql.exec("PRAGMA foreign_key_check").toArray(), [
    { table: "child", rowid: 1, parent: "parent", fkid: 0 },
  ]);
  t.sql.exec("DELETE FROM child; PRAGMA foreign_keys = ON");
  assert.throws(() => t.sql.exec("INSERT INTO child VALUES (6)"), /FOREIGN KEY constraint failed/);
});

Deno.test("user SQL has math, JSON, date functions and FTS5", async () => {
  await using t = openSql();
  assert.equal(t.sql.exec("SELECT cos(0)").one()["cos(0)"], 1);
  const math = t.sql.exec(
    `SELECT sqrt(16) AS s, sqrt(-1) AS n, pow(2, 10) AS p, log(100) AS l, log(2, 8) AS l2,
      ln(1) AS ln, ceil(1.2) AS c, typeof(ceil(2)) AS ct, floor(-1.5) AS f, pi() AS pi,
      mod(7, 3) AS m, cos('abc') AS bad, trunc('2.7') AS tr`,
  ).one();
  assert.deepEqual(math, {
    s: 4,
    n: null,
    p: 1024,
    l: 2,
    l2: 3,
    ln: 0,
    c: 2,
    ct: "integer",
    f: -2,
    pi: Math.PI,
    m: 1,
    bad: null,
    tr: 2,
  });
  const json = t.sql.exec(`SELECT '{"a":2,"c":[4,5,{"f":7}]}' -> '$.c' AS value`).one().value;
  assert.equal(json, '[4,5,{"f":7}]');
  assert.match(String(t.sql.exec("SELECT current_date").one().current_date), /^\d{4}-\d{2}-\d{2}$/);
  t.sql.exec("CREATE VIRTUAL TABLE docs USING fts5(body, tokenize = 'porter')");
  t.sql.exec("INSERT INTO docs (body) VALUES ('the dogs are running'), ('a quiet cat')");
  const hits = t.sql.exec("SELECT body FROM docs WHERE docs MATCH 'run'").toArray();
  assert.deepEqual(hits, [{ body: "the dogs are running" }]);
  t.sql.exec("CREATE VIRTUAL TABLE vocab USING fts5vocab(docs, 'row')");
  assert.ok(t.sql.exec("SELECT term FROM vocab").toArray().length > 0);
  t.sql.exec("DROP TABLE vocab; DROP TABLE docs");
});

Deno.test("sql.exec() is held to Cloudflare's SQLite limits", async () => {
  await using t = openSql();
  const terms = (n: number) =>
    Array.from({ length: n }, (_, i) => `SELECT ${i}`).join(" UNION ALL ");
  assert.equal(t.sql.exec(terms(5)).toArray().length, 5);
  assert.throws(() => t.sql.exec(terms(6)), /too many terms in compound SELECT/);
  const columns = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join(", ");
  t.sql.exec(`CREATE TABLE wide (${columns(100)})`);
  assert.throws(() => t.sql.exec(`CREATE TABLE wider (${columns(101)})`), /too many columns/);
  const marks = (n: number) => Array.from({ length: n }, () => "?").join(", ");
  assert.equal(
    t.sql.exec(`SELECT ${marks(100)}`, ...Array(100).fill(1)).raw().toArray()[0]?.length,
    100,
  );
  assert.throws(
    () => t.sql.exec(`SELECT ${marks(101)}`, ...Array(101).fill(1)),
    /too many SQL variables/,
  );
  assert.throws(
    () => t.sql.exec(`SELECT 'a' LIKE '${"%".repeat(51)}'`),
    /LIKE or GLOB pattern too complex/,
  );
  assert.throws(
    () => t.sql.exec(`SELECT 1${" + 1".repeat(100)}`),
    /Expression tree is too large/,
  );
  assert.throws(() => t.sql.exec(`SELECT '${"x".repeat(100_000)}'`), /too big|too long/);
  const big = new Uint8Array(2_000_001);
  t.sql.exec("CREATE TABLE blobs (b)");
  assert.throws(() => t.sql.exec("INSERT INTO blobs VALUES (?)", big), /string or blob too big/);
  // KV values may be larger than user strings: the runtime's own writes are not capped.
  t.db.beginWrite();
  t.db.statement("INSERT INTO _cf_KV (key, value) VALUES ('big', ?)").run(big);
  assert.equal(t.db.statement("SELECT length(value) AS n FROM _cf_KV").get()?.n, big.length);
});

Deno.test("internal statements keep working under the user authorizer", async () => {
  await using t = openSql();
  const count = t.db.statement("SELECT count(*) AS n FROM _cf_KV");
  assert.equal(count.get()?.n, 0);
  t.sql.exec("CREATE TABLE bump (x)"); // schema change: SQLite recompiles `count` on next use
  t.db.beginWrite();
  t.db.db.prepare("INSERT INTO _cf_KV (key, value) VALUES ('a', 1)").run();
  assert.equal(count.get()?.n, 1);
  t.db.savepoint(() => t.db.statement("DELETE FROM _cf_KV").run());
  assert.equal(count.get()?.n, 0);
  await t.db.flush();
  assert.equal(t.db.dirty, false);
});

Deno.test("number results: integers above 2^53 lose precision, reals and null pass", async () => {
  await using t = openSql();
  const row = t.sql.exec("SELECT 9007199254740993 AS n, 1.5 AS f, NULL AS z").one();
  assert.equal(row.n, 9007199254740992);
  assert.equal(typeof row.n, "number");
  assert.equal(row.f, 1.5);
  assert.equal(row.z, null);
});

Deno.test("sql.databaseSize grows by one page per table and shrinks on DROP", async () => {
  await using t = openSql();
  const fresh = t.sql.databaseSize;
  assert.ok(fresh > 0 && fresh % 4096 === 0);
  t.sql.exec("CREATE TABLE should_make_one_more_page (value TEXT)");
  assert.equal(t.sql.databaseSize, fresh + 4096);
  t.sql.exec("DROP TABLE should_make_one_more_page");
  assert.equal(t.sql.databaseSize, fresh);
});

Deno.test("cached statements see schema changes", async () => {
  await using t = openSql();
  t.sql.exec("CREATE TABLE s (a)");
  t.sql.exec("INSERT INTO s VALUES (1)");
  assert.deepEqual(t.sql.exec("SELECT * FROM s").one(), { a: 1 });
  t.sql.exec("ALTER TABLE s ADD COLUMN b");
  assert.deepEqual(t.sql.exec("SELECT * FROM s").one(), { a: 1, b: null });
  t.sql.exec("ALTER TABLE s RENAME COLUMN a TO c");
  assert.deepEqual(t.sql.exec("SELECT * FROM s").one(), { c: 1, b: null });
  t.sql.exec("DROP TABLE s");
  assert.throws(() => t.sql.exec("SELECT * FROM s"), /no such table: s/);
});

Deno.test("sqlite_master is readable, as deleteAll checks rely on", async () => {
  await using t = openSql();
  t.sql.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
  const tables = t.sql.exec(
    String.raw`SELECT name FROM sqlite_master WHERE type = 'table'
      AND name NOT LIKE '\_cf\_%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`,
  ).toArray();
  assert.deepEqual(tables, [{ name: "t" }]);
});
