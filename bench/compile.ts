/**
 * Transpiles the sources the memory benchmark's worker process needs into .amiflow/bench/ (ignored
 * by git), so that process runs plain JavaScript with `node`, as `node dist/worker/main.js` does in
 * production, without the TypeScript loader's own memory in the figure.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ts from 'typescript';
import { tsFiles } from '../scripts/ec2-client-subset';

const ROOT = path.resolve(__dirname, '..');
export const OUT_DIR = path.join(ROOT, '.amiflow', 'bench');
const SOURCES = ['activities', 'worker', 'workflows', 'bench', 'contracts', 'client', 'devkit', 'shared'];

/** Returns the path of `relative` (a .ts file under the repository) once transpiled. */
export async function compileForBench(relative: string): Promise<string> {
  const files = (await Promise.all(SOURCES.map((d) => tsFiles(path.join(ROOT, d))))).flat();
  await Promise.all(
    files.map(async (file) => {
      const out = ts.transpileModule(await readFile(file, 'utf8'), {
        fileName: file,
        compilerOptions: {
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.CommonJS,
          esModuleInterop: true,
        },
      });
      const target = path.join(OUT_DIR, path.relative(ROOT, file)).replace(/\.ts$/, '.js');
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, out.outputText);
    }),
  );
  return path.join(OUT_DIR, relative).replace(/\.ts$/, '.js');
}
