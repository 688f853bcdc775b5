/**
 * Where the EC2 client subset's two files sit (scripts/ec2-client-subset.ts writes them,
 * worker/ec2-client-subset.ts loads them): the module the package resolves to, and next to it the
 * subset's code, which that module loads on first use. No imports, no side effects: the build
 * script and the worker's start-up both read it.
 */
export function subsetCodeFile(moduleFile: string): string {
  return moduleFile.replace(/\.js$/, '') + '.subset.js';
}
