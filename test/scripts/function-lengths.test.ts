/**
 * The "no function over about 120 lines" rule (STYLE.md) as a check: scripts/function-lengths.ts
 * `--check` fails the build naming each function in workflows/ or activities/ over the bound, so
 * a long workflow body cannot come back unnoticed. Checked on this repository and on small made-up
 * trees (a body that is long in its own lines, a factory that is long only through its children).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ALLOWED_OVER, MAX_OWN_LINES, overBound } from '../../scripts/function-lengths';

const ROOT = path.resolve(__dirname, '../..');
const SCRIPT = path.join(ROOT, 'scripts/function-lengths.ts');
const made: string[] = [];

/** A repository-like tree holding `files` (path under the root → text). */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'amiflow-lengths-'));
  made.push(root);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  return root;
}

/** `n` statement lines, so a function's length is known exactly. */
function statements(n: number): string {
  return Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');
}

function runCheck(root: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, '--check', '--root', root], {
    cwd: ROOT,
    encoding: 'utf8',
  });
}

after(() => {
  for (const root of made) rmSync(root, { recursive: true, force: true });
});

describe('function-lengths --check', () => {
  it('GIVEN this repository THEN no function in workflows/ or activities/ is over the bound but the listed exceptions', () => {
    const over = overBound(ROOT);
    assert.deepEqual(
      over.map((f) => `${f.file}:${f.line} ${f.name} (${f.own} own lines)`),
      [],
      `split these into named steps, or list them in ALLOWED_OVER with why`,
    );
  });

  it('GIVEN a workflow body over the bound WHEN checked THEN it is named with its own length and the check exits 1', () => {
    const root = tree({
      'workflows/long.ts': `export async function longBody(): Promise<void> {\n${statements(MAX_OWN_LINES)}\n}\n`,
      'activities/short.ts': `export function short(): number {\n${statements(5)}\n  return 1;\n}\n`,
    });
    const over = overBound(root);
    assert.deepEqual(
      over.map((f) => [f.file, f.name, f.own]),
      [['workflows/long.ts', 'longBody', MAX_OWN_LINES + 2]],
    );
    const res = runCheck(root);
    assert.equal(res.status, 1, res.stderr);
    assert.match(res.stderr, /1 function\(s\) over 120 own lines/);
    assert.match(res.stderr, /workflows\/long\.ts:1 {2}longBody/);
  });

  it('GIVEN a factory long only through the short functions nested in it WHEN checked THEN it passes', () => {
    const inner = (name: string) => `  const ${name} = () => {\n${statements(60)}\n  };`;
    const root = tree({
      'activities/factory.ts': `export function fooActivities() {\n${inner('a')}\n${inner('b')}\n${inner('c')}\n  return { a, b, c };\n}\n`,
      'workflows/empty.ts': 'export const NOTHING = 0;\n',
    });
    assert.deepEqual(overBound(root), []);
    const res = runCheck(root);
    assert.equal(res.status, 0, res.stderr);
  });

  it('GIVEN the exceptions list THEN each names the file, the enclosing function and why', () => {
    for (const [key, why] of Object.entries(ALLOWED_OVER)) {
      assert.match(
        key,
        /^(workflows|activities)\/[\w./-]+\.ts:[\w$]+>[\w$()]+$|^(workflows|activities)\/[\w./-]+\.ts:[\w$]+$/,
      );
      assert.ok(why.length > 10, `${key}: say why it is allowed`);
    }
  });
});
