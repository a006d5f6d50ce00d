import { afterAll, describe, expect, it } from 'vitest';
import { IsolatedQueries } from '../../../domains/db/isolatedQueries.ts';
import { shopDatabaseFile } from '../../../domains/db/shopDatabase.ts';
import { ToolError } from '../../../tools/toolFailure.ts';

const runaway = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';

describe('IsolatedQueries', () => {
  const queries = new IsolatedQueries(shopDatabaseFile());
  afterAll(() => queries.close());

  it('runs a query in its own process and returns the rows', async () => {
    const result = await queries.run("SELECT count(*) AS n FROM orders WHERE status = 'refunded'", 10, new AbortController().signal);
    expect(result).toMatchObject({ columns: ['n'], rowCount: 1, truncated: false });
    expect(result.rows[0]?.n).toBeGreaterThan(0);
  });

  // Regression: a runaway query blocked the db worker's event loop for good (no replies, no discovery answers).
  it('stops a runaway query at its deadline with TIMEOUT, and the next query still runs', async () => {
    const deadline = AbortSignal.timeout(300);
    const error = await queries.run(runaway, 10, deadline).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ToolError);
    expect(error).toMatchObject({ code: 'TIMEOUT', retryable: false, message: expect.stringContaining('stopped') });
    const next = await queries.run('SELECT 1 AS one', 10, new AbortController().signal);
    expect(next.rows).toEqual([{ one: 1 }]);
  });

  it('carries SQLite refusals across the process boundary as the same structured errors', async () => {
    const error = await queries.run('SELECT nope FROM nowhere', 10, new AbortController().signal).then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('no such table') });
  });
});
