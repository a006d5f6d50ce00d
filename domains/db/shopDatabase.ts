import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/** The sample shop's schema and rows, as SQL text: customers, products, orders, order_items. */
export const shopSqlFile = new URL('./shop.sql', import.meta.url);

export interface OpenShopDatabaseOptions {
  /**
   * Database file to use. Built from `shop.sql` if it does not exist yet, opened as it is if it
   * does. Without it the database is built in a fresh temporary directory that is removed again
   * once the connection is open.
   */
  path?: string;
}

function buildShopDatabase(file: string): void {
  // Built beside the target and renamed into place, so a reader (or a second worker building the
  // same path at the same moment) never opens a half-written file.
  const building = `${file}.${process.pid}.building`;
  rmSync(building, { force: true });
  const writer = new DatabaseSync(building);
  try {
    writer.exec(readFileSync(shopSqlFile, 'utf8'));
  } catch (error) {
    writer.close();
    rmSync(building, { force: true });
    throw error;
  }
  writer.close();
  renameSync(building, file);
}

/**
 * Opens the sample shop database read-only: SQLite itself refuses writes (`readOnly: true`), and
 * `PRAGMA query_only` also covers the in-memory temp schema that a read-only file would still let a
 * query write to. The caller owns the connection and closes it with `close()`; there is nothing
 * else to clean up.
 */
export function openShopDatabase(options: OpenShopDatabaseOptions = {}): DatabaseSync {
  if (options.path !== undefined) return openReadOnly(shopDatabaseFile(options.path));
  const dir = mkdtempSync(join(tmpdir(), 'troupe-shop-'));
  try {
    const file = join(dir, 'shop.db');
    buildShopDatabase(file);
    return openReadOnly(file);
  } finally {
    // The open descriptor keeps the unlinked file readable for the life of the connection (a
    // read-only connection never reopens it by name), so nothing is left in the temp directory
    // however the process ends.
    rmSync(dir, { recursive: true, force: true });
  }
}

function openReadOnly(file: string): DatabaseSync {
  const database = new DatabaseSync(file, { readOnly: true });
  database.exec('PRAGMA query_only = ON');
  return database;
}

/**
 * The path of a shop database file that other processes can open too (the isolated query process
 * does): `path` built if missing, or a fresh temporary copy removed when this process exits.
 */
export function shopDatabaseFile(path?: string): string {
  if (path !== undefined) {
    const file = resolve(path);
    if (!existsSync(file)) buildShopDatabase(file);
    return file;
  }
  const dir = mkdtempSync(join(tmpdir(), 'troupe-shop-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'shop.db');
  buildShopDatabase(file);
  return file;
}
