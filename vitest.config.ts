import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The Temporal native bridge misbehaves in worker threads: run each file in a child process.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // One shared Temporal dev server and Postgres for the whole run (see test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
    fileParallelism: true,
    maxWorkers: 2,
  },
});
