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

/** A bad recipe (`text`) refused naming `field` at `line`, with a message matching `message`. */
const bad = (what: string, text: string, field: string, line: number, message: RegExp): Case => ({
  what,
  text,
  field,
  line,
  message,
});

const CASES: Case[] = [
  bad('YAML syntax error', withLine(7, '  instanceTypes: [t3.small'), '(syntax)', 8, /./),
  bad('wrong apiVersion', withLine(1, 'apiVersion: amiflow/v2'), 'apiVersion', 1, /must be amiflow\/v1/),
  bad('bad recipe name', withLine(2, 'recipe: Web_Server'), 'recipe', 2, /not a recipe name/),
  bad('bad region', withLine(3, 'region: moon-1'), 'region', 3, /not an AWS region/),
  bad(
    'unknown top-level field',
    withLine(3, 'region: eu-west-1\nschedule: daily'),
    'schedule',
    4,
    /not a known field/,
  ),
  bad('bad parent image id', withLine(5, '  imageId: ami-xyz'), 'parent.imageId', 5, /not an AMI id/),
  bad(
    'two parent sources',
    withLine(5, '  imageId: ami-0123456789abcdef0\n  ssmParameter: /aws/x'),
    'parent',
    4,
    /exactly one/,
  ),
  bad(
    'no parent source',
    withLine(5, '  {}').replace('parent:\n  {}', 'parent: {}'),
    'parent',
    4,
    /needs one of/,
  ),
  bad(
    'parent filter without owners',
    withLine(5, "  filter: { owners: [], name: 'al2023-*' }"),
    'parent.filter.owners',
    5,
    /at least one owner/,
  ),
  bad(
    'parent filter with a bad architecture',
    withLine(5, "  filter: { owners: [amazon], name: 'al2023-*', architecture: sparc }"),
    'parent.filter.architecture',
    5,
    /not an architecture/,
  ),
  bad(
    'bad SSM parameter name',
    withLine(5, '  ssmParameter: aws/service/x'),
    'parent.ssmParameter',
    5,
    /not an SSM parameter name/,
  ),
  bad(
    'no instance types',
    withLine(7, '  instanceTypes: []'),
    'builder.instanceTypes',
    7,
    /at least one instance type/,
  ),
  bad(
    'bad instance type',
    withLine(7, '  instanceTypes: [small]'),
    'builder.instanceTypes[0]',
    7,
    /not an instance type/,
  ),
  bad(
    'bad subnet id',
    withLine(7, '  instanceTypes: [t3.small]\n  subnetId: net-1'),
    'builder.subnetId',
    8,
    /not a subnet id/,
  ),
  bad(
    'bad root volume type',
    withLine(7, '  instanceTypes: [t3.small]\n  rootVolume: { type: ssd }'),
    'builder.rootVolume.type',
    8,
    /not a volume type/,
  ),
  bad(
    'reserved builder tag',
    withLine(7, "  instanceTypes: [t3.small]\n  tags: { 'amiflow:x': y }"),
    'builder.tags.amiflow:x',
    8,
    /reserved/,
  ),
  bad(
    'keep-builder TTL out of range',
    withLine(7, '  instanceTypes: [t3.small]\n  keepBuilderSeconds: 5'),
    'builder.keepBuilderSeconds',
    8,
    /from 300 to 604800/,
  ),
  bad(
    'unknown step kind',
    withLine(18, '    kind: ansible'),
    'build[0].kind',
    18,
    /'ansible' is not a step kind/,
  ),
  bad('step without a kind', withLine(18, ''), 'build[0].kind', 17, /needs a kind/),
  bad(
    'missing script file',
    withLine(19, '    script: missing.sh'),
    'build[0].script',
    19,
    /'missing.sh' was not found/,
  ),
  bad('empty script file', withLine(19, '    script: empty.sh'), 'build[0].script', 19, /is empty/),
  bad(
    'both commands and script',
    withLine(19, '    script: install.sh\n    commands: echo'),
    'build[0]',
    17,
    /both commands and script/,
  ),
  bad('neither commands nor script', withLine(19, ''), 'build[0]', 17, /needs commands or script/),
  bad(
    'timeout out of range',
    withLine(19, '    script: install.sh\n    timeoutSeconds: 999999'),
    'build[0].timeoutSeconds',
    20,
    /from 10 to 172800/,
  ),
  bad(
    'relative working directory',
    withLine(19, '    script: install.sh\n    workingDirectory: tmp'),
    'build[0].workingDirectory',
    20,
    /not an absolute path/,
  ),
  bad(
    'bad environment variable name',
    withLine(19, "    script: install.sh\n    env: { 'A-B': x }"),
    'build[0].env.A-B',
    20,
    /not an environment variable name/,
  ),
  bad(
    'unknown step field',
    withLine(19, '    script: install.sh\n    retries: 3'),
    'build[0].retries',
    20,
    /not a known field/,
  ),
  bad('bad step name', withLine(17, '  - name: "!bang"'), 'build[0].name', 17, /not a step name/),
  bad(
    'unknown component',
    withLine(21, '    component: nope'),
    'build[1].component',
    21,
    /'nope' is not a component.*declared: base/,
  ),
  bad(
    'unknown component parameter',
    withLine(21, '    component: base\n    with: { colour: red }'),
    'build[1].with.colour',
    22,
    /not a parameter of component 'base'/,
  ),
  bad(
    'undeclared placeholder in a component',
    withLine(15, '        commands: echo {{ host }}'),
    'components.base.steps[0].commands',
    15,
    /declares no parameter 'host'/,
  ),
  bad(
    'required component parameter not given',
    withLine(11, '      port: {}'),
    'build[1].with',
    20,
    /must give 'port'/,
  ),
  bad(
    'cyclic component include',
    withLine(15, '        commands: echo\n      - kind: component\n        component: base'),
    'components.base.steps[1].component',
    17,
    /includes itself: base → base/,
  ),
  bad(
    'duplicate step names in a phase',
    withLine(17, '  - name: base/listen'),
    'build[1].name',
    20,
    /used by another build step/,
  ),
  bad(
    'file step with a relative path',
    withLine(24, '    kind: file\n    path: etc/x\n    content: x').replace('    commands: nginx -t\n', ''),
    'validate[0].path',
    25,
    /not an absolute path/,
  ),
  bad(
    'file step with a bad mode',
    withLine(24, "    kind: file\n    path: /etc/x\n    content: x\n    mode: '999'").replace(
      '    commands: nginx -t\n',
      '',
    ),
    'validate[0].mode',
    27,
    /not a file mode/,
  ),
  bad(
    'document step with a non-list parameter',
    withLine(
      24,
      '    kind: document\n    document: AWS-RunPatchBaseline\n    parameters: { Operation: Install }',
    ).replace('    commands: nginx -t\n', ''),
    'validate[0].parameters.Operation',
    26,
    /lists of strings/,
  ),
  bad(
    'powershell on a linux builder',
    withLine(24, '    kind: powershell'),
    'validate[0].kind',
    24,
    /builder.platform: windows/,
  ),
  bad(
    'no build steps',
    GOOD.replace(/build:\n( .*\n|    .*\n)+/, 'build: []\n'),
    'build',
    16,
    /at least one build step/,
  ),
  bad(
    'image name without a unique placeholder',
    withLine(27, '  imageName: web'),
    'output.imageName',
    27,
    /must hold \{\{hash\}\}/,
  ),
  bad(
    'unknown image name placeholder',
    withLine(27, "  imageName: 'web-{{date}}-{{colour}}'"),
    'output.imageName',
    27,
    /'\{\{colour\}\}' is not a placeholder/,
  ),
  bad(
    'missing output',
    withLine(26, '').replace("  imageName: 'web-{{date}}-{{hash}}'\n", ''),
    'output',
    1,
    /./,
  ),
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
