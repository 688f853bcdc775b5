/**
 * The bad-input corpus: every CLI command and every `start*` (and id-taking method) of the client
 * library, each given something it must refuse before any workflow starts or AWS is called. A case
 * names the flag (CLI) or field (library) its refusal must name. Run by bad-input-corpus.test.ts.
 */
import type { AmiflowClient } from '../../client';
import type {
  BackupInput,
  ComplianceScanInput,
  CopyImageInput,
  GoldenImageInput,
  ImageFromInstanceInput,
  MigrateInstanceInput,
  ShareImageInput,
} from '../../contracts';

/** A secret the environment holds during the corpus: no refusal may echo it. */
export const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYCANARY0SECRET';

export interface CliCase {
  command: string;
  argv: string[];
  /** What the refusal must name (a flag, an argument, a field), found verbatim in stderr. */
  names: string;
}

export interface LibraryCase {
  method: string;
  call: (client: AmiflowClient) => Promise<unknown>;
  names: string;
}

const PLAN = 'examples/plan.yaml';
const R = ['--region', 'eu-west-1'];
const CTRL_ID = 'share-image/eu-west-1/\u001b[2J\u0007';
const LONG_ID = `share-image/${'x'.repeat(1200)}`;
const NUL_ID = 'golden-image/a\u0000b';
const BIDI_ID = 'copy-image/\u202eevil';

/** Every way a workflow (or schedule) id argument is bad: control characters, length, blanks. */
const BAD_IDS: [string, string][] = [
  ['escape sequence', CTRL_ID],
  ['1,200 characters', LONG_ID],
  ['NUL', NUL_ID],
  ['bidi override', BIDI_ID],
  ['newline', 'golden-image/a\nb'],
  ['leading space', ' share-image/x'],
];

function cli(command: string, argv: string[], names: string): CliCase {
  return { command, argv, names };
}

const IMAGE_CREATE = ['image', 'create', ...R, '--instance', 'i-0123456789abcdef0', '--name', 'web-1'];
const IMAGE_SHARE = ['image', 'share', ...R, '--image', 'ami-0123456789abcdef0'];
const SHARE_TO = [...IMAGE_SHARE, '--target-account', '111122223333'];
const IMAGE_COPY = ['image', 'copy', ...R, '--image', 'ami-0123456789abcdef0'];
const COPY_TO = [...IMAGE_COPY, '--to', 'us-east-1'];
const MIGRATE = ['instance', 'migrate', ...R, '--instance', 'i-0123456789abcdef0'];
const MIGRATE_TO = [...MIGRATE, '--to-az', 'eu-west-1b'];
const SCAN = ['compliance', 'scan', '--name', 'prod', ...R];
const SCHED = ['compliance', 'schedule', '--name', 'prod', ...R];
const ENFORCE = ['guardrails', 'enforce', '--name', 'prod', ...R];

export const CLI_CASES: CliCase[] = [
  // image create
  cli('image create', [...IMAGE_CREATE, '--instance', 'i-1'], '--instance'),
  cli('image create', [...IMAGE_CREATE, '--instance', 'i-0123456789ABCDEF0'], '--instance'),
  cli('image create', [...IMAGE_CREATE, '--name', 'ab'], '--name'),
  cli('image create', [...IMAGE_CREATE, '--name', 'x'.repeat(129)], '--name'),
  cli('image create', [...IMAGE_CREATE, '--name', 'web#1!'], '--name'),
  cli('image create', [...IMAGE_CREATE, '--name', 'web\u001b[31mred'], '--name'),
  cli('image create', [...IMAGE_CREATE, '--mode', 'fast'], '--mode'),
  cli('image create', [...IMAGE_CREATE, '--region', 'europe-west'], '--region'),
  cli('image create', [...IMAGE_CREATE, '--region', 'eu-west-99'], '--region'),
  cli('image create', [...IMAGE_CREATE, '--region', ''], '--region'),
  cli('image create', [...IMAGE_CREATE, '--account', 'abc'], '--account'),
  cli('image create', [...IMAGE_CREATE, '--account', '12345678901'], '--account'),
  cli('image create', [...IMAGE_CREATE, '--tag', 'owner'], '--tag'),
  cli('image create', [...IMAGE_CREATE, '--tag', '=x'], '--tag'),
  cli('image create', [...IMAGE_CREATE, '--tag', 'a=1', '--tag', 'a=2'], '--tag'),
  cli('image create', [...IMAGE_CREATE, '--tag', '__proto__=x'], '--tag'),
  cli('image create', [...IMAGE_CREATE, '--tag', 'aws:x=1'], '--tag aws:x'),
  cli('image create', [...IMAGE_CREATE, '--tag', 'amiflow:run-id=1'], '--tag amiflow:run-id'),
  cli('image create', [...IMAGE_CREATE, '--tag', `owner=${'v'.repeat(257)}`], '--tag owner'),
  cli('image create', [...IMAGE_CREATE, '--tag', `${'k'.repeat(129)}=v`], '--tag'),
  cli('image create', [...IMAGE_CREATE, '--description', 'd'.repeat(256)], '--description'),
  cli('image create', [...IMAGE_CREATE, '--instance-timeout', 'soon'], '--instance-timeout'),
  cli('image create', [...IMAGE_CREATE, '--instance-timeout=-1'], '--instance-timeout'),
  cli('image create', [...IMAGE_CREATE, '--available-timeout', '9w'], '--available-timeout'),
  cli('image create', [...IMAGE_CREATE, '--watch', '--no-wait'], '--watch'),
  cli('image create', [...IMAGE_CREATE, '--force'], '--force'),
  cli('image create', [...IMAGE_CREATE, '--id', CTRL_ID], '--id'),
  cli('image create', [...IMAGE_CREATE, '--id', LONG_ID], '--id'),
  cli('image create', [...IMAGE_CREATE, '--id', ''], '--id'),
  cli('image create', [...IMAGE_CREATE, '--id', NUL_ID], '--id'),
  cli('image create', ['image', 'create', ...R, '--name', 'web-1'], '--instance'),
  // image share
  cli('image share', [...IMAGE_SHARE], '--target'),
  cli('image share', [...SHARE_TO, '--image', 'ami-xyz'], '--image'),
  cli('image share', [...IMAGE_SHARE, '--target-account', '1234'], '--target-account'),
  cli('image share', [...IMAGE_SHARE, '--target-account', 'not-an-account'], '--target-account'),
  cli('image share', [...SHARE_TO, '--target-org', 'org-1'], '--target-org'),
  cli('image share', [...SHARE_TO, '--target-ou', 'ou-1'], '--target-ou'),
  cli('image share', [...IMAGE_SHARE, '--public'], '--allow-public'),
  cli('image share', [...SHARE_TO, '--kms-access', 'magic'], '--kms-access'),
  cli('image share', [...SHARE_TO, '--duration', 'forever'], '--duration'),
  cli('image share', [...SHARE_TO, '--duration', '0'], '--duration'),
  cli('image share', [...SHARE_TO, '--duration', '-5'], '--duration'),
  cli('image share', [...SHARE_TO, '--copy-timeout', 'x'], '--copy-timeout'),
  cli('image share', [...SHARE_TO, '--tag', '__proto__=1'], '--tag'),
  cli('image share', [...SHARE_TO, '--tag', 'aws:a=1'], '--tag aws:a'),
  cli('image share', [...SHARE_TO, '--reencrypted-name', 'n'], '--reencrypted-name'),
  cli('image share', [...SHARE_TO, '--region', 'mars-north-1'], '--region'),
  cli('image share', [...SHARE_TO, '--region', 'eu-west-99'], '--region'),
  cli('image share', [...SHARE_TO, '--account', '111122223333'], '--target-account #1'),
  cli(
    'image share',
    [
      ...IMAGE_SHARE,
      '--account',
      '444455556666',
      '--target-account',
      '111122223333',
      '--target-account',
      '444455556666',
    ],
    '--target-account #2',
  ),
  cli('image share', [...SHARE_TO, '--id', CTRL_ID], '--id'),
  cli('image share', [...SHARE_TO, '--id', LONG_ID], '--id'),
  cli('image share', [...SHARE_TO, '--watch', '--no-wait'], '--watch'),
  // image share-expiry
  ...BAD_IDS.map(([, id]) =>
    cli('image share-expiry', ['image', 'share-expiry', id, '--now'], '<share-workflow-id>'),
  ),
  cli('image share-expiry', ['image', 'share-expiry', 'share-image/x', '--in', 'soon'], '--in'),
  cli('image share-expiry', ['image', 'share-expiry', 'share-image/x', '--at', 'tomorrow'], '--at'),
  cli('image share-expiry', ['image', 'share-expiry', 'share-image/x', '--in', '-5'], '--in'),
  cli('image share-expiry', ['image', 'share-expiry', 'share-image/x', '--now', '--in', '1h'], '--now'),
  cli('image share-expiry', ['image', 'share-expiry', 'share-image/x'], '--now'),
  // image unshare
  ...BAD_IDS.map(([, id]) => cli('image unshare', ['image', 'unshare', id], '<share-workflow-id>')),
  cli('image unshare', ['image', 'unshare', 'share-image/x', '--record', '/nonexistent/r.json'], '--record'),
  cli('image unshare', ['image', 'unshare', 'share-image/x', '--bogus'], '--bogus'),
  // image copy
  cli('image copy', [...IMAGE_COPY], '--to'),
  cli('image copy', [...COPY_TO, '--image', 'ami-1'], '--image'),
  cli('image copy', [...IMAGE_COPY, '--to', 'nowhere'], '--to #1'),
  cli('image copy', [...IMAGE_COPY, '--to', 'eu-west-99'], '--to #1'),
  cli('image copy', [...IMAGE_COPY, '--to', 'us-east-1,account=12'], '--to #1'),
  cli('image copy', [...IMAGE_COPY, '--to', 'us-east-1,colour=blue'], '--to'),
  cli('image copy', [...IMAGE_COPY, '--to', 'us-east-1', '--to', 'us-east-2,name=ab'], '--to #2'),
  cli('image copy', [...COPY_TO, '--policy', 'yolo'], '--policy'),
  cli('image copy', [...COPY_TO, '--per-region', '0'], '--per-region'),
  cli('image copy', [...COPY_TO, '--per-region', 'lots'], '--per-region'),
  cli('image copy', [...COPY_TO, '--copy-timeout', '-1'], '--copy-timeout'),
  cli('image copy', [...COPY_TO, '--tag', '__proto__=x'], '--tag'),
  cli('image copy', [...COPY_TO, '--tag', 'aws:x=1'], '--tag aws:x'),
  cli('image copy', [...COPY_TO, '--account', '1'], '--account'),
  cli('image copy', [...COPY_TO, '--region', 'xx-1'], '--region'),
  cli('image copy', [...COPY_TO, '--id', BIDI_ID], '--id'),
  cli('image copy', [...COPY_TO, '--id', LONG_ID], '--id'),
  // instance migrate
  cli('instance migrate', [...MIGRATE], '--to-az'),
  cli('instance migrate', [...MIGRATE_TO, '--instance', 'i-2'], '--instance'),
  cli('instance migrate', [...MIGRATE, '--to-az', 'mars-1a'], '--to-az'),
  cli('instance migrate', [...MIGRATE, '--subnet', 'subnet-x'], '--subnet'),
  cli('instance migrate', [...MIGRATE_TO, '--source', 'explode'], '--source'),
  cli('instance migrate', [...MIGRATE_TO, '--elastic-ip', 'steal'], '--elastic-ip'),
  cli('instance migrate', [...MIGRATE_TO, '--instance-type', 'huge!'], '--instance-type'),
  cli('instance migrate', [...MIGRATE_TO, '--security-group', 'sg-x'], '--security-group'),
  cli('instance migrate', [...MIGRATE_TO, '--image-name', 'ab'], '--image-name'),
  cli('instance migrate', [...MIGRATE_TO, '--ready-timeout', 'later'], '--ready-timeout'),
  cli('instance migrate', [...MIGRATE_TO, '--account', 'me'], '--account'),
  cli('instance migrate', [...MIGRATE_TO, '--region', 'eu-west-99'], '--region'),
  cli('instance migrate', [...MIGRATE_TO, '--id', NUL_ID], '--id'),
  cli('instance migrate', [...MIGRATE_TO, '--watch', '--no-wait'], '--watch'),
  // list
  cli('list', ['list', '--type', 'evilWorkflow'], '--type'),
  cli('list', ['list', '--status', 'exploded'], '--status'),
  cli('list', ['list', '--instance', "i-1' OR 1=1"], '--instance'),
  cli('list', ['list', '--image', "ami-1' OR WorkflowType != '"], '--image'),
  cli('list', ['list', '--region', "eu' OR '1'='1"], '--region'),
  cli('list', ['list', '--limit', '0'], '--limit'),
  cli('list', ['list', '--limit', '100001'], '--limit'),
  cli('list', ['list', '--limit', 'many'], '--limit'),
  // status / watch / result / cancel
  ...(['status', 'watch', 'result', 'cancel'] as const).flatMap((c) =>
    BAD_IDS.map(([, id]) => cli(c, [c, id], '<workflow-id>')),
  ),
  cli('cancel', ['cancel'], 'workflow-id'),
  cli('cancel', ['cancel', 'a', 'b'], 'too many arguments'),
  // plan validate / apply
  cli('plan validate', ['plan', 'validate', '/nonexistent/plan.yaml'], '/nonexistent/plan.yaml'),
  cli('plan apply', ['plan', 'apply', '/nonexistent/plan.yaml'], '/nonexistent/plan.yaml'),
  cli('plan apply', ['plan', 'apply', PLAN, '--prune-everything'], '--prune-everything'),
  // schedule list / describe / create / update / pause / unpause / trigger / backfill / delete
  cli('schedule list', ['schedule', 'list', '--plan', 'bad name!'], '--plan'),
  ...(['describe', 'pause', 'unpause', 'trigger', 'delete'] as const).flatMap((c) =>
    BAD_IDS.slice(0, 4).map(([, id]) => cli(`schedule ${c}`, ['schedule', c, id], '<schedule-id>')),
  ),
  ...BAD_IDS.slice(0, 4).map(([, id]) =>
    cli(
      'schedule backfill',
      ['schedule', 'backfill', id, '--from', '2026-01-01T00:00:00Z', '--to', '2026-01-02T00:00:00Z'],
      '<schedule-id>',
    ),
  ),
  cli('schedule backfill', ['schedule', 'backfill', 'amiflow/p/golden/x', '--from', 'yesterday'], '--from'),
  cli('schedule backfill', ['schedule', 'backfill', 'amiflow/p/golden/x', '--to', 'soon'], '--to'),
  cli('schedule trigger', ['schedule', 'trigger', 'amiflow/p/golden/x', '--overlap', 'chaos'], '--overlap'),
  cli('schedule create', ['schedule', 'create', PLAN, 'golden/nope'], 'golden/nope'),
  cli('schedule create', ['schedule', 'create', PLAN, 'what/web-base'], 'what/web-base'),
  cli(
    'schedule create',
    ['schedule', 'create', '/nonexistent/plan.yaml', 'golden/web-base'],
    '/nonexistent/plan.yaml',
  ),
  cli('schedule update', ['schedule', 'update', PLAN, 'backup/nope'], 'backup/nope'),
  cli(
    'schedule update',
    ['schedule', 'update', '/nonexistent/plan.yaml', 'backup/db-nightly'],
    '/nonexistent/plan.yaml',
  ),
  // golden start / approve / reject / pending; backup start
  cli('golden start', ['golden', 'start', PLAN, 'no-such-pipeline'], 'no-such-pipeline'),
  cli('golden start', ['golden', 'start', '/nonexistent/plan.yaml', 'web-base'], '/nonexistent/plan.yaml'),
  cli('golden start', ['golden', 'start', PLAN, 'web-base', '--id', CTRL_ID], '--id'),
  cli('golden start', ['golden', 'start', PLAN, 'web-base', '--watch', '--no-wait'], '--watch'),
  ...(['approve', 'reject'] as const).flatMap((c) =>
    BAD_IDS.map(([, id]) => cli(`golden ${c}`, ['golden', c, id], '<workflow-id>')),
  ),
  cli('golden pending', ['golden', 'pending', 'extra'], 'too many arguments'),
  cli('backup start', ['backup', 'start', PLAN, 'no-such-plan'], 'no-such-plan'),
  cli('backup start', ['backup', 'start', '/nonexistent/plan.yaml', 'db-nightly'], '/nonexistent/plan.yaml'),
  cli('backup start', ['backup', 'start', PLAN, 'db-nightly', '--id', LONG_ID], '--id'),
  // catalogue list / resolve
  cli('catalogue list', ['catalogue', 'list', '--region', 'xx-1'], '--region'),
  cli('catalogue list', ['catalogue', 'list', ...R, '--account', '12'], '--account'),
  cli('catalogue list', ['catalogue', 'list', ...R, '--pipeline', 'bad name!'], '--pipeline'),
  cli(
    'catalogue list',
    ['catalogue', 'list', ...R, '--allow-list', '/nonexistent/allow.json'],
    '--allow-list',
  ),
  cli('catalogue list', ['catalogue', 'list', ...R, '--concurrency', 'lots'], '--concurrency'),
  cli('catalogue resolve', ['catalogue', 'resolve', ...R], '--pipeline'),
  cli(
    'catalogue resolve',
    ['catalogue', 'resolve', '--pipeline', 'web-base', '--region', 'eu-west-99'],
    '--region',
  ),
  cli(
    'catalogue resolve',
    ['catalogue', 'resolve', '--pipeline', 'web-base', ...R, '--account', 'x'],
    '--account',
  ),
  // compliance scan / schedule / report
  cli('compliance scan', ['compliance', 'scan', ...R], '--name'),
  cli('compliance scan', [...SCAN, '--name', 'a/b'], '--name'),
  cli('compliance scan', [...SCAN, '--region', 'xx-1'], '--region'),
  cli('compliance scan', [...SCAN, '--account', '12'], '--account'),
  cli('compliance scan', [...SCAN, '--catalogue-account', 'someone'], '--catalogue-account'),
  cli('compliance scan', [...SCAN, '--concurrency', 'many'], '--concurrency'),
  cli('compliance scan', [...SCAN, '--max-findings', '-1'], '--max-findings'),
  cli('compliance scan', [...SCAN, '--allow-list', '/nonexistent/a.yaml'], '--allow-list'),
  cli('compliance scan', [...SCAN, '--pipeline', '../etc'], '--pipeline'),
  cli('compliance schedule', [...SCHED], '--every'),
  cli('compliance schedule', [...SCHED, '--every', 'fortnight'], '--every'),
  cli('compliance schedule', [...SCHED, '--every', '1s'], '--every'),
  cli('compliance schedule', [...SCHED, '--cron', '* * * * *'], '--cron'),
  cli('compliance schedule', [...SCHED, '--every', '6h', '--time-zone', 'Mars/Olympus'], '--time-zone'),
  cli('compliance schedule', [...SCHED, '--every', '6h', '--region', 'eu-west-99'], '--region'),
  cli('compliance report', ['compliance', 'report', '--name', 'a/b'], '--name'),
  cli('compliance report', ['compliance', 'report'], '--name'),
  // guardrails enforce / status / policy
  cli('guardrails enforce', [...ENFORCE], '--mode'),
  cli('guardrails enforce', [...ENFORCE, '--mode', 'strict'], '--mode'),
  cli('guardrails enforce', [...ENFORCE, '--mode', 'audit', '--region', 'xx-1'], '--region'),
  cli('guardrails enforce', [...ENFORCE, '--mode', 'audit', '--account', '1'], '--account'),
  cli('guardrails enforce', ['guardrails', 'enforce', '--name', 'a b', '--mode', 'audit', ...R], '--name'),
  cli('guardrails status', ['guardrails', 'status', '--name', 'a/b'], '--name'),
  cli('guardrails status', ['guardrails', 'status'], '--name'),
  cli(
    'guardrails policy',
    ['guardrails', 'policy', '--iam', '--kms', ...R, '--account', '111122223333'],
    '--iam',
  ),
  cli('guardrails policy', ['guardrails', 'policy', '--kms', ...R, '--account', 'self'], '--account'),
  cli('guardrails policy', ['guardrails', 'policy', '--iam', '--region', 'xx-1'], '--region'),
  // completion; global flags
  cli('completion', ['completion', 'tcsh'], 'tcsh'),
  cli('(global)', ['--output', 'yaml', 'list'], '--output'),
  cli('(global)', ['image', 'explode'], 'image explode'),
];

const IMAGE: ImageFromInstanceInput = {
  region: 'eu-west-1',
  instanceId: 'i-0123456789abcdef0',
  imageName: 'web-1',
  mode: 'stop',
};
const SHARE: ShareImageInput = {
  region: 'eu-west-1',
  imageId: 'ami-0123456789abcdef0',
  targets: { accountIds: ['111122223333'] },
};
const COPY: CopyImageInput = {
  region: 'eu-west-1',
  imageId: 'ami-0123456789abcdef0',
  destinations: [{ region: 'us-east-1' }],
};
const MIGRATE_IN: MigrateInstanceInput = {
  region: 'eu-west-1',
  instanceId: 'i-0123456789abcdef0',
  targetAvailabilityZone: 'eu-west-1b',
  sourceAction: 'keep',
};
const SCAN_IN: ComplianceScanInput = {
  name: 'prod',
  targets: [{ region: 'eu-west-1' }],
} as unknown as ComplianceScanInput;

/** Not objects, and objects that are not plain data: every start* refuses them as `input`. */
const NOT_INPUTS: [string, unknown][] = [
  ['null', null],
  ['undefined', undefined],
  ['a string', 'eu-west-1'],
  ['a number', 42],
  ['an array', []],
  ['a function', () => undefined],
];

type Start = (c: AmiflowClient, input: never) => Promise<unknown>;
const STARTS: [string, Start, Record<string, unknown>][] = [
  ['startImageFromInstance', (c, i) => c.startImageFromInstance(i), IMAGE],
  ['startShareImage', (c, i) => c.startShareImage(i), SHARE],
  ['startCopyImage', (c, i) => c.startCopyImage(i), COPY],
  ['startMigrateInstance', (c, i) => c.startMigrateInstance(i), MIGRATE_IN],
  ['startComplianceScan', (c, i) => c.startComplianceScan(i), SCAN_IN],
  ['startGoldenImage', (c, i) => c.startGoldenImage(i), {}],
  ['startBackup', (c, i) => c.startBackup(i), {}],
];

function lib(method: string, call: (c: AmiflowClient) => Promise<unknown>, names: string): LibraryCase {
  return { method, call, names };
}

export const LIBRARY_CASES: LibraryCase[] = [
  // Not objects, inherited fields, functions, __proto__ keys: for every start*.
  ...STARTS.flatMap(([method, start, good]) => [
    ...NOT_INPUTS.map(([, v]) => lib(method, (c) => start(c, v as never), 'input')),
    lib(method, (c) => start(c, Object.create(good) as never), 'input'),
    lib(method, (c) => start(c, JSON.parse(`{"__proto__": {"region": "eu-west-1"}}`) as never), '__proto__'),
    lib(method, (c) => start(c, { ...good, region: () => 'eu-west-1' } as never), 'region'),
  ]),
  // startImageFromInstance
  lib(
    'startImageFromInstance',
    (c) => c.startImageFromInstance({ ...IMAGE, instanceId: 'i-x' }),
    'instanceId',
  ),
  lib(
    'startImageFromInstance',
    (c) => c.startImageFromInstance({ ...IMAGE, region: 'eu-west-99' }),
    'region',
  ),
  lib(
    'startImageFromInstance',
    (c) => c.startImageFromInstance({ ...IMAGE, tags: { 'aws:x': '1' } }),
    'tags.aws:x',
  ),
  lib(
    'startImageFromInstance',
    (c) =>
      c.startImageFromInstance({
        ...IMAGE,
        tags: JSON.parse('{"__proto__": "x"}') as Record<string, string>,
      }),
    'tags.__proto__',
  ),
  lib(
    'startImageFromInstance',
    (c) => c.startImageFromInstance(IMAGE, { workflowId: CTRL_ID }),
    'workflowId',
  ),
  lib(
    'startImageFromInstance',
    (c) => c.startImageFromInstance(IMAGE, { workflowId: LONG_ID }),
    'workflowId',
  ),
  lib('startImageFromInstance', (c) => c.startImageFromInstance(IMAGE, { workflowId: '' }), 'workflowId'),
  // startShareImage
  lib('startShareImage', (c) => c.startShareImage({ ...SHARE, targets: {} }), 'targets'),
  lib(
    'startShareImage',
    (c) => c.startShareImage({ ...SHARE, accountId: '111122223333' }),
    'targets.accountIds[0]',
  ),
  lib(
    'startShareImage',
    (c) =>
      c.startShareImage({
        ...SHARE,
        targets: Object.create({ accountIds: ['111122223333'] }) as ShareImageInput['targets'],
      }),
    'targets',
  ),
  lib(
    'startShareImage',
    (c) => c.startShareImage({ ...SHARE, targets: { accountIds: ['1'] } }),
    'targets.accountIds',
  ),
  lib('startShareImage', (c) => c.startShareImage({ ...SHARE, durationSeconds: -1 }), 'durationSeconds'),
  lib('startShareImage', (c) => c.startShareImage(SHARE, { workflowId: BIDI_ID }), 'workflowId'),
  // startUnshareImage
  lib('startUnshareImage', (c) => c.startUnshareImage(null as unknown as string), 'shareWorkflowId'),
  lib('startUnshareImage', (c) => c.startUnshareImage(CTRL_ID), 'shareWorkflowId'),
  lib('startUnshareImage', (c) => c.startUnshareImage(LONG_ID), 'shareWorkflowId'),
  lib('startUnshareImage', (c) => c.startUnshareImage(''), 'shareWorkflowId'),
  lib('startUnshareImage', (c) => c.startUnshareImage('share-image/x', null as never), 'options'),
  lib(
    'startUnshareImage',
    (c) => c.startUnshareImage('share-image/x', { shareRunId: 'run\u0000' }),
    'shareRunId',
  ),
  lib('startUnshareImage', (c) => c.startUnshareImage('share-image/x', { workflowId: NUL_ID }), 'workflowId'),
  // startCopyImage
  lib('startCopyImage', (c) => c.startCopyImage({ ...COPY, destinations: [] }), 'destinations'),
  lib(
    'startCopyImage',
    (c) => c.startCopyImage({ ...COPY, destinations: [{ region: 'eu-west-99' }] }),
    'destinations',
  ),
  lib('startCopyImage', (c) => c.startCopyImage(COPY, { workflowId: LONG_ID }), 'workflowId'),
  // startMigrateInstance
  lib(
    'startMigrateInstance',
    (c) => c.startMigrateInstance({ ...MIGRATE_IN, instanceId: 'i-1' }),
    'instanceId',
  ),
  lib(
    'startMigrateInstance',
    (c) => c.startMigrateInstance(MIGRATE_IN, { workflowId: CTRL_ID }),
    'workflowId',
  ),
  // startComplianceScan
  lib('startComplianceScan', (c) => c.startComplianceScan({ ...SCAN_IN, name: 'a/b' }), 'name'),
  // startGoldenImage / startBackup
  lib('startGoldenImage', (c) => c.startGoldenImage({} as GoldenImageInput), 'pipeline'),
  lib('startBackup', (c) => c.startBackup({} as BackupInput), 'plan'),
  // ids taken by the rest of the library
  ...BAD_IDS.flatMap(([, id]) => [
    lib('cancel', (c) => c.cancel(id), 'workflowId'),
    lib('status', (c) => c.status(id), 'workflowId'),
    lib('setShareExpiry', (c) => c.setShareExpiry(id, { expiresInSeconds: 0 }), 'workflowId'),
    lib('approveGoldenImage', (c) => c.approveGoldenImage(id), 'workflowId'),
    lib('schedules.delete', (c) => c.schedules.delete(id), 'scheduleId'),
  ]),
  lib('setShareExpiry', (c) => c.setShareExpiry('share-image/x', null as never), 'update'),
];
