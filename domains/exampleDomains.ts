import type { ToolDefinition } from '../tools/defineTool.ts';
import { calcTools } from './calc/calcTools.ts';
import { dbTools } from './db/dbTools.ts';
import { IsolatedQueries } from './db/isolatedQueries.ts';
import { openShopDatabase, shopDatabaseFile } from './db/shopDatabase.ts';
import { filesTools } from './files/filesTools.ts';

/** What every example domain factory is given; each takes what it needs and ignores the rest. */
export interface ExampleDomainOptions {
  /** Directory the `files` domain is confined to. */
  workspace: string;
}

/**
 * The tool sets `troupe worker <domain>` can serve, by domain name. Each call builds a fresh set;
 * `db` opens its own read-only copy of the sample shop database, which lives as long as the process.
 */
export const exampleDomains = {
  files: (options: ExampleDomainOptions): ToolDefinition[] => filesTools({ workspace: options.workspace }),
  db: (_options: ExampleDomainOptions): ToolDefinition[] => {
    const file = shopDatabaseFile();
    // Queries run in a child process killed at their deadline: one runaway query cannot block the pool member.
    return dbTools({ database: openShopDatabase({ path: file }), queries: new IsolatedQueries(file) });
  },
  calc: (_options: ExampleDomainOptions): ToolDefinition[] => calcTools(),
} as const;

/** A domain name {@link exampleDomains} knows. */
export type ExampleDomain = keyof typeof exampleDomains;
