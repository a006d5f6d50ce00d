import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Starting nats-server and the pools takes a moment on a busy machine.
    hookTimeout: 60_000,
    testTimeout: 30_000,
  },
});
