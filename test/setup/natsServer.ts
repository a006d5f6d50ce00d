import type { TestProject } from 'vitest/node';
import { startNatsServer } from '../../testing/natsServer.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    natsUrl: string;
  }
}

/** One nats-server for the whole run; tests that restart NATS start their own. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startNatsServer();
  project.provide('natsUrl', server.url);
  return async () => await server.stop();
}
