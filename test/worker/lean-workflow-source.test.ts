/**
 * worker/lean-workflow-source.ts: the workflow bundle without comments, indentation or characters
 * above ASCII. What it must keep: the program (every value the code computes is the same), its line
 * numbers (the source map's only coordinate), what a tagged template reads as raw text, comments
 * marked for keeping, and any code it cannot parse as it was.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import vm from 'node:vm';
import { sources } from 'webpack';
import { leanSource, leanSourceEdits } from '../../worker/lean-workflow-source';
import { workflowBundle } from '../support/temporal';

/** Through webpack's own ReplaceSource, as the plugin edits the bundle. */
const lean = (code: string) =>
  leanSource(new sources.RawSource(code), sources.ReplaceSource)?.source().toString() ?? code;
/** What a script leaves in `out` (JSON), run in its own context. */
const run = (code: string): unknown => {
  const context: { out?: unknown } = {};
  vm.runInNewContext(code, context);
  return JSON.parse(JSON.stringify(context.out ?? null)) as unknown;
};
const lines = (code: string) => code.split('\n').length;
const nonAscii = (code: string) => (code.match(/[^\x00-\x7f]/g) ?? []).length;

void describe('leanSourceEdits', () => {
  void it('GIVEN comments, a "//" in a string and in a pattern WHEN made lean THEN the comments go, line for line, and the values stay', () => {
    const code = [
      '// a line comment',
      'const url = "http://example.com/a"; /* after */',
      'const re = /\\/\\/[a-z]+/;',
      '/**',
      ' * a block',
      ' * over lines',
      ' */',
      'const sum = 1/**/+/* x */2;',
      'const kind = typeof/**/url;',
      'out = { url, slashes: re.test("//ab"), sum, kind };',
    ].join('\n');
    const out = lean(code);
    assert.equal(lines(out), lines(code));
    assert.deepEqual(run(out), run(code));
    assert.deepEqual(run(out), { url: 'http://example.com/a', slashes: true, sum: 3, kind: 'string' });
    assert.doesNotMatch(out, /a line comment|a block|after|over lines/);
    assert.ok(out.length < code.length - 40, out);
  });

  void it('GIVEN a block comment holding a line break after return WHEN made lean THEN the statement still ends there', () => {
    const code =
      'function f() {\n  return /*\n  */ 1;\n}\nfunction g() {\n  return /* same line */ 2;\n}\nout = [f(), g()];';
    const out = lean(code);
    assert.deepEqual(run(code), [null, 2]);
    assert.deepEqual(run(out), run(code));
    assert.equal(lines(out), lines(code));
  });

  void it('GIVEN indentation in code and inside templates and strings WHEN made lean THEN only the code’s goes', () => {
    const code =
      'function f() {\n    const t = `a\n    b`;\n    const s = "x\\\n    y";\n    return [t, s];\n}\nout = f();';
    const out = lean(code);
    assert.deepEqual(run(out), run(code));
    assert.match(out, /\nconst t = `a\n {4}b`;/);
    assert.ok(!out.includes('\n    const'), out);
  });

  void it('GIVEN characters above ASCII in strings, templates, patterns, names and comments WHEN made lean THEN none is left and every value is the same', () => {
    const code = [
      '// a comment with → and —',
      "const arrow = 'key → value';",
      'const café = `${arrow} · ≥ 1`;',
      "const face = '😀';",
      'const re = /[→·]/;',
      'const reU = /^😀$/u;',
      'out = { arrow, café, face, faceLength: face.length, re: re.test("a→b"), reU: reU.test(face) };',
    ].join('\n');
    const out = lean(code);
    assert.equal(nonAscii(out), 0, out);
    assert.equal(lines(out), lines(code));
    assert.deepEqual(run(out), run(code));
    assert.deepEqual(run(out), {
      arrow: 'key → value',
      café: 'key → value · ≥ 1',
      face: '😀',
      faceLength: 2,
      re: true,
      reU: true,
    });
  });

  void it('GIVEN a tagged template with a character above ASCII WHEN made lean THEN its text stays as written (its raw form is the program’s)', () => {
    const code = 'const raw = String.raw`a → b`;\nconst plain = `a → b`;\nout = { raw, plain };';
    const out = lean(code);
    assert.deepEqual(run(out), { raw: 'a → b', plain: 'a → b' });
    assert.ok(out.includes('String.raw`a → b`'), out);
    assert.ok(out.includes('const plain = `a \\u2192 b`'), out);
  });

  void it('GIVEN comments marked for keeping and code that does not parse WHEN made lean THEN they are left as they are (a licence’s characters above ASCII escaped)', () => {
    const code = '/*! keep me */\n/* @license MIT © amiflow */\n// drop me\nout = 1;';
    const out = lean(code);
    assert.ok(out.includes('/*! keep me */') && out.includes('/* @license MIT \\u00a9 amiflow */'), out);
    assert.equal(nonAscii(out), 0, out);
    assert.ok(!out.includes('drop me'), out);
    assert.deepEqual(leanSourceEdits('const = ;'), []);
  });
});

void describe('the workflow bundle', () => {
  void it('GIVEN the bundle every worker loads WHEN read THEN it is ASCII only and holds neither comments nor path banners', async () => {
    const { code } = await workflowBundle();
    assert.equal(nonAscii(code), 0);
    // A comment of workflows/shared-modules.ts, and webpack's module path banner.
    assert.ok(!code.includes('Zod 4 builds some members'), 'a workflow source comment is in the bundle');
    assert.ok(!code.includes('!*** ./workflows/'), 'webpack path banners are in the bundle');
    // The code itself is there: a workflow's exported name and a contract's message.
    assert.match(code, /imageFromInstance/);
    assert.ok(code.length < 1_500_000, `${code.length} characters`);
  });
});
