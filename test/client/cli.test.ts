/**
 * The command line as people and programs meet it: per-command help, --version, --output json for
 * results and errors, one duration syntax, shell completion, `amiflow list` filters, connection
 * settings, and the CLI reference that cannot go stale.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import type { AmiflowClient, StartedRun } from '../../client';
import { RunFailedError } from '../../client';
import { run } from '../../client/cli';
import { completionScript, completions } from '../../client/cli/completion';
import { newContext } from '../../client/cli/context';
import { buildProgram, commandPath } from '../../client/cli/program';
import { cliReference } from '../../client/cli/reference';
import { ConnectionFailedError, connectResolved, resolveConnection } from '../../client/connection';
import { listQuery } from '../../client/list-runs';
import { freePort } from '../support/ports';
import { ROOT } from '../support/tools';
import { IMAGE_CREATE_ARGV, MIGRATE_ARGV, captured, mustNotConnect } from './fixtures';

const run$ = promisify(execFile);

function tree(): Command {
  return buildProgram(newContext(mustNotConnect));
}

function leafCommands(cmd: Command): Command[] {
  const subs = cmd.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden);
  return subs.length ? subs.flatMap(leafCommands) : [cmd];
}

/** A client that records starts and answers results as told. */
function fakeClient(result: () => Promise<unknown>): { client: AmiflowClient; inputs: unknown[] } {
  const inputs: unknown[] = [];
  const started: StartedRun = { workflowId: 'wf-1', runId: 'run-1' };
  const start = (input: unknown) => {
    inputs.push(input);
    return Promise.resolve(started);
  };
  const client = {
    startImageFromInstance: start,
    startShareImage: start,
    startCopyImage: start,
    startMigrateInstance: start,
    result,
    // No worker answers and no attribute says: the result is printed as it is.
    runOutcome: () => Promise.resolve({}),
    close: () => Promise.resolve(),
  } as unknown as AmiflowClient;
  return { client, inputs };
}

describe('help and version', () => {
  const leaves = leafCommands(tree()).map(commandPath);

  test(`every one of the ${leaves.length} commands has its own --help, exit 0`, async () => {
    for (const name of leaves) {
      const argv = [...name.split(' ').slice(1), '--help'];
      const { code, out } = await captured(argv);
      assert.equal(code, 0, `${name} --help`);
      assert.match(out, new RegExp(`^Usage: ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `), name);
      assert.match(out, /--output <format>/, `${name} lists --output`);
    }
  });

  test('--version prints the package version, exit 0', async () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const { code, out } = await captured(['--version']);
    assert.equal(code, 0);
    assert.equal(out.trim(), pkg.version);
  });

  test('`amiflow help` exits 0; nothing at all is a usage error, exit 2', async () => {
    assert.equal((await captured(['help'])).code, 0);
    const none = await captured([]);
    assert.equal(none.code, 2);
    assert.match(none.err, /^Usage: amiflow /);
  });

  test('an output format that does not exist is refused naming --output and the choices', async () => {
    const { code, err } = await captured(['list', '--output', 'xml']);
    assert.equal(code, 2);
    assert.match(err, /--output: 'xml' is not one of text, json/);
  });

  test('a group without its command prints the group help, exit 2', async () => {
    const { code, err } = await captured(['image']);
    assert.equal(code, 2);
    assert.match(err, /share-expiry/);
  });
});

describe('--output json', () => {
  test('GIVEN bad input WHEN --output json THEN the error is a JSON object on stdout naming the flags, exit 2', async () => {
    const { code, out, err } = await captured([
      ...IMAGE_CREATE_ARGV,
      '--instance',
      'i-1',
      '--output',
      'json',
    ]);
    assert.equal(code, 2);
    const parsed = JSON.parse(out) as {
      error: { kind: string; issues: { field: string }[] };
      exitCode: number;
    };
    assert.equal(parsed.error.kind, 'invalid-input');
    assert.deepEqual(
      parsed.error.issues.map((i) => i.field),
      ['--instance'],
    );
    assert.equal(parsed.exitCode, 2);
    assert.doesNotMatch(err, /\n\s+at /, 'no stack trace');
  });

  test('GIVEN an unknown flag WHEN --json THEN a usage error as JSON, naming the flag and the help to read', async () => {
    const { code, out } = await captured([...IMAGE_CREATE_ARGV, '--force', '--json']);
    assert.equal(code, 2);
    const parsed = JSON.parse(out) as { error: { kind: string; message: string; help: string } };
    assert.equal(parsed.error.kind, 'usage');
    assert.match(parsed.error.message, /unknown option '--force'/);
    assert.equal(parsed.error.help, 'amiflow image create --help');
  });

  test('GIVEN a run that fails WHEN --output json THEN its failure is printed as JSON, exit 1', async () => {
    const { client } = fakeClient(() =>
      Promise.reject(
        new RunFailedError('instance i-0123456789abcdef0 is gone', 'wf-1', 'InstanceNotFound', false),
      ),
    );
    const { code, out } = await captured([...IMAGE_CREATE_ARGV, '--output', 'json'], () =>
      Promise.resolve(client),
    );
    assert.equal(code, 1);
    assert.deepEqual(JSON.parse(out), {
      error: {
        kind: 'run-failed',
        message: 'instance i-0123456789abcdef0 is gone',
        workflowId: 'wf-1',
        failureType: 'InstanceNotFound',
      },
      exitCode: 1,
    });
  });

  test('GIVEN a run that succeeds WHEN --json THEN stdout is exactly its result as JSON', async () => {
    const result = { imageId: 'ami-0123456789abcdef0' };
    const { client } = fakeClient(() => Promise.resolve(result));
    const { code, out } = await captured([...IMAGE_CREATE_ARGV, '--json'], () => Promise.resolve(client));
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(out), result);
  });

  test('GIVEN --no-wait WHEN --output json THEN the started run is printed as JSON', async () => {
    const { client } = fakeClient(() => Promise.reject(new Error('must not wait')));
    const { code, out } = await captured([...IMAGE_CREATE_ARGV, '--no-wait', '--output=json'], () =>
      Promise.resolve(client),
    );
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(out), { workflowId: 'wf-1', runId: 'run-1' });
  });
});

describe('one duration syntax for every duration flag', () => {
  const cases: [string, string[], (input: Record<string, unknown>) => unknown, unknown][] = [
    [
      'image create --instance-timeout 15m --available-timeout 2h',
      [...IMAGE_CREATE_ARGV, '--instance-timeout', '15m', '--available-timeout', '2h'],
      (i) => i.timeouts,
      { instanceStateSeconds: 900, imageAvailableSeconds: 7200 },
    ],
    [
      'image share --duration 1d --copy-timeout 90s',
      [
        'image',
        'share',
        '--region',
        'eu-west-1',
        '--image',
        'ami-0123456789abcdef0',
        '--target-account',
        '444455556666',
        '--duration',
        '1d',
        '--copy-timeout',
        '90s',
      ],
      (i) => [i.durationSeconds, i.timeouts],
      [86400, { copyAvailableSeconds: 90 }],
    ],
    [
      'image copy --copy-timeout 3600 (plain seconds)',
      [
        'image',
        'copy',
        '--region',
        'eu-west-1',
        '--image',
        'ami-0123456789abcdef0',
        '--to',
        'us-east-1',
        '--copy-timeout',
        '3600',
      ],
      (i) => i.timeouts,
      { copyAvailableSeconds: 3600 },
    ],
    [
      'instance migrate --ready-timeout 15m',
      [...MIGRATE_ARGV, '--source', 'keep', '--ready-timeout', '15m'],
      (i) => i.timeouts,
      { instanceReadySeconds: 900 },
    ],
  ];
  for (const [name, argv, pick, expected] of cases)
    test(name, async () => {
      const { client, inputs } = fakeClient(() =>
        Promise.resolve({ destinations: [], outcome: 'complete', source: {} }),
      );
      const code = await run([...argv, '--no-wait'], () => Promise.resolve(client));
      assert.equal(code, 0);
      assert.deepEqual(pick(inputs[0] as Record<string, unknown>), expected);
    });

  test('compliance schedule --every 36h: the interval reaches the schedule as 36h', async () => {
    const specs: unknown[] = [];
    const client = {
      scheduleComplianceScan: (_input: unknown, spec: unknown) => {
        specs.push(spec);
        return Promise.resolve({ scheduleId: 'compliance/prod' });
      },
      close: () => Promise.resolve(),
    } as unknown as AmiflowClient;
    const argv = ['compliance', 'schedule', '--name', 'prod', '--region', 'eu-west-1'];
    assert.equal(await run([...argv, '--every', '36h', '--json'], () => Promise.resolve(client)), 0);
    assert.equal(await run([...argv, '--every', '86400', '--json'], () => Promise.resolve(client)), 0);
    assert.deepEqual(specs, [{ every: '36h' }, { every: '1d' }]);
  });

  test('every flag that takes a <duration> is parsed by the one duration parser', async () => {
    const durationFlags = leafCommands(tree()).flatMap((c) =>
      c.options.filter((o) => o.flags.includes('<duration>')).map((o) => `${commandPath(c)} ${o.long ?? ''}`),
    );
    assert.ok(durationFlags.length >= 9, durationFlags.join(', '));
    for (const flag of durationFlags) {
      const [, ...words] = flag.split(' ');
      const { code, err } = await captured([...words, 'a fortnight']);
      assert.equal(code, 2, flag);
      const long = words[words.length - 1] ?? '';
      assert.match(
        err,
        new RegExp(`${long}: 'a fortnight' is not a duration \\(e\\.g\\. 90s, 15m, 2h, 1d`),
        flag,
      );
    }
  });
});

describe('shell completion, from the command tree', () => {
  test('commands, then flags, then a flag’s choices', () => {
    const program = tree();
    assert.deepEqual(completions(program, ['im']), ['image']);
    assert.deepEqual(completions(program, ['image', 'sh']), ['share', 'share-expiry']);
    assert.ok(completions(program, ['image', 'create', '--']).includes('--instance-timeout'));
    assert.ok(completions(program, ['image', 'create', '--']).includes('--output'), 'global flags too');
    assert.deepEqual(completions(program, ['image', 'create', '--mode', '']), [
      'stop',
      'reboot',
      'no-reboot',
      'app-consistent',
    ]);
    assert.deepEqual(completions(program, ['list', '--status', 'c']), [
      'completed',
      'cancelled',
      'continued-as-new',
    ]);
    assert.deepEqual(
      completions(program, ['plan', 'validate', '']),
      [],
      'a file argument: the shell completes files',
    );
  });

  test('GIVEN the bash script WHEN bash completes `amiflow image cr` THEN it offers create', async () => {
    const script = completionScript('bash');
    const cli = `node --import tsx ${path.join(ROOT, 'client', 'cli', 'index.ts')}`;
    const { stdout } = await run$(
      'bash',
      [
        '-c',
        `amiflow() { ${cli} "$@"; }\n${script}\nCOMP_WORDS=(amiflow image cr); COMP_CWORD=2; _amiflow_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { cwd: ROOT },
    );
    assert.deepEqual(stdout.trim().split('\n'), ['create']);
  });

  test('zsh and fish scripts call the same candidates command', () => {
    for (const shell of ['zsh', 'fish'] as const)
      assert.match(completionScript(shell), /amiflow __complete -- /);
  });

  test('an unknown shell is a usage error naming the shells', async () => {
    const { code, err } = await captured(['completion', 'tcsh']);
    assert.equal(code, 2);
    assert.match(err, /'tcsh' is not a supported shell: bash, zsh, fish/);
  });
});

describe('amiflow list: visibility queries on the Amiflow* search attributes', () => {
  test('filters become one query; no filter still keeps to amiflow workflow types', () => {
    assert.equal(
      listQuery({
        type: 'imageFromInstance',
        instanceId: 'i-0123456789abcdef0',
        region: 'eu-west-1',
        status: 'failed',
      }),
      "WorkflowType = 'imageFromInstance' AND AmiflowInstanceId = 'i-0123456789abcdef0' AND AmiflowRegion = 'eu-west-1' AND ExecutionStatus = 'Failed'",
    );
    assert.match(
      listQuery({ imageId: 'ami-0123456789abcdef0' }),
      /^WorkflowType IN \('imageFromInstance', .*\) AND AmiflowImageId = 'ami-0123456789abcdef0'$/,
    );
  });

  test('a value that would widen the query is refused, naming the flag, before connecting', async () => {
    const { code, err } = await captured(['list', '--instance', "i-1' OR WorkflowType != '"]);
    assert.equal(code, 2);
    assert.match(err, /--instance: 'i-1' OR WorkflowType != '' is not an EC2 instance id/);
    const bad = await captured(['list', '--status', 'stuck']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--status: 'stuck' is not a status: running, completed, failed/);
  });
});

describe('connection settings (temporal.toml profiles, TEMPORAL_*, amiflow’s own)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'amiflow-envconfig-'));
  const file = path.join(dir, 'temporal.toml');
  writeFileSync(
    file,
    [
      '[profile.default]',
      'address = "temporal.internal:7233"',
      'namespace = "platform"',
      '',
      '[profile.cloud]',
      'address = "acme.tmprl.cloud:7233"',
      'namespace = "acme.a1b2c"',
      'api_key = "k-123"',
      '',
    ].join('\n'),
  );

  test('GIVEN a temporal.toml WHEN nothing else is set THEN its default profile is used, and said so', () => {
    const r = resolveConnection({}, { TEMPORAL_CONFIG_FILE: file });
    assert.equal(r.address, 'temporal.internal:7233');
    assert.equal(r.namespace, 'platform');
    assert.equal(r.taskQueue, 'amiflow');
    assert.match(r.sources.address, /^profile 'default'/);
  });

  test('GIVEN a profile with an API key THEN TLS is on and the key is sent', () => {
    const r = resolveConnection({ profile: 'cloud' }, { TEMPORAL_CONFIG_FILE: file });
    assert.equal(r.address, 'acme.tmprl.cloud:7233');
    assert.equal(r.options.apiKey, 'k-123');
    assert.equal(r.options.tls, true);
  });

  test('environment overrides the profile; flags override both; AMIFLOW_TASK_QUEUE is honoured', () => {
    const env = {
      TEMPORAL_CONFIG_FILE: file,
      TEMPORAL_ADDRESS: 'env.host:7233',
      AMIFLOW_TASK_QUEUE: 'amiflow-eu',
    };
    const fromEnv = resolveConnection({}, env);
    assert.equal(fromEnv.address, 'env.host:7233');
    assert.equal(fromEnv.sources.address, 'TEMPORAL_ADDRESS');
    assert.equal(fromEnv.namespace, 'platform', 'namespace still from the profile');
    assert.equal(fromEnv.taskQueue, 'amiflow-eu');
    const fromFlag = resolveConnection({ address: 'flag.host:7233', namespace: 'other' }, env);
    assert.deepEqual(
      [fromFlag.address, fromFlag.namespace, fromFlag.sources.address],
      ['flag.host:7233', 'other', '--address'],
    );
  });

  test('GIVEN no configuration THEN the local dev server, said to be the default', () => {
    const r = resolveConnection({}, { TEMPORAL_CONFIG_FILE: path.join(dir, 'none.toml') });
    assert.deepEqual(
      [r.address, r.namespace, r.sources.address],
      ['localhost:7233', 'default', 'the default'],
    );
  });

  test('a profile that does not exist is a configuration error naming it', () => {
    assert.throws(
      () => resolveConnection({ profile: 'staging' }, { TEMPORAL_CONFIG_FILE: file }),
      /Profile 'staging' not found/,
    );
  });

  test('amiflow’s earlier TLS variables still configure mTLS', () => {
    const cert = path.join(dir, 'c.pem');
    const key = path.join(dir, 'k.pem');
    writeFileSync(cert, 'CERT');
    writeFileSync(key, 'KEY');
    const r = resolveConnection(
      {},
      { TEMPORAL_CONFIG_FILE: file, TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key },
    );
    const tls = r.options.tls as { clientCertPair?: { crt: Uint8Array; key: Uint8Array } };
    assert.equal(Buffer.from(tls.clientCertPair?.crt ?? []).toString(), 'CERT');
    assert.equal(Buffer.from(tls.clientCertPair?.key ?? []).toString(), 'KEY');
  });

  test('GIVEN no server at the address WHEN connecting THEN the error names the address and where it came from', async () => {
    const port = await freePort();
    const r = resolveConnection({}, { TEMPORAL_CONFIG_FILE: file, TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    r.options.connectTimeout = '1s';
    const err = await connectResolved(r).catch((e: unknown) => e);
    assert.ok(err instanceof ConnectionFailedError, String(err));
    assert.match(
      err.message,
      new RegExp(`cannot connect to Temporal at 127\\.0\\.0\\.1:${port} \\(address from TEMPORAL_ADDRESS\\)`),
    );
  });
});

test('docs/cli.md is the reference the command tree gives (npm run docs:cli)', () => {
  const current = readFileSync(path.join(ROOT, 'docs', 'cli.md'), 'utf8');
  assert.equal(current, `${cliReference()}\n`, 'docs/cli.md is stale: run npm run docs:cli');
});

describe('verified approvals and unshare by the share run', () => {
  test('GIVEN golden approve without --by WHEN run THEN the library signs and sends the decision (no name needed), exit 0', async () => {
    const decisions: unknown[] = [];
    const ack = {
      workflowId: 'golden-image/p/web-1',
      imageId: 'ami-0123456789abcdef0',
      version: '1',
      decision: 'approved',
      at: '2026-11-30T12:00:00Z',
    };
    const client = {
      approveGoldenImage: (id: string, decision: unknown) => {
        decisions.push([id, decision]);
        return Promise.resolve(ack);
      },
      close: () => Promise.resolve(),
    } as unknown as AmiflowClient;
    const { code, out } = await captured(['golden', 'approve', ack.workflowId, '--comment', 'ok'], () =>
      Promise.resolve(client),
    );
    assert.equal(code, 0);
    assert.deepEqual(decisions, [[ack.workflowId, { comment: 'ok' }]]);
    assert.match(out, /approved ami-0123456789abcdef0 \(version 1\)/);
  });

  test('GIVEN an approval the worker refuses (ApproverNotVerified) WHEN run THEN exit 2, refused with the reason and the type; the run is not reported as failed', async () => {
    const client = {
      approveGoldenImage: () =>
        Promise.reject(
          new RunFailedError(
            "arn:aws:iam::111122223333:user/eve is not one of this pipeline's approvers",
            'golden-image/p/web-1',
            'ApproverNotVerified',
            false,
          ),
        ),
      close: () => Promise.resolve(),
    } as unknown as AmiflowClient;
    const { code, out, err } = await captured(['golden', 'approve', 'golden-image/p/web-1', '--json'], () =>
      Promise.resolve(client),
    );
    assert.equal(code, 2);
    assert.match(
      err,
      /^amiflow: refused \(ApproverNotVerified\): arn:aws:iam::111122223333:user\/eve is not one/,
    );
    assert.deepEqual(JSON.parse(out), {
      error: {
        kind: 'refused',
        message: "arn:aws:iam::111122223333:user/eve is not one of this pipeline's approvers",
        workflowId: 'golden-image/p/web-1',
        failureType: 'ApproverNotVerified',
      },
      exitCode: 2,
    });
  });

  test('GIVEN image unshare <share run> --record WHEN run THEN the run is withdrawn by its id and the record is only passed on to be compared', async () => {
    const record = {
      image: { imageId: 'ami-0aaaaaaaaaaaaaaa1', region: 'eu-west-1' },
      sharedImageId: 'ami-0123456789abcdef0',
      added: { launchPermissions: [{ userId: '444455556666' }], snapshotPermissions: [], grants: [] },
    };
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'amiflow-unshare-')), 'share.json');
    writeFileSync(file, JSON.stringify(record));
    const starts: unknown[] = [];
    const unshared = { ...record, withdrawn: record.added, finishedAt: '2026-11-30T12:00:00Z' };
    const client = {
      handle: () => ({ describe: () => Promise.resolve({ status: { name: 'COMPLETED' } }) }),
      result: (id: string) =>
        Promise.resolve(id === 'share-image/x' ? { ...record, sharedAt: 'then' } : unshared),
      startUnshareImage: (id: string, opts: unknown) => {
        starts.push([id, opts]);
        return Promise.resolve({ workflowId: 'unshare-image/share-image/x/latest', runId: 'run-2' });
      },
      runOutcome: () => Promise.resolve({ outcome: 'succeeded' }),
      close: () => Promise.resolve(),
    } as unknown as AmiflowClient;
    const { code, out, err } = await captured(['image', 'unshare', 'share-image/x', '--record', file], () =>
      Promise.resolve(client),
    );
    assert.equal(code, 0, err);
    assert.deepEqual(starts, [['share-image/x', { deleteReencryptedCopy: false, expected: record }]]);
    assert.match(out, /withdrawn from ami-0123456789abcdef0 \(eu-west-1\): 1 launch permission/);
  });
});
