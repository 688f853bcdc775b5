/**
 * The workflow bundle's text, made smaller for the two copies every worker holds (issue 13's idle
 * RSS): V8 keeps a script's whole source for as long as its functions live, in the main thread and
 * in the workflow thread. Webpack's development output keeps every comment, its indentation and each
 * module's path banner, ~44 % of the ~1.9 MB bundle; and a single character above U+00FF anywhere
 * in it (a `→` in a comment or a message) makes V8 store the whole text two bytes per character.
 *
 * So, after webpack has rendered the bundle and before its source map is written:
 * - each comment goes, but for the line breaks it held (line numbers, the source map's only
 *   coordinate, stay as they were; a block comment on one line between two tokens becomes a space,
 *   so that `a/**\/b` cannot join them). Comments marked for keeping (`/*!`, `@license`,
 *   `@preserve`) stay.
 * - the indentation at the start of each line goes (never inside a string or template);
 * - every character outside ASCII is written as its `\uXXXX` escape, which is the same string, the
 *   same identifier or the same pattern to the parser; only a tagged template's raw text could tell
 *   the difference, so those are left as written.
 * Measured on the whole worker: 1.88 MB → ~1.05 MB of one-byte text, ~4 MB less RSS (docs/sizing.md).
 *
 * The edits are found by parsing the bundle (acorn), never by pattern: a `//` inside a string or a
 * regular expression is not a comment. Code that does not parse is left as it is.
 */
import type { Comment, Node } from 'acorn';
import { parse } from 'acorn';

/** One edit of the text: [start, end) becomes `text`. */
export interface SourceEdit {
  start: number;
  end: number;
  text: string;
}

const KEEP_COMMENT = /^\/\*!|@license|@preserve/;
/** JavaScript's line terminators other than \n: a comment holding one is left (it can end a statement). */
const OTHER_LINE_TERMINATOR = /[\r\u2028\u2029]/;

/** The ranges of every tagged template's text: their raw strings are the program's to read. */
function taggedTemplateRanges(program: Node): [number, number][] {
  const ranges: [number, number][] = [];
  const pending: unknown[] = [program];
  while (pending.length > 0) {
    const value = pending.pop();
    if (Array.isArray(value)) {
      pending.push(...(value as unknown[]));
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    const node = value as Node & { quasi?: Node };
    if (node.type === 'TaggedTemplateExpression' && node.quasi)
      ranges.push([node.quasi.start, node.quasi.end]);
    for (const [key, child] of Object.entries(node))
      if (key !== 'loc' && child !== null && typeof child === 'object') pending.push(child);
  }
  return ranges.sort((a, b) => a[0] - b[0]);
}

/**
 * `text` (one token) with each character above ASCII as its escape. In a pattern, one `\uXXXX` per
 * UTF-16 unit (a pair of them is one code point under the `u` flag, as the character was); elsewhere
 * one escape per code point, `\u{…}` above U+FFFF (an identifier accepts no escaped surrogates).
 */
function escapeNonAscii(text: string, pattern: boolean): string {
  const unit = (c: number) => `\\u${c.toString(16).padStart(4, '0')}`;
  if (pattern) return text.replace(/[^\x00-\x7f]/g, (c) => unit(c.charCodeAt(0)));
  return text.replace(/[^\x00-\x7f]/gu, (c) => {
    const point = c.codePointAt(0) ?? 0;
    return point > 0xffff ? `\\u{${point.toString(16)}}` : unit(point);
  });
}

/** The edits that make `code` lean (above), in order; empty when it does not parse as a script. */
export function leanSourceEdits(code: string): SourceEdit[] {
  const comments: Comment[] = [];
  const tokens: { start: number; end: number; label: string }[] = [];
  let program: Node;
  try {
    program = parse(code, {
      ecmaVersion: 'latest',
      sourceType: 'script',
      allowHashBang: true,
      allowReturnOutsideFunction: true,
      onComment: comments,
      onToken: (t) => tokens.push({ start: t.start, end: t.end, label: t.type.label }),
    });
  } catch {
    return [];
  }
  const edits: SourceEdit[] = [];
  for (const c of comments) {
    const text = code.slice(c.start, c.end);
    if (OTHER_LINE_TERMINATOR.test(text)) continue;
    if (KEEP_COMMENT.test(text)) {
      // Kept, but one-byte: a `©` in a licence would make the whole text two-byte again.
      if (/[^\x00-\x7f]/.test(text)) edits.push({ ...c, text: escapeNonAscii(text, true) });
      continue;
    }
    const breaks = text.replace(/[^\n]/g, '');
    // A one-line block comment between two tokens becomes a space; beside whitespace, nothing.
    const spaced = /\s/.test(code[c.start - 1] ?? ' ') || /\s/.test(code[c.end] ?? ' ');
    edits.push({ ...c, text: c.type === 'Block' && breaks === '' && !spaced ? ' ' : breaks });
  }
  // Gaps between tokens and comments: only there is leading whitespace not part of a value.
  const spans = [...tokens, ...comments].sort((a, b) => a.start - b.start);
  let from = 0;
  for (const span of [...spans, { start: code.length, end: code.length }]) {
    const gap = code.slice(from, span.start);
    for (const m of gap.matchAll(/\n([ \t]+)/g)) {
      const start = from + (m.index ?? 0) + 1;
      edits.push({ start, end: start + (m[1]?.length ?? 0), text: '' });
    }
    from = Math.max(from, span.end);
  }
  // Characters above ASCII in tokens (strings, templates, patterns, names), not in a tagged
  // template's text. Whitespace above ASCII between tokens has no escape; it stays.
  const tagged = taggedTemplateRanges(program);
  for (const t of tokens) {
    const text = code.slice(t.start, t.end);
    if (!/[^\x00-\x7f]/.test(text) || tagged.some(([s, e]) => s <= t.start && t.start < e)) continue;
    edits.push({ start: t.start, end: t.end, text: escapeNonAscii(text, t.label === 'regexp') });
  }
  return edits.sort((a, b) => a.start - b.start);
}

/** The parts of webpack's API the plugin uses, typed here: webpack is the SDK's dependency, not ours. */
interface SourceLike {
  source(): string | Buffer;
}
interface ReplaceSourceLike extends SourceLike {
  replace(start: number, end: number, text: string): void;
}
interface WebpackLike {
  Compilation: { PROCESS_ASSETS_STAGE_OPTIMIZE_SIZE: number };
  sources: { ReplaceSource: new (source: SourceLike) => ReplaceSourceLike };
}

/**
 * `source` made lean through webpack's `ReplaceSource` (which carries its source map along), or
 * undefined when there is nothing to change: what the plugin below does to each asset.
 */
export function leanSource<S extends SourceLike>(
  source: S,
  ReplaceSource: new (source: S) => ReplaceSourceLike,
): SourceLike | undefined {
  const edits = leanSourceEdits(source.source().toString());
  if (edits.length === 0) return undefined;
  const edited = new ReplaceSource(source);
  // ReplaceSource's end is inclusive.
  for (const e of edits) edited.replace(e.start, e.end - 1, e.text);
  return edited;
}

interface CompilationLike {
  hooks: {
    processAssets: {
      tap(opts: { name: string; stage: number }, fn: (assets: Record<string, unknown>) => void): void;
    };
  };
  getAsset(name: string): { source: SourceLike } | undefined;
  updateAsset(name: string, source: unknown): void;
}
export interface CompilerLike {
  webpack: WebpackLike;
  hooks: { thisCompilation: { tap(name: string, fn: (compilation: CompilationLike) => void): void } };
}

const PLUGIN = 'amiflow-lean-workflow-source';

/**
 * The webpack plugin: {@link leanSource} on each JavaScript asset, at the size-optimising stage, so the devtool plugin that runs after it writes a
 * source map of the edited text (line for line the same as before).
 */
export class LeanWorkflowSource {
  apply(compiler: CompilerLike): void {
    const { Compilation, sources } = compiler.webpack;
    compiler.hooks.thisCompilation.tap(PLUGIN, (compilation) => {
      compilation.hooks.processAssets.tap(
        { name: PLUGIN, stage: Compilation.PROCESS_ASSETS_STAGE_OPTIMIZE_SIZE },
        (assets) => {
          for (const name of Object.keys(assets)) {
            if (!name.endsWith('.js')) continue;
            const asset = compilation.getAsset(name);
            if (!asset) continue;
            const edited = leanSource(asset.source, sources.ReplaceSource);
            if (edited) compilation.updateAsset(name, edited);
          }
        },
      );
    });
  }
}
