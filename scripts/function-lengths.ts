/**
 * Prints the longest functions under the given folders (default: workflows/ and activities/), so the
 * "no function over about 120 lines" rule (STYLE.md) can be checked rather than guessed:
 *   node --import tsx scripts/function-lengths.ts [--top N] [--over LINES] [--by own|lines] [folder or file ...]
 * A function is any declaration, method, arrow or function expression. `lines` counts every line from
 * its first to its last, nested functions included (what a reader scrolls through); `own` leaves out
 * the functions nested in it (what a reader has to hold at once: an `xActivities(deps)` factory is
 * long in lines but short in its own). Sorted by `own` unless `--by lines`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

interface FunctionLength {
  file: string;
  name: string;
  line: number;
  lines: number;
  own: number;
}

function sourceFiles(folder: string): string[] {
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

function functionLengths(file: string): FunctionLength[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: FunctionLength[] = [];
  const visit = (node: ts.Node, enclosing: FunctionLength | undefined): void => {
    let inner = enclosing;
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      inner = { file, name: functionName(node), line: start + 1, lines, own: lines };
      if (enclosing !== undefined) enclosing.own -= lines;
      found.push(inner);
    }
    ts.forEachChild(node, (child) => visit(child, inner));
  };
  visit(source, undefined);
  return found;
}

function main(): void {
  const args = process.argv.slice(2);
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

main();
