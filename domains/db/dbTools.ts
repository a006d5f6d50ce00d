import type { DatabaseSync, SQLOutputValue } from 'node:sqlite';
import * as z from 'zod';
import { defineTool, type ToolDefinition } from '../../tools/defineTool.ts';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';

export interface DbToolsOptions {
  /** An open connection, ideally read-only (see `openShopDatabase`); the caller closes it. */
  database: DatabaseSync;
  /**
   * Where `db_query` runs: a child process killed at the call's deadline. Without it queries run in
   * this process, where a runaway query (an unbounded recursive CTE) blocks it for good.
   */
  queries?: { run(sql: string, maxRows: number, signal: AbortSignal): Promise<QueryResult> };
}

/** What `db_query` returns. */
export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  rowCount: number;
  truncated: boolean;
}

/**
 * Runs one read-only query on `database` and reads at most `maxRows` rows; every refusal is a
 * ToolError the model can act on. Used in-process and by the isolated query process alike.
 */
export function runReadOnlyQuery(database: DatabaseSync, sql: string, maxRows: number): QueryResult {
  checkReadOnlyStatement(sql);
  try {
    const statement = database.prepare(sql);
    statement.setReadBigInts(true);
    statement.setReturnArrays(true);
    const columns = uniqueNames(statement.columns().map((column) => column.name));
    const rows: Record<string, unknown>[] = [];
    let truncated = false;
    // Iterate rather than all(): a query matching a million rows reads maxRows + 1 of them.
    for (const row of statement.iterate() as Iterable<SQLOutputValue[]>) {
      if (rows.length === maxRows) {
        truncated = true;
        break;
      }
      rows.push(Object.fromEntries(columns.map((name, i) => [name, toJsonValue(row[i] ?? null)])));
    }
    return { columns, rows, rowCount: rows.length, truncated };
  } catch (error) {
    throw fromSqliteError(error);
  }
}

/** What the model reads when a query would write: the rule, and what it may send instead. */
export const readOnlyMessage = 'The database is read-only: only SELECT (and WITH … SELECT) queries are allowed.';

const readKeywords = new Set(['SELECT', 'WITH', 'VALUES', 'EXPLAIN']);
const explainable = new Set(['SELECT', 'WITH', 'VALUES']);

/** End of the quoted run or comment starting at `start`, or the text's length if it never closes. */
function skipQuotedOrComment(sql: string, start: number): number {
  const char = sql[start];
  if (char === '-' && sql[start + 1] === '-') {
    const end = sql.indexOf('\n', start);
    return end === -1 ? sql.length : end + 1;
  }
  if (char === '/' && sql[start + 1] === '*') {
    const end = sql.indexOf('*/', start + 2);
    return end === -1 ? sql.length : end + 2;
  }
  const close = char === '[' ? ']' : char;
  let i = start + 1;
  while (i < sql.length) {
    if (sql[i] === close) {
      // A doubled quote is an escaped quote inside the literal, not its end.
      if (close !== ']' && sql[i + 1] === close) i += 2;
      else return i + 1;
    } else i += 1;
  }
  return sql.length;
}

/**
 * The first line of defence, before SQLite sees the text: exactly one statement, and it starts with
 * SELECT, WITH, VALUES or EXPLAIN (of one of those). Quotes, bracketed names and comments are
 * skipped so a `;` or a keyword inside them does not count. `WITH … DELETE` passes this check and
 * is stopped by the read-only connection.
 */
export function checkReadOnlyStatement(sql: string): void {
  const words: string[] = [];
  let wordsDone = false;
  let statementEnded = false;
  let i = 0;
  while (i < sql.length) {
    const char = sql[i]!;
    if (/\s/.test(char)) {
      i += 1;
    } else if ((char === '-' && sql[i + 1] === '-') || (char === '/' && sql[i + 1] === '*')) {
      i = skipQuotedOrComment(sql, i);
    } else if (char === ';') {
      statementEnded = true;
      i += 1;
    } else if (statementEnded) {
      throw new ToolError(ToolFailureCode.FORBIDDEN, `${readOnlyMessage} Send one statement per call, without ";" between statements.`);
    } else if (char === "'" || char === '"' || char === '`' || char === '[') {
      wordsDone = true;
      i = skipQuotedOrComment(sql, i);
    } else if (/[A-Za-z_]/.test(char)) {
      const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i, i + 64))![0];
      if (!wordsDone && words.length < 4) words.push(word.toUpperCase());
      i += word.length;
    } else {
      wordsDone = true;
      i += 1;
    }
  }
  const [first, ...rest] = words;
  if (first === undefined) {
    throw new ToolError(ToolFailureCode.INVALID_INPUT, 'The query is empty; send a SELECT statement.');
  }
  const explained = rest[0] === 'QUERY' && rest[1] === 'PLAN' ? rest[2] : rest[0];
  if (!readKeywords.has(first) || (first === 'EXPLAIN' && (explained === undefined || !explainable.has(explained)))) {
    throw new ToolError(ToolFailureCode.FORBIDDEN, readOnlyMessage);
  }
}

// SQLite primary result codes (the low byte of an extended code).
const SQLITE_ERROR = 1;
const SQLITE_READONLY = 8;
const SQLITE_TOOBIG = 18;
const SQLITE_MISMATCH = 20;
const SQLITE_AUTH = 23;
const SQLITE_RANGE = 25;
const queryFaults = new Set([SQLITE_ERROR, SQLITE_TOOBIG, SQLITE_MISMATCH, SQLITE_RANGE]);

/** SQLite's own refusals in terms the model can act on; anything else stays as thrown (INTERNAL). */
function fromSqliteError(error: unknown): unknown {
  const errcode = (error as { errcode?: unknown }).errcode;
  if ((error as { code?: unknown }).code !== 'ERR_SQLITE_ERROR' || typeof errcode !== 'number') return error;
  const primary = errcode & 0xff;
  // The second line of defence: whatever got past the text check, the connection refused to write.
  if (primary === SQLITE_READONLY || primary === SQLITE_AUTH) {
    return new ToolError(ToolFailureCode.FORBIDDEN, readOnlyMessage, { cause: error });
  }
  if (queryFaults.has(primary)) {
    const message = (error as Error).message;
    return new ToolError(ToolFailureCode.INVALID_INPUT, `SQLite rejected the query: ${message}. db_schema lists the tables and columns.`, {
      cause: error,
    });
  }
  return error;
}

/** JSON-safe cell: integers are read as BigInt so none is silently rounded, then narrowed here. */
function toJsonValue(value: SQLOutputValue): unknown {
  if (typeof value === 'bigint') {
    const safe = value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);
    return safe ? Number(value) : value.toString();
  }
  if (value instanceof Uint8Array) return `x'${Buffer.from(value).toString('hex')}'`;
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}

/** `SELECT a.id, b.id` names two columns "id"; rows are objects, so later ones become `id_2`, `id_3`. */
function uniqueNames(names: string[]): string[] {
  const seen = new Set<string>();
  return names.map((name) => {
    let unique = name;
    for (let n = 2; seen.has(unique); n += 1) unique = `${name}_${n}`;
    seen.add(unique);
    return unique;
  });
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const Column = z.object({ name: z.string(), type: z.string() });

/**
 * The `db` domain: `db_schema` describes the tables and `db_query` runs one read-only SQL query.
 * Writes are refused twice over: by {@link checkReadOnlyStatement} before the query runs and by the
 * read-only connection while it runs. Queries run synchronously on the worker's thread, so a query
 * cannot be cut short at its deadline.
 */
export function dbTools(options: DbToolsOptions): ToolDefinition[] {
  const { database } = options;

  const schema = defineTool({
    name: 'db_schema',
    description: 'Lists the tables of the database with their columns, column types and row counts. Call it before writing a query.',
    input: z.object({}),
    output: z.object({ tables: z.array(z.object({ name: z.string(), rowCount: z.number().int(), columns: z.array(Column) })) }),
    handler: () => {
      const names = database
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
        .all()
        .map((row) => String(row.name));
      const columnsOf = database.prepare('SELECT name, type FROM pragma_table_info(?) ORDER BY cid');
      const tables = names.map((name) => {
        const count = database.prepare(`SELECT count(*) AS n FROM ${quoteIdentifier(name)}`).get();
        return {
          name,
          rowCount: Number(count?.n ?? 0),
          columns: columnsOf.all(name).map((column) => ({ name: String(column.name), type: String(column.type) })),
        };
      });
      return { tables };
    },
  });

  const query = defineTool({
    name: 'db_query',
    description:
      'Runs one read-only SQLite query (SELECT, or WITH … SELECT) and returns the columns and up to maxRows rows. ' +
      'Money columns are integer cents. Writes and multiple statements are refused.',
    input: z.object({
      sql: z.string().min(1).describe('A single SQLite SELECT statement.'),
      maxRows: z.number().int().min(1).max(1000).default(100).describe('Most rows to return; `truncated` says whether more matched.'),
    }),
    output: z.object({
      columns: z.array(z.string()),
      rows: z.array(z.record(z.string(), z.unknown())),
      rowCount: z.number().int().nonnegative(),
      truncated: z.boolean(),
    }),
    handler: async ({ sql, maxRows }, { signal }) => {
      // The text check is cheap and gives the clearest refusal; the process boundary is for what runs long.
      checkReadOnlyStatement(sql);
      return options.queries ? await options.queries.run(sql, maxRows, signal) : runReadOnlyQuery(database, sql, maxRows);
    },
  });

  return [schema, query];
}
