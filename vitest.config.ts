import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/natsServer.ts'],
    testTimeout: 30_000,
    reporters: ['default', ['json', { outputFile: '.troupe/test-results.json' }]],
    // Hooks start whole deployments of processes; on a loaded machine that takes a while (processStartTimeoutMs).
    hookTimeout: 120_000,
    // Two cores, and most suites start whole deployments of processes (MCP servers, stacks, the packed
    // package's npm install): two files at once kept the load near 5 and made process starts and
    // discovery miss their waits. One file at a time is slower, and every wait holds.
    maxWorkers: 1,
  },
});
