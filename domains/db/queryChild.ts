/**
 * The process `db_query` runs in (see isolatedQueries.ts): a runaway query blocks only this
 * process, which the worker kills at the call's deadline. Reads `{ id, sql, maxRows }` messages and
 * answers each with its result or its error.
 */
import { DatabaseSync } from 'node:sqlite';
import { ToolError } from '../../tools/toolFailure.ts';
import { runReadOnlyQuery } from './dbTools.ts';

const file = process.argv[2];
if (!file || !process.send) {
  process.stderr.write('queryChild: run me with fork(queryChild.ts, [databaseFile])\n');
  process.exit(2);
}
const database = new DatabaseSync(file, { readOnly: true });
database.exec('PRAGMA query_only = ON');

process.on('message', (message: { id: number; sql: string; maxRows: number }) => {
  try {
    process.send?.({ id: message.id, ok: runReadOnlyQuery(database, message.sql, message.maxRows) });
  } catch (error) {
    process.send?.({
      id: message.id,
      error: error instanceof ToolError ? { code: error.code, message: error.message } : { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) },
    });
  }
});
