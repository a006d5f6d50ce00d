import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/natsServer.ts'],
    testTimeout: 30_000,
    reporters: ['default', ['json', { outputFile: '.troupe/test-results.json' }]],
    // Hooks start whole deployments of processes; on a loaded machine that takes a while (processStartTimeoutMs).
    hookTimeout: 120_000,
    // Two cores: more workers only make the multi-process suites contend for CPU.
    maxWorkers: 2,
  },
});
