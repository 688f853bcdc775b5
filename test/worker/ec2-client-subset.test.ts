/**
 * The EC2 client subset the build writes for the worker (scripts/ec2-client-subset.ts) and the hook
 * that loads it (worker/ec2-client-subset.ts): it carries every EC2 export the runtime code imports
 * (a missing one would be `undefined` only when its activity first ran), it is a subset, what it
 * requires resolves to the same files as the package's own requires, and a Node 24 worker process
 * loads it in place of the package.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import ts from 'typescript';
import {
  EC2_CLIENT,
  buildEc2ClientSubset,
  ec2ExportsUsed,
  ec2ValueImports,
} from '../../scripts/ec2-client-subset';
import { subsetCodeFile } from '../../worker/ec2-client-files';
import { ROOT } from '../support/tools';

/** A Node 24 (module.registerHooks), as scripts/node24.sh finds it; undefined without one. */
function node24(): string | undefined {
  const res = spawnSync('bash', [path.join(ROOT, 'scripts', 'node24.sh')], { encoding: 'utf8' });
  return res.status === 0 ? res.stdout.trim() : undefined;
}

void describe('ec2ValueImports', () => {
  void it('GIVEN value, type-only and aliased imports WHEN read THEN only the values, by their exported name', () => {
    const source = [
      `import { DescribeImagesCommand, type Image, CreateTagsCommand as Tag } from '${EC2_CLIENT}';`,
      `import type { EC2Client } from '${EC2_CLIENT}';`,
      `import { z } from 'zod';`,
      `export { StopInstancesCommand } from '${EC2_CLIENT}';`,
    ].join('\n');
    assert.deepEqual(ec2ValueImports(source), [
      'DescribeImagesCommand',
      'CreateTagsCommand',
      'StopInstancesCommand',
    ]);
  });

  void it('GIVEN a namespace import WHEN read THEN refused: it would need the whole client', () => {
    assert.throws(
      () => ec2ValueImports(`import * as ec2 from '${EC2_CLIENT}';`, 'x.ts'),
      /x\.ts: import the EC2/,
    );
  });
});

void describe('the EC2 client subset', () => {
  let dir: string;
  let file: string;
  let names: string[];
  before(async () => {
    // Under the repository, as dist/vendor/ is: its requires resolve through the same node_modules.
    dir = mkdtempSync(path.join(ROOT, '.amiflow', 'ec2-subset-test-'));
    file = path.join(dir, 'vendor', 'client-ec2.js');
    names = await buildEc2ClientSubset(file);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  void it('GIVEN the build WHEN loaded THEN every export the runtime code imports is there, and EC2 commands it does not import are not', async () => {
    const subset = (await import(file)) as Record<string, unknown>;
    const full = (await import(EC2_CLIENT)) as Record<string, unknown>;
    assert.ok(names.includes('EC2Client') && names.includes('DescribeImagesCommand'), names.join(', '));
    for (const name of names) {
      assert.equal(typeof subset[name], typeof full[name], `${name} in the subset`);
      assert.notEqual(subset[name], undefined, `${name} in the subset`);
    }
    assert.equal(full.DescribeVpcsCommand !== undefined && subset.DescribeVpcsCommand, undefined);
  });

  void it('GIVEN the sources WHEN scanned THEN the subset carries each value import of every runtime file', async () => {
    const used = await ec2ExportsUsed();
    assert.deepEqual(names, used);
    // One file read independently: activities/aws.ts builds the client.
    const aws = ec2ValueImports(readFileSync(path.join(ROOT, 'activities', 'aws.ts'), 'utf8'));
    assert.ok(aws.includes('EC2Client'));
    for (const name of aws) assert.ok(used.includes(name), name);
  });

  void it('GIVEN the module the worker resolves the package to WHEN required THEN the subset loads only at the first read of an export, once', () => {
    const probe = `const before = Object.keys(require.cache).length;
      const ec2 = require(${JSON.stringify(file)});
      const code = ${JSON.stringify(subsetCodeFile(file))};
      const atRequire = code in require.cache;
      const names = Object.keys(ec2);
      const afterKeys = code in require.cache;
      const Describe = ec2.DescribeImagesCommand;
      console.log(JSON.stringify({ atRequire, afterKeys, loaded: code in require.cache,
        same: Describe === require(code).DescribeImagesCommand && ec2.DescribeImagesCommand === Describe,
        names: names.length, grew: Object.keys(require.cache).length - before }));`;
    const res = spawnSync(process.execPath, ['-e', probe], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    const seen = JSON.parse(res.stdout) as Record<string, unknown>;
    assert.deepEqual(
      { ...seen, grew: undefined },
      { atRequire: false, afterKeys: false, loaded: true, same: true, names: names.length, grew: undefined },
    );
    assert.ok((seen.grew as number) > 2, `the first read loaded ${String(seen.grew)} modules`);
  });

  void it('GIVEN the requires the subset makes WHEN resolved THEN each is the file the package itself would load', () => {
    const packageDir = path.dirname(require.resolve(`${EC2_CLIENT}/package.json`));
    const code = subsetCodeFile(file);
    const required = [...readFileSync(code, 'utf8').matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1] ?? '');
    assert.ok(required.length > 0);
    for (const spec of new Set(required))
      assert.equal(
        require.resolve(spec, { paths: [path.dirname(code)] }),
        require.resolve(spec, { paths: [packageDir] }),
        spec,
      );
  });

  const node = node24();
  void it(
    'GIVEN a worker process on Node 24 WHEN the hook is installed THEN the package name loads the subset, and not when turned off or when the subset’s code is missing',
    { skip: node ? false : 'no Node 24 (npm run setup installs one)' },
    () => {
      // The hook module (and what it imports) compiled next to the subset, as dist/worker/ is next
      // to dist/vendor/.
      const hook = path.join(dir, 'worker', 'ec2-client-subset.js');
      mkdirSync(path.dirname(hook), { recursive: true });
      for (const name of ['ec2-client-subset', 'ec2-client-files']) {
        const source = readFileSync(path.join(ROOT, 'worker', `${name}.ts`), 'utf8');
        const js = ts.transpileModule(source, {
          compilerOptions: {
            module: ts.ModuleKind.CommonJS,
            target: ts.ScriptTarget.ES2022,
            esModuleInterop: true,
          },
        }).outputText;
        writeFileSync(path.join(dir, 'worker', `${name}.js`), js);
      }
      // A module without the subset's code beside it (a partial copy of dist/): not used.
      const lonely = path.join(dir, 'lonely', 'client-ec2.js');
      mkdirSync(path.dirname(lonely), { recursive: true });
      writeFileSync(lonely, readFileSync(file));
      const probe = `const { ec2ClientSubset, useEc2ClientSubset } = require(${JSON.stringify(hook)});
        const lonely = useEc2ClientSubset(${JSON.stringify(lonely)});
        const ec2 = require('${EC2_CLIENT}');
        console.log(JSON.stringify({ ec2ClientSubset, lonely, resolved: require.resolve('${EC2_CLIENT}'),
          describeVpcs: typeof ec2.DescribeVpcsCommand, describeImages: typeof ec2.DescribeImagesCommand }));`;
      const run = (env: Record<string, string>) => {
        const res = spawnSync(node ?? 'node', ['-e', probe], {
          cwd: ROOT,
          encoding: 'utf8',
          env: { PATH: process.env.PATH ?? '', ...env },
        });
        assert.equal(res.status, 0, res.stderr);
        return JSON.parse(res.stdout) as Record<string, unknown>;
      };
      assert.deepEqual(run({}), {
        ec2ClientSubset: true,
        lonely: false,
        resolved: file,
        describeVpcs: 'undefined',
        describeImages: 'function',
      });
      const off = run({ AMIFLOW_EC2_CLIENT_SUBSET: 'off' });
      assert.equal(off.ec2ClientSubset, false);
      assert.equal(off.describeVpcs, 'function');
    },
  );
});
