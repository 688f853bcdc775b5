/**
 * Prints the longest functions under the given folders (default: workflows/ and activities/), so the
 * "no function over about 120 lines" rule (STYLE.md) can be checked rather than guessed:
 *   node --import tsx scripts/function-lengths.ts [--top N] [--over LINES] [--by own|lines] [folder or file ...]
 *   node --import tsx scripts/function-lengths.ts --check [--root DIR]   (exit 1 naming each function over the bound)
 * A function is any declaration, method, arrow or function expression. `lines` counts every line from
 * its first to its last, nested functions included (what a reader scrolls through); `own` leaves out
 * the functions nested in it (what a reader has to hold at once: an `xActivities(deps)` factory is
 * long in lines but short in its own). Sorted by `own` unless `--by lines`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export interface FunctionLength {
  file: string;
  name: string;
  /** The name of the function it is nested in, if any (an anonymous body is known by its workflow). */
  within?: string;
  line: number;
  lines: number;
  own: number;
}

export function sourceFiles(folder: string): string[] {
  if (!statSync(folder).isDirectory()) return [folder];
  return readdirSync(folder).flatMap((entry) => {
    const full = path.join(folder, entry);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return full.endsWith('.ts') && !full.endsWith('.d.ts') ? [full] : [];
  });
}

/** The name a reader would search for: the declaration's own, else the variable or property it is assigned to. */
function functionName(node: ts.SignatureDeclaration): string {
  if (node.name !== undefined && ts.isIdentifier(node.name)) return node.name.text;
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (ts.isPropertyAssignment(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  return '(anonymous)';
}

export function functionLengths(file: string): FunctionLength[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: FunctionLength[] = [];
  const visit = (node: ts.Node, enclosing: FunctionLength | undefined): void => {
    let inner = enclosing;
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      inner = {
        file,
        name: functionName(node),
        ...(enclosing ? { within: enclosing.name } : {}),
        line: start + 1,
        lines,
        own: lines,
      };
      if (enclosing !== undefined) enclosing.own -= lines;
      found.push(inner);
    }
    ts.forEachChild(node, (child) => visit(child, inner));
  };
  visit(source, undefined);
  return found;
}

/** STYLE.md's bound, on `own` lines: a long factory of short activities is fine, a long body is not. */
export const MAX_OWN_LINES = 120;
export const CHECKED_FOLDERS = ['workflows', 'activities'] as const;

/**
 * Functions allowed over the bound for now, each with why, by `file:within>name` (a line number
 * moves with every edit above it). Keep this list short and shrinking: an entry is a debt, not a licence.
 */
export const ALLOWED_OVER: Readonly<Record<string, string>> = {};

/** The key ALLOWED_OVER names a function by. */
export function allowKey(f: FunctionLength): string {
  return `${f.file}:${f.within ? `${f.within}>` : ''}${f.name}`;
}

/** Every function in `folders` whose own length is over `max` and that ALLOWED_OVER does not name. */
export function overBound(
  root: string,
  folders: readonly string[] = CHECKED_FOLDERS,
  max = MAX_OWN_LINES,
): FunctionLength[] {
  return folders
    .flatMap((folder) => sourceFiles(path.join(root, folder)))
    .flatMap(functionLengths)
    .map((f) => ({ ...f, file: path.relative(root, f.file).split(path.sep).join('/') }))
    .filter((f) => f.own > max && ALLOWED_OVER[allowKey(f)] === undefined)
    .sort((a, b) => b.own - a.own);
}

function check(root: string): void {
  const over = overBound(root);
  if (over.length === 0) {
    console.log(`no function in ${CHECKED_FOLDERS.join('/, ')}/ is over ${MAX_OWN_LINES} own lines`);
    return;
  }
  console.error(
    `${over.length} function(s) over ${MAX_OWN_LINES} own lines (STYLE.md): split them into named steps`,
  );
  for (const f of over) console.error(`${String(f.own).padStart(5)}  ${f.file}:${f.line}  ${f.name}`);
  process.exit(1);
}

function main(): void {
  const args = process.argv.slice(2);
  if (args.includes('--check')) {
    const at = args.indexOf('--root');
    return check(path.resolve(at >= 0 ? (args[at + 1] ?? '.') : '.'));
  }
  let top = 15;
  let over = 0;
  let by: 'own' | 'lines' = 'own';
  const folders: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === '--top') top = Number(args[(i += 1)]);
    else if (arg === '--over') over = Number(args[(i += 1)]);
    else if (arg === '--by') by = args[(i += 1)] === 'lines' ? 'lines' : 'own';
    else if (arg !== undefined) folders.push(arg);
  }
  const all = (folders.length > 0 ? folders : ['workflows', 'activities'])
    .flatMap(sourceFiles)
    .flatMap(functionLengths)
    .filter((f) => f[by] > over)
    .sort((a, b) => b[by] - a[by])
    .slice(0, over > 0 ? undefined : top);
  console.log('  own  lines  function');
  for (const f of all) {
    console.log(
      `${String(f.own).padStart(5)}  ${String(f.lines).padStart(5)}  ${f.file}:${f.line}  ${f.name}`,
    );
  }
}

if (require.main === module) main();
