import { defineConfig } from 'vitest/config';

// One vitest run covers every project; each test file sits beside the code it tests.
export default defineConfig({
  test: {
    include: ['**/src/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
