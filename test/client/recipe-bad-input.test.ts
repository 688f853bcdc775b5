/**
 * Recipe files: the example parses into the resolved recipe the workflow takes (scripts inlined,
 * components expanded with their parameters); each kind of bad recipe is refused before anything
 * starts, naming the field and its line (`amiflow recipe validate` exits 2 and never connects).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../client/cli';
import type { RecipeIssue } from '../../client/recipe';
import { RecipeFileError, loadRecipeFile, parseRecipe } from '../../client/recipe';
import { buildImageInputSchema } from '../../contracts/recipe';
import { ROOT } from '../support/tools';

const EXAMPLE = path.join(ROOT, 'examples', 'web-recipe.yaml');

/** A valid recipe, line by line, so each bad case changes one line and names it. */
const GOOD = `apiVersion: amiflow/v1
recipe: web
region: eu-west-1
parent:
  imageId: ami-0123456789abcdef0
builder:
  instanceTypes: [t3.small]
components:
  base:
    parameters:
      port: { default: '80' }
    steps:
      - name: listen
        kind: shell
        commands: echo {{ port }}
build:
  - name: install
    kind: shell
    script: install.sh
  - kind: component
    component: base
validate:
  - name: check
    kind: shell
    commands: nginx -t
output:
  imageName: 'web-{{date}}-{{hash}}'
`;

const FILES: Record<string, string> = { 'install.sh': 'dnf install -y nginx\n', 'empty.sh': '  \n' };
const read = (rel: string) => FILES[rel];

/** GOOD with line `n` (1-based) replaced by `text` (several lines allowed, '' deletes it). */
function withLine(n: number, text: string): string {
  const lines = GOOD.split('\n');
  lines.splice(n - 1, 1, ...(text === '' ? [] : [text]));
  return lines.join('\n');
}

function issuesOf(text: string): RecipeIssue[] {
  try {
    parseRecipe(text, 'r.yaml', read);
  } catch (err) {
    if (err instanceof RecipeFileError) return err.issues;
    throw err;
  }
  assert.fail('the recipe was accepted');
}

interface Case {
  what: string;
  text: string;
  field: string;
  line: number;
  message: RegExp;
}

const CASES: Case[] = [
  {
    what: 'YAML syntax error',
    text: withLine(7, '  instanceTypes: [t3.small'),
    field: '(syntax)',
    line: 8,
    message: /./,
  },
  {
    what: 'wrong apiVersion',
    text: withLine(1, 'apiVersion: amiflow/v2'),
    field: 'apiVersion',
    line: 1,
    message: /must be amiflow\/v1/,
  },
  {
    what: 'bad recipe name',
    text: withLine(2, 'recipe: Web_Server'),
    field: 'recipe',
    line: 2,
    message: /not a recipe name/,
  },
  {
    what: 'bad region',
    text: withLine(3, 'region: moon-1'),
    field: 'region',
    line: 3,
    message: /not an AWS region/,
  },
  {
    what: 'unknown top-level field',
    text: withLine(3, 'region: eu-west-1\nschedule: daily'),
    field: 'schedule',
    line: 4,
    message: /not a known field/,
  },
  {
    what: 'bad parent image id',
    text: withLine(5, '  imageId: ami-xyz'),
    field: 'parent.imageId',
    line: 5,
    message: /not an AMI id/,
  },
  {
    what: 'two parent sources',
    text: withLine(5, '  imageId: ami-0123456789abcdef0\n  ssmParameter: /aws/x'),
    field: 'parent',
    line: 4,
    message: /exactly one/,
  },
  {
    what: 'no parent source',
    text: withLine(5, '  {}').replace('parent:\n  {}', 'parent: {}'),
    field: 'parent',
    line: 4,
    message: /needs one of/,
  },
  {
    what: 'parent filter without owners',
    text: withLine(5, "  filter: { owners: [], name: 'al2023-*' }"),
    field: 'parent.filter.owners',
    line: 5,
    message: /at least one owner/,
  },
  {
    what: 'parent filter with a bad architecture',
    text: withLine(5, "  filter: { owners: [amazon], name: 'al2023-*', architecture: sparc }"),
    field: 'parent.filter.architecture',
    line: 5,
    message: /not an architecture/,
  },
  {
    what: 'bad SSM parameter name',
    text: withLine(5, '  ssmParameter: aws/service/x'),
    field: 'parent.ssmParameter',
    line: 5,
    message: /not an SSM parameter name/,
  },
  {
    what: 'no instance types',
    text: withLine(7, '  instanceTypes: []'),
    field: 'builder.instanceTypes',
    line: 7,
    message: /at least one instance type/,
  },
  {
    what: 'bad instance type',
    text: withLine(7, '  instanceTypes: [small]'),
    field: 'builder.instanceTypes[0]',
    line: 7,
    message: /not an instance type/,
  },
  {
    what: 'bad subnet id',
    text: withLine(7, '  instanceTypes: [t3.small]\n  subnetId: net-1'),
    field: 'builder.subnetId',
    line: 8,
    message: /not a subnet id/,
  },
  {
    what: 'bad root volume type',
    text: withLine(7, '  instanceTypes: [t3.small]\n  rootVolume: { type: ssd }'),
    field: 'builder.rootVolume.type',
    line: 8,
    message: /not a volume type/,
  },
  {
    what: 'reserved builder tag',
    text: withLine(7, "  instanceTypes: [t3.small]\n  tags: { 'amiflow:x': y }"),
    field: 'builder.tags.amiflow:x',
    line: 8,
    message: /reserved/,
  },
  {
    what: 'keep-builder TTL out of range',
    text: withLine(7, '  instanceTypes: [t3.small]\n  keepBuilderSeconds: 5'),
    field: 'builder.keepBuilderSeconds',
    line: 8,
    message: /from 300 to 604800/,
  },
  {
    what: 'unknown step kind',
    text: withLine(18, '    kind: ansible'),
    field: 'build[0].kind',
    line: 18,
    message: /'ansible' is not a step kind/,
  },
  {
    what: 'step without a kind',
    text: withLine(18, ''),
    field: 'build[0].kind',
    line: 17,
    message: /needs a kind/,
  },
  {
    what: 'missing script file',
    text: withLine(19, '    script: missing.sh'),
    field: 'build[0].script',
    line: 19,
    message: /'missing.sh' was not found/,
  },
  {
    what: 'empty script file',
    text: withLine(19, '    script: empty.sh'),
    field: 'build[0].script',
    line: 19,
    message: /is empty/,
  },
  {
    what: 'both commands and script',
    text: withLine(19, '    script: install.sh\n    commands: echo'),
    field: 'build[0]',
    line: 17,
    message: /both commands and script/,
  },
  {
    what: 'neither commands nor script',
    text: withLine(19, ''),
    field: 'build[0]',
    line: 17,
    message: /needs commands or script/,
  },
  {
    what: 'timeout out of range',
    text: withLine(19, '    script: install.sh\n    timeoutSeconds: 999999'),
    field: 'build[0].timeoutSeconds',
    line: 20,
    message: /from 10 to 172800/,
  },
  {
    what: 'relative working directory',
    text: withLine(19, '    script: install.sh\n    workingDirectory: tmp'),
    field: 'build[0].workingDirectory',
    line: 20,
    message: /not an absolute path/,
  },
  {
    what: 'bad environment variable name',
    text: withLine(19, "    script: install.sh\n    env: { 'A-B': x }"),
    field: 'build[0].env.A-B',
    line: 20,
    message: /not an environment variable name/,
  },
  {
    what: 'unknown step field',
    text: withLine(19, '    script: install.sh\n    retries: 3'),
    field: 'build[0].retries',
    line: 20,
    message: /not a known field/,
  },
  {
    what: 'bad step name',
    text: withLine(17, '  - name: "!bang"'),
    field: 'build[0].name',
    line: 17,
    message: /not a step name/,
  },
  {
    what: 'unknown component',
    text: withLine(21, '    component: nope'),
    field: 'build[1].component',
    line: 21,
    message: /'nope' is not a component.*declared: base/,
  },
  {
    what: 'unknown component parameter',
    text: withLine(21, '    component: base\n    with: { colour: red }'),
    field: 'build[1].with.colour',
    line: 22,
    message: /not a parameter of component 'base'/,
  },
  {
    what: 'undeclared placeholder in a component',
    text: withLine(15, '        commands: echo {{ host }}'),
    field: 'components.base.steps[0].commands',
    line: 15,
    message: /declares no parameter 'host'/,
  },
  {
    what: 'required component parameter not given',
    text: withLine(11, '      port: {}'),
    field: 'build[1].with',
    line: 20,
    message: /must give 'port'/,
  },
  {
    what: 'cyclic component include',
    text: withLine(15, '        commands: echo\n      - kind: component\n        component: base'),
    field: 'components.base.steps[1].component',
    line: 17,
    message: /includes itself: base → base/,
  },
  {
    what: 'duplicate step names in a phase',
    text: withLine(17, '  - name: base/listen'),
    field: 'build[1].name',
    line: 20,
    message: /used by another build step/,
  },
  {
    what: 'file step with a relative path',
    text: withLine(24, '    kind: file\n    path: etc/x\n    content: x').replace(
      '    commands: nginx -t\n',
      '',
    ),
    field: 'validate[0].path',
    line: 25,
    message: /not an absolute path/,
  },
  {
    what: 'file step with a bad mode',
    text: withLine(24, "    kind: file\n    path: /etc/x\n    content: x\n    mode: '999'").replace(
      '    commands: nginx -t\n',
      '',
    ),
    field: 'validate[0].mode',
    line: 27,
    message: /not a file mode/,
  },
  {
    what: 'document step with a non-list parameter',
    text: withLine(
      24,
      '    kind: document\n    document: AWS-RunPatchBaseline\n    parameters: { Operation: Install }',
    ).replace('    commands: nginx -t\n', ''),
    field: 'validate[0].parameters.Operation',
    line: 26,
    message: /lists of strings/,
  },
  {
    what: 'powershell on a linux builder',
    text: withLine(24, '    kind: powershell'),
    field: 'validate[0].kind',
    line: 24,
    message: /builder.platform: windows/,
  },
  {
    what: 'no build steps',
    text: GOOD.replace(/build:\n(  .*\n|    .*\n)+/, 'build: []\n'),
    field: 'build',
    line: 16,
    message: /at least one build step/,
  },
  {
    what: 'image name without a unique placeholder',
    text: withLine(27, '  imageName: web'),
    field: 'output.imageName',
    line: 27,
    message: /must hold \{\{hash\}\}/,
  },
  {
    what: 'unknown image name placeholder',
    text: withLine(27, "  imageName: 'web-{{date}}-{{colour}}'"),
    field: 'output.imageName',
    line: 27,
    message: /'\{\{colour\}\}' is not a placeholder/,
  },
  {
    what: 'missing output',
    text: withLine(26, '').replace("  imageName: 'web-{{date}}-{{hash}}'\n", ''),
    field: 'output',
    line: 1,
    message: /./,
  },
];

describe('recipe files', () => {
  it('GIVEN the example recipe WHEN loaded THEN scripts are inlined, the component expanded with its parameter, and the workflow input schema accepts it', () => {
    const { input, warnings } = loadRecipeFile(EXAMPLE);
    assert.deepEqual(warnings, []);
    assert.equal(buildImageInputSchema.safeParse(input).success, true);
    assert.deepEqual(
      input.build.map((s) => `${s.kind}:${s.name}`),
      [
        'shell:install web server',
        'file:site config',
        'file:harden/sshd config',
        'shell:harden/remove compilers',
        'document:patch',
        'reboot:reboot after patching',
      ],
    );
    const [install, , sshd] = input.build;
    assert.ok(install?.kind === 'shell' && install.commands.includes('dnf install -y nginx'));
    assert.ok(sshd?.kind === 'file' && sshd.content.startsWith('Port 2222\n'));
  });

  it('GIVEN the minimal recipe WHEN parsed THEN it is valid and the component default applies', () => {
    const { input } = parseRecipe(GOOD, 'r.yaml', read);
    const listen = input.build[1];
    assert.ok(listen?.kind === 'shell');
    assert.equal(listen.name, 'base/listen');
    assert.equal(listen.commands, 'echo 80');
  });

  it('GIVEN a component never included WHEN parsed THEN it loads with a warning naming it', () => {
    const text = GOOD.replace('  - kind: component\n    component: base\n', '');
    assert.deepEqual(parseRecipe(text, 'r.yaml', read).warnings, [
      'component(s) declared but never included: base',
    ]);
  });

  it(`has at least 30 kinds of bad recipe (${CASES.length})`, () => assert.ok(CASES.length >= 30));

  for (const c of CASES)
    it(`GIVEN ${c.what} WHEN loaded THEN it is refused naming ${c.field} at line ${c.line}`, () => {
      const issues = issuesOf(c.text);
      const hit = issues.find((i) => i.field === c.field);
      assert.ok(hit, `no issue for ${c.field}: ${JSON.stringify(issues)}`);
      assert.match(hit.message, c.message);
      assert.equal(hit.line, c.line, JSON.stringify(hit));
    });

  it('GIVEN a bad recipe file WHEN `amiflow recipe validate` runs THEN it exits 2 with the issues in JSON and never connects', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(path.join(tmpdir(), 'recipe-'));
    const file = path.join(dir, 'bad.recipe.yaml');
    await writeFile(file, withLine(19, '    script: missing.sh'));
    const out: string[] = [];
    const [log, error] = [console.log, console.error];
    console.log = (...args: unknown[]) => out.push(args.join(' '));
    console.error = () => undefined;
    let code: number;
    try {
      code = await main(['--json', 'recipe', 'validate', file], () =>
        assert.fail('validate must not connect'),
      );
    } finally {
      [console.log, console.error] = [log, error];
    }
    assert.equal(code, 2);
    const err = JSON.parse(out.join('\n')) as { error: { kind: string; issues: RecipeIssue[] } };
    assert.equal(err.error.kind, 'invalid-recipe');
    assert.equal(err.error.issues[0]?.field, 'build[0].script');
    assert.equal(err.error.issues[0]?.line, 19);
  });
});
