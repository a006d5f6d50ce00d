import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';

/**
 * Puts a case's `setup.database` at `target` for its db pool: SQL text (a `.sql` file) run into a
 * fresh SQLite database, any other file copied as it is. A copy, so that nothing a run does reaches
 * the dataset's own file. Throws with the SQLite error when the SQL does not run.
 */
export function placeCaseDatabase(databaseFile: string, target: string): void {
  rmSync(target, { force: true });
  if (!databaseFile.endsWith('.sql')) {
    copyFileSync(databaseFile, target);
    return;
  }
  const database = new DatabaseSync(target);
  try {
    database.exec(readFileSync(databaseFile, 'utf8'));
  } catch (error) {
    rmSync(target, { force: true });
    throw new Error(`its SQL does not run: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    if (database.isOpen) database.close();
  }
}
