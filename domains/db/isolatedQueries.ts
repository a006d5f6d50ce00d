import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';
import type { QueryResult } from './dbTools.ts';

// The child is a sibling module: queryChild.ts in a checkout, queryChild.js in the built package.
const childScript = fileURLToPath(new URL(`./queryChild${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

type Reply = { id: number; ok: QueryResult } | { id: number; error: { code: ToolFailureCode; message: string } };

/**
 * Runs queries in a child process, one at a time, and kills it when a query outlives its call's
 * deadline. SQLite's step cannot be interrupted from JavaScript, and a worker thread stuck in it
 * cannot even be terminated; a process can always be killed. The next query starts a fresh one.
 */
export class IsolatedQueries {
  readonly #file: string;
  #child: ChildProcess | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #nextId = 0;

  constructor(databaseFile: string) {
    this.#file = databaseFile;
  }

  run(sql: string, maxRows: number, signal: AbortSignal): Promise<QueryResult> {
    const turn = this.#queue.then(() => this.#runNow(sql, maxRows, signal));
    this.#queue = turn.catch(() => undefined);
    return turn;
  }

  close(): void {
    this.#child?.kill('SIGKILL');
    this.#child = undefined;
  }

  #runNow(sql: string, maxRows: number, signal: AbortSignal): Promise<QueryResult> {
    if (signal.aborted) return Promise.reject(this.#timeout());
    const child = (this.#child ??= this.#spawn());
    const id = this.#nextId++;
    return new Promise<QueryResult>((resolve, reject) => {
      const settle = () => {
        child.off('message', onMessage);
        child.off('exit', onExit);
        signal.removeEventListener('abort', onAbort);
      };
      const onMessage = (reply: Reply) => {
        if (reply.id !== id) return;
        settle();
        if ('ok' in reply) resolve(reply.ok);
        else reject(new ToolError(reply.error.code, reply.error.message));
      };
      const onExit = () => {
        settle();
        if (this.#child === child) this.#child = undefined;
        reject(new ToolError(ToolFailureCode.INTERNAL, 'The query process stopped unexpectedly.'));
      };
      const onAbort = () => {
        settle();
        child.kill('SIGKILL');
        if (this.#child === child) this.#child = undefined;
        reject(this.#timeout());
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      signal.addEventListener('abort', onAbort, { once: true });
      child.send({ id, sql, maxRows });
    });
  }

  #spawn(): ChildProcess {
    const child = fork(childScript, [this.#file], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
    // The worker's own exit must not wait on an idle query process.
    child.unref();
    child.channel?.unref();
    return child;
  }

  #timeout(): ToolError {
    return new ToolError(
      ToolFailureCode.TIMEOUT,
      'The query ran past its deadline and was stopped. Make it cheaper: filter earlier, add a LIMIT, avoid unbounded recursion.',
      { retryable: false },
    );
  }
}
