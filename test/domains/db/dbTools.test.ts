import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkReadOnlyStatement, dbTools, readOnlyMessage } from '../../../domains/db/dbTools.ts';
import { openShopDatabase } from '../../../domains/db/shopDatabase.ts';
import type { ToolDefinition } from '../../../tools/defineTool.ts';
import { callTool as call, toolErrorOf as failure } from '../../fixtures/callTool.ts';

describe('dbTools over the sample shop', () => {
  let database: DatabaseSync;
  let tools: ToolDefinition[];

  beforeAll(() => {
    database = openShopDatabase();
    tools = dbTools({ database });
  });

  beforeAll(async () => {
    before = await snapshot();
  });

  afterAll(() => {
    database.close();
  });

  let before: unknown;

  /** Every table's row count and a digest of its rows: any write would change one of them. */
  async function snapshot(): Promise<unknown> {
    const sql = `
      SELECT (SELECT count(*) FROM orders) AS orders,
             (SELECT group_concat(id || status || customer_id, ',') FROM orders) AS order_rows,
             (SELECT count(*) FROM order_items) AS items,
             (SELECT sum(quantity * unit_price_cents) FROM order_items) AS item_total,
             (SELECT count(*) FROM customers) AS customers,
             (SELECT sum(price_cents) FROM products) AS prices,
             (SELECT count(*) FROM sqlite_temp_schema) AS temp_objects`;
    return (await call(tools, 'db_query', { sql })).rows[0];
  }

  it('lists the four tables with their columns and row counts', async () => {
    const { tables } = await call(tools, 'db_schema', {});
    expect(tables.map((t: { name: string; rowCount: number }) => [t.name, t.rowCount])).toEqual([
      ['customers', 40],
      ['order_items', 350],
      ['orders', 150],
      ['products', 25],
    ]);
    expect(tables.find((t: { name: string }) => t.name === 'orders').columns).toEqual([
      { name: 'id', type: 'INTEGER' },
      { name: 'customer_id', type: 'INTEGER' },
      { name: 'ordered_at', type: 'TEXT' },
      { name: 'status', type: 'TEXT' },
    ]);
  });

  it('answers a join with an aggregate in columns and row objects', async () => {
    const result = await call(tools, 'db_query', {
      sql: `
        -- revenue per category; refunded orders do not count
        SELECT p.category, count(DISTINCT o.id) AS orders, sum(oi.quantity * oi.unit_price_cents) AS revenue_cents
        FROM order_items oi
        JOIN products p ON p.id = oi.product_id
        JOIN orders o ON o.id = oi.order_id
        WHERE o.status <> 'refunded'
        GROUP BY p.category
        ORDER BY revenue_cents DESC;`,
    });
    expect(result.columns).toEqual(['category', 'orders', 'revenue_cents']);
    expect(result.truncated).toBe(false);
    expect(result.rowCount).toBe(result.rows.length);
    expect(result.rows.length).toBeGreaterThanOrEqual(5);
    for (const row of result.rows) {
      expect(row).toEqual({ category: expect.any(String), orders: expect.any(Number), revenue_cents: expect.any(Number) });
    }
    const revenues = result.rows.map((r: { revenue_cents: number }) => r.revenue_cents);
    expect(revenues).toEqual([...revenues].sort((a, b) => b - a));
  });

  it('accepts WITH … SELECT, VALUES and EXPLAIN QUERY PLAN', async () => {
    const paid = await call(tools, 'db_query', {
      sql: "WITH paid AS (SELECT * FROM orders WHERE status = 'paid') SELECT count(*) AS n FROM paid",
    });
    expect(paid.rows[0].n).toBeGreaterThan(0);
    expect((await call(tools, 'db_query', { sql: 'values (1, 2)' })).rows).toEqual([{ column1: 1, column2: 2 }]);
    expect((await call(tools, 'db_query', { sql: 'EXPLAIN QUERY PLAN SELECT * FROM orders' })).rowCount).toBeGreaterThan(0);
  });

  it('returns at most maxRows rows and says the rest were cut', async () => {
    const cut = await call(tools, 'db_query', { sql: 'SELECT id FROM orders ORDER BY id', maxRows: 7 });
    expect(cut).toMatchObject({ columns: ['id'], rowCount: 7, truncated: true });
    expect(cut.rows.map((r: { id: number }) => r.id)).toEqual([1001, 1002, 1003, 1004, 1005, 1006, 1007]);
    expect(await call(tools, 'db_query', { sql: 'SELECT id FROM orders LIMIT 7', maxRows: 7 })).toMatchObject({ rowCount: 7, truncated: false });
    expect((await call(tools, 'db_query', { sql: 'SELECT id FROM orders' })).rowCount).toBe(100);
  });

  it('keeps duplicate column names apart and big integers exact', async () => {
    const result = await call(tools, 'db_query', {
      sql: 'SELECT o.id, c.id, 9007199254740993 AS big, 3 AS small FROM orders o JOIN customers c ON c.id = o.customer_id LIMIT 1',
    });
    expect(result.columns).toEqual(['id', 'id_2', 'big', 'small']);
    expect(result.rows[0]).toMatchObject({ big: '9007199254740993', small: 3 });
  });

  it.each([
    ['INSERT', "INSERT INTO orders (id, customer_id, ordered_at, status) VALUES (1, 1, '2026-01-01', 'paid')"],
    ['UPDATE', "UPDATE orders SET status = 'refunded'"],
    ['DELETE', 'DELETE FROM orders'],
    ['DROP', 'DROP TABLE orders'],
    ['CREATE TEMP', 'CREATE TEMP TABLE scratch AS SELECT * FROM orders'],
    ['ATTACH', "ATTACH DATABASE ':memory:' AS other"],
    ['PRAGMA write', 'PRAGMA journal_mode=delete'],
    ['PRAGMA query_only off', 'PRAGMA query_only = OFF'],
    ['multi-statement', 'select 1; delete from orders'],
    ['multi-statement after a comment', 'select 1 /* ; */; -- note\n delete from orders'],
    ['EXPLAIN of a write', 'EXPLAIN DELETE FROM orders'],
    ['WITH … DELETE (stopped by the read-only connection)', 'WITH doomed AS (SELECT id FROM orders) DELETE FROM orders WHERE id IN (SELECT id FROM doomed)'],
  ])('refuses %s with FORBIDDEN and leaves the data unchanged', async (_label, sql) => {
    const error = await failure(call(tools, 'db_query', { sql }));
    expect(error.code).toBe('FORBIDDEN');
    expect(error.message).toContain(readOnlyMessage);
    expect(await snapshot()).toEqual(before);
    expect((await call(tools, 'db_query', { sql: 'SELECT * FROM pragma_query_only' })).rows).toEqual([{ query_only: 1 }]);
  });

  it('keeps semicolons inside strings and quoted names from counting as statement breaks', async () => {
    const result = await call(tools, 'db_query', { sql: `SELECT 'a;b' AS "x;y", 'it''s; fine' AS z;  -- trailing comment` });
    expect(result.rows).toEqual([{ 'x;y': 'a;b', z: "it's; fine" }]);
  });

  it('reports syntax errors and unknown tables as INVALID_INPUT with SQLite\'s message', async () => {
    const syntax = await failure(call(tools, 'db_query', { sql: 'SELECT FROM WHERE' }));
    expect(syntax.code).toBe('INVALID_INPUT');
    expect(syntax.message).toMatch(/syntax error/);
    const unknown = await failure(call(tools, 'db_query', { sql: 'SELECT * FROM invoices' }));
    expect(unknown.code).toBe('INVALID_INPUT');
    expect(unknown.message).toMatch(/no such table: invoices/);
  });

  it('refuses the connection-level write even when the text check is bypassed', () => {
    expect(() => database.exec('DELETE FROM orders')).toThrow(/readonly/);
  });
});

describe('checkReadOnlyStatement', () => {
  it('accepts a single read statement with a trailing semicolon and comments', () => {
    expect(() => checkReadOnlyStatement('  /* hi */ select 1; -- done')).not.toThrow();
  });

  it('refuses an empty query as INVALID_INPUT', () => {
    expect(() => checkReadOnlyStatement(' -- nothing\n ')).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});

describe('openShopDatabase', () => {
  it('builds the database at a given path once and reopens it read-only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'troupe-shop-test-'));
    try {
      const path = join(dir, 'shop.db');
      const first = openShopDatabase({ path });
      first.close();
      expect(existsSync(path)).toBe(true);
      const again = openShopDatabase({ path });
      try {
        expect(again.prepare('SELECT count(*) AS n FROM products').get()).toEqual({ n: 25 });
        expect(() => again.exec("UPDATE products SET price_cents = 1")).toThrow(/readonly/);
      } finally {
        again.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
