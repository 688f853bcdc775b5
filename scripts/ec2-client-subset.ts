/**
 * Builds the EC2 client the worker loads (part of `npm run build`): `@aws-sdk/client-ec2` with only
 * the exports amiflow's runtime code imports. The package's CommonJS build is one 2 MB file with
 * every one of EC2's ~750 commands, paginators and waiters; an idle worker kept ~38 MB of RSS for it
 * (a bare Node 24 with the lean settings, after a full GC: 93 MB with it against 55 MB with
 * `@smithy/core` alone). Tree-shaken from the package's ES build by esbuild to the ~45 commands the
 * activities use it keeps ~22 MB (docs/sizing.md, "Idle worker").
 *
 * The exports are read from the sources' import declarations (value imports only), so a new command
 * imported by an activity is in the next build; esbuild fails the build if the package lacks one.
 * Everything else the package requires (`@smithy/*`, `@aws-sdk/core`, …) stays a plain `require`,
 * shared with the other AWS clients. `worker/ec2-client-subset.ts` points the worker at the result.
 *
 * Loaded on first use: the file the worker resolves the package to (`client-ec2.js`) only names the
 * exports, each a getter that loads the subset itself (`client-ec2.subset.js`) on first read, as
 * activities/sdk-modules.ts does for the other AWS clients. Compiled activities read an import at
 * the call (`client_ec2_1.DescribeImagesCommand`), so a worker that has made no EC2 call yet (idle,
 * or holding only its wait lease) never loads it: ~7 MB less RSS (docs/sizing.md, "Idle worker").
 * The first EC2 call pays for the load once (81–92 ms here).
 *
 *   node --import tsx scripts/ec2-client-subset.ts dist/vendor/client-ec2.js
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import ts from 'typescript';
import { subsetCodeFile } from '../worker/ec2-client-files';

export const EC2_CLIENT = '@aws-sdk/client-ec2';

const ROOT = path.resolve(__dirname, '..');
/**
 * The folders `npm run build` compiles (tsconfig.build.json's `include`): everything the built worker
 * process can load, so a command imported anywhere in it is in the subset.
 */
async function runtimeSources(root: string): Promise<string[]> {
  const config = JSON.parse(await readFile(path.join(root, 'tsconfig.build.json'), 'utf8')) as {
    include?: unknown;
  };
  if (!Array.isArray(config.include) || !config.include.every((d) => typeof d === 'string'))
    throw new Error('tsconfig.build.json: expected an include list of folders');
  return config.include;
}

/** Every TypeScript source under `dir` (not declaration files); the bench's transpile step walks them too. */
export async function tsFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files.push(...(await tsFiles(p)));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) files.push(p);
  }
  return files;
}

/** The names `source` imports from the EC2 client as values (not `import type`, not `type X`). */
export function ec2ValueImports(source: string, fileName = 'source.ts'): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, false);
  const names: string[] = [];
  for (const statement of file.statements) {
    if (!ts.isImportDeclaration(statement) && !ts.isExportDeclaration(statement)) continue;
    const from = statement.moduleSpecifier;
    if (!from || !ts.isStringLiteral(from) || from.text !== EC2_CLIENT) continue;
    if (ts.isExportDeclaration(statement)) {
      if (statement.isTypeOnly) continue;
      if (!statement.exportClause || !ts.isNamedExports(statement.exportClause))
        throw new Error(`${fileName}: 'export * from ${EC2_CLIENT}' would need the whole client`);
      for (const e of statement.exportClause.elements)
        if (!e.isTypeOnly) names.push((e.propertyName ?? e.name).text);
      continue;
    }
    const clause = statement.importClause;
    if (!clause || clause.isTypeOnly) continue;
    if (clause.name || (clause.namedBindings && ts.isNamespaceImport(clause.namedBindings)))
      throw new Error(
        `${fileName}: import the EC2 client's exports by name (a default or namespace import needs all of it)`,
      );
    for (const e of clause.namedBindings?.elements ?? [])
      if (!e.isTypeOnly) names.push((e.propertyName ?? e.name).text);
  }
  return names;
}

/** Every EC2 client export the worker's runtime code imports, sorted. */
export async function ec2ExportsUsed(root = ROOT): Promise<string[]> {
  const files = (
    await Promise.all((await runtimeSources(root)).map((d) => tsFiles(path.join(root, d))))
  ).flat();
  const names = new Set<string>();
  for (const file of files)
    for (const name of ec2ValueImports(await readFile(file, 'utf8'), file)) names.add(name);
  return [...names].sort();
}

/** The module the worker loads for the package: `names`, each loading `codeFile` on its first read. */
export function onFirstUseModule(names: readonly string[], codeFile: string): string {
  return [
    '"use strict";',
    '// The EC2 client subset, loaded on first use (scripts/ec2-client-subset.ts).',
    'Object.defineProperty(exports, "__esModule", { value: true });',
    'let loaded;',
    `const load = () => (loaded ??= require(${JSON.stringify(`./${path.basename(codeFile)}`)}));`,
    `for (const name of ${JSON.stringify(names)})`,
    '  Object.defineProperty(exports, name, { enumerable: true, get: () => load()[name] });',
    '',
  ].join('\n');
}

/**
 * Writes the subset (CommonJS) to {@link subsetCodeFile} and the module that loads it on first use to
 * `outFile`; returns the exports it carries.
 */
export async function buildEc2ClientSubset(outFile: string): Promise<string[]> {
  const names = await ec2ExportsUsed();
  const codeFile = subsetCodeFile(outFile);
  await build({
    stdin: { contents: `export { ${names.join(', ')} } from '${EC2_CLIENT}';`, resolveDir: ROOT },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    // The ES build: one module per command, so the unused ones can be left out.
    mainFields: ['module', 'main'],
    // Class names stay as the package has them (error names, logs).
    keepNames: true,
    logLevel: 'warning',
    outfile: codeFile,
    plugins: [
      {
        name: 'only-the-ec2-client',
        setup(b) {
          // Only the EC2 client's own modules go into the file; every other package is required.
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path === EC2_CLIENT || args.path.startsWith(`${EC2_CLIENT}/`)
              ? undefined
              : { path: args.path, external: true },
          );
        },
      },
    ],
  });
  await writeFile(outFile, onFirstUseModule(names, codeFile));
  return names;
}

async function main(): Promise<void> {
  const out = path.resolve(process.argv[2] ?? 'dist/vendor/client-ec2.js');
  const names = await buildEc2ClientSubset(out);
  console.log(`EC2 client subset: ${out} (${names.length} exports)`);
}

if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
