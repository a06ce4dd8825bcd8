import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

// Workflow code is replayed: it must not reach the clock, randomness or I/O except through Temporal's APIs.
// test/workflow-determinism.test.ts checks the same rule across the whole import graph of workflows/.
const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const nonDeterministicPackages = [
  'pg',
  'undici',
  'openai',
  '@anthropic-ai/sdk',
  'fastify',
  'pino',
  'prom-client',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/activity',
  '@electric-sql/*',
  'uuid',
  'nanoid',
];

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      '.data/**',
      '.scratch/**',
      'test-artifacts/**',
      'src/decision/scoring/reference-set/*.json',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'warn',
    },
  },
  {
    files: ['workflows/**/*.ts', 'src/decision/policy/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: nodeBuiltins, patterns: nonDeterministicPackages }],
      'no-restricted-globals': ['error', 'fetch', 'process'],
    },
  },
  {
    // Policies run inside workflows and in benchmarks alike: time and randomness are their inputs.
    files: ['src/decision/policy/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Pure decision code takes randomness as an input.' },
        { object: 'Date', property: 'now', message: 'Pure decision code takes time as an input.' },
      ],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'fetch', 'process'],
    },
  },
);
