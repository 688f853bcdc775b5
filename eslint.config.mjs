// @ts-check
import tseslint from 'typescript-eslint';
import importPlugin from 'eslint-plugin-import';

export default tseslint.config(
  {
    ignores: ['node_modules/**', 'dist/**', '.tools/**', '.amiflow/**', 'eslint.config.mjs', 'scripts/*.mjs'],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.eslint.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { import: importPlugin },
    settings: { 'import/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  {
    // Cycles matter in the layers that ship (a workflow bundle, the worker, the client), not between
    // test files; checking every test file too made it 60 % of the lint's time.
    files: ['{workflows,activities,contracts,client,worker,shared,devkit}/**/*.ts'],
    rules: { 'import/no-cycle': ['error', { ignoreExternal: true }] },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@aws-sdk/*', '@smithy/*'], message: 'AWS calls belong in activities/.' },
            {
              group: ['node:*', 'fs', 'path', 'os', 'crypto', 'child_process', 'http', 'https', 'net'],
              message: 'Workflows are deterministic: no Node built-ins.',
            },
            {
              group: ['@temporalio/client', '@temporalio/worker', '@temporalio/activity'],
              message: 'Workflows import only @temporalio/workflow.',
            },
            {
              group: ['../activities', '../activities/*'],
              importNamePattern: '.',
              allowTypeImports: true,
              message: 'Import activity types only (import type).',
            },
          ],
        },
      ],
    },
  },
  {
    // contracts/ is the bottom layer: workflows, activities, the worker and the client import it, so
    // it imports none of them, nor Node or AWS (the workflow bundle carries it). Beside zod, only the
    // SDK's definition helpers: search-attribute keys (common), query and update definitions (workflow).
    files: ['contracts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!zod$|@temporalio/common$|@temporalio/workflow$|\\./).*',
              message: 'contracts/ imports only zod, the SDK definition helpers and other contracts.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'devkit/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
    },
  },
  {
    // The local stack, scripts and benches are tooling: they may not lean on the tests.
    files: ['devkit/**/*.ts', 'scripts/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ group: ['**/test/*', '**/test/**'], message: 'Tooling imports devkit/, not test/.' }],
        },
      ],
    },
  },
  {
    // Type-aware rules where the code ships; tests are linted without types, which halves the time
    // of a cold `npm run lint` (the whole project's type information took over 30 s on 2 cores).
    // Tests still get typecheck (`npm run typecheck`) and every rule that needs no type information.
    files: ['test/**/*.ts'],
    ...tseslint.configs.disableTypeChecked,
  },
);
