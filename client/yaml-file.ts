/**
 * What the YAML files amiflow reads (plan files, recipe files) share: every problem reported at
 * once with its line, column and field (`plan.yaml:14:11: pipelines[0].schedule.cron: …`), YAML
 * syntax errors in the same form, and the line of a field found by its path in the document.
 */
import type { Document, LineCounter, Node as YamlNode } from 'yaml';
import { isMap, isScalar } from 'yaml';
import type { z } from 'zod';

export type Path = (string | number)[];

/** One problem of a file: where it is and what is wrong. */
export interface FileIssue {
  line: number;
  column: number;
  field: string;
  message: string;
}

/** A file refused with every problem it has, each on its own line with `file:line:column: field:`. */
export class FileIssuesError extends Error {
  constructor(
    readonly source: string,
    readonly issues: FileIssue[],
  ) {
    super(
      `${source}: ${issues.length} problem(s):\n` +
        issues.map((i) => `  ${source}:${i.line}:${i.column}: ${i.field}: ${i.message}`).join('\n'),
    );
  }

  /** The one issue of a file that could not be read at all (missing, a folder, too large…). */
  static unreadable(err: unknown): FileIssue[] {
    return [
      {
        line: 1,
        column: 1,
        field: '(file)',
        message: `cannot be read: ${err instanceof Error ? err.message : String(err)}`,
      },
    ];
  }
}

/** `build[2].script`, `pipelines[0].schedule.cron`: how a path reads in a message ('' for the whole file). */
export function pathText(p: readonly PropertyKey[]): string {
  let out = '';
  for (const part of p)
    out += typeof part === 'number' ? `[${part}]` : out === '' ? String(part) : `.${String(part)}`;
  return out;
}

/** The document's YAML syntax errors as issues (field `(syntax)`), at their line and column. */
export function syntaxIssues(doc: Document): FileIssue[] {
  return doc.errors.map((e) => ({
    line: e.linePos?.[0].line ?? 1,
    column: e.linePos?.[0].col ?? 1,
    field: '(syntax)',
    message: e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? e.message,
  }));
}

/** A failed parse's issues by path, one per unknown key. */
export function zodIssues(error: z.ZodError): { path: Path; message: string }[] {
  return error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ path: [...(i.path as Path), k], message: i.message }))
      : [{ path: i.path as Path, message: i.message }],
  );
}

/** The line and column of the deepest node along a path that exists (a map entry: where its key is). */
export function positionIn(doc: Document, lineCounter: LineCounter) {
  return (p: Path): { line: number; column: number } => {
    const at = (offset: number) => {
      const pos = lineCounter.linePos(offset);
      return { line: pos.line, column: pos.col };
    };
    for (let n = p.length; n >= 0; n -= 1) {
      const last = p[n - 1];
      const parent = n > 0 ? (doc.getIn(p.slice(0, n - 1), true) as YamlNode | undefined) : undefined;
      if (isMap(parent) && typeof last === 'string') {
        const pair = parent.items.find((it) => isScalar(it.key) && String(it.key.value) === last);
        if (pair && isScalar(pair.key) && pair.key.range) return at(pair.key.range[0]);
      }
      const node = doc.getIn(p.slice(0, n), true) as YamlNode | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) return at(node.range[0]);
    }
    return { line: 1, column: 1 };
  };
}

/**
 * The issues at their place in the file, in line order: `whole` names a problem of the file itself
 * (an empty path).
 */
export function placedIssues(
  issues: readonly { path: Path; message: string }[],
  position: (p: Path) => { line: number; column: number },
  whole: string,
): FileIssue[] {
  return issues
    .map((i) => ({ ...position(i.path), field: pathText(i.path) || whole, message: i.message }))
    .sort((a, b) => a.line - b.line || a.column - b.column);
}
