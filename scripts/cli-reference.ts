/**
 * Writes docs/cli.md from the command tree (`npm run docs:cli`); with `--check`, exits 1 when the
 * file differs from what the tree gives (CI), changing nothing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cliReference } from '../client/cli/reference';

export const CLI_REFERENCE_PATH = path.resolve(__dirname, '..', 'docs', 'cli.md');

function main(): number {
  const text = `${cliReference()}\n`;
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(CLI_REFERENCE_PATH, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current === text) return 0;
    console.error(`${CLI_REFERENCE_PATH} is stale: run npm run docs:cli`);
    return 1;
  }
  writeFileSync(CLI_REFERENCE_PATH, text);
  console.log(`wrote ${CLI_REFERENCE_PATH}`);
  return 0;
}

if (require.main === module) process.exitCode = main();
