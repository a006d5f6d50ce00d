import { existsSync } from 'node:fs';
import type { ToolDefinition } from '../tools/defineTool.ts';
import { calcTools } from './calc/calcTools.ts';
import { dbTools } from './db/dbTools.ts';
import { IsolatedQueries } from './db/isolatedQueries.ts';
import { openShopDatabase, shopDatabaseFile } from './db/shopDatabase.ts';
import { filesTools } from './files/filesTools.ts';
import { refundsTools } from './refunds/refundsTools.ts';

/** What every example domain factory is given; each takes what it needs and ignores the rest. */
export interface ExampleDomainOptions {
  /** Directory the `files` domain is confined to, and the `refunds` domain records refunds in (under `refunds/`). */
  workspace: string;
  /** The SQLite file the `db` domain answers from (read-only); the sample shop when absent. */
  databaseFile?: string;
}

/**
 * The tool sets `troupe worker <domain>` can serve, by domain name. Each call builds a fresh set;
 * `db` opens its database read-only (its own copy of the sample shop unless told another), which lives as long as the process.
 */
export const exampleDomains = {
  files: (options: ExampleDomainOptions): ToolDefinition[] => filesTools({ workspace: options.workspace }),
  db: (options: ExampleDomainOptions): ToolDefinition[] => {
    // A database someone named must be there: the sample shop in its place would answer about other data.
    if (options.databaseFile !== undefined && !existsSync(options.databaseFile)) throw new Error(`The db domain's database ${options.databaseFile} (TROUPE_DB_FILE) does not exist.`);
    const file = options.databaseFile ?? shopDatabaseFile();
    // Queries run in a child process killed at their deadline: one runaway query cannot block the pool member.
    return dbTools({ database: openShopDatabase({ path: file }), queries: new IsolatedQueries(file) });
  },
  calc: (_options: ExampleDomainOptions): ToolDefinition[] => calcTools(),
  // The refund desk's one effect, in the workspace its proposals are written to with files_write.
  refunds: (options: ExampleDomainOptions): ToolDefinition[] => refundsTools({ workspace: options.workspace }),
} as const;

/** A domain name {@link exampleDomains} knows. */
export type ExampleDomain = keyof typeof exampleDomains;
