/**
 * The app-consistent pre and post steps at the SDK level: what SendCommand carries for each quiesce
 * kind (the watchdog armed with the limit before anything freezes, the root file system left alone,
 * the user's scripts carried intact, a document given the max freeze), one command per run and step,
 * and the scripts' own behaviour where a shell can show it without freezing anything.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ListCommandsCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import { postCommand, preCommand, runTag } from '../../activities/freeze-scripts';
import type { QuiesceSpec } from '../../workflows/contracts';
import { INSTANCE_ID, TARGET } from './fixtures';
import { activityEnv, harness } from './harness';

const RUN_KEY = 'image-from-instance/eu-west-1/self/i-0123456789abcdef0/web-1/run-1';

function input(quiesce: QuiesceSpec, maxFreezeSeconds = 30) {
  return {
    target: TARGET,
    instanceId: INSTANCE_ID,
    quiesce,
    maxFreezeSeconds,
    runKey: RUN_KEY,
    timeoutSeconds: 120,
  };
}

function scriptOf(spec: { parameters: Record<string, string[]> }): string {
  return spec.parameters.commands?.[0] ?? '';
}

describe('sendQuiesceCommand / sendThawCommand', () => {
  it('GIVEN the default fsfreeze WHEN quiesced THEN AWS-RunShellScript arms the watchdog with the limit before freezing, skips /, and the thaw goes as its own keyed command', async () => {
    const h = harness();
    h.ssmMock.on(ListCommandsCommand).resolves({ Commands: [] });
    h.ssmMock
      .on(SendCommandCommand)
      .resolvesOnce({ Command: { CommandId: 'pre' } })
      .resolves({ Command: { CommandId: 'thaw' } });

    assert.deepEqual(
      await activityEnv().run(h.activities.sendQuiesceCommand, input({ kind: 'fsfreeze' }, 45)),
      {
        commandId: 'pre',
        reused: false,
      },
    );
    assert.deepEqual(await activityEnv().run(h.activities.sendThawCommand, input({ kind: 'fsfreeze' }, 45)), {
      commandId: 'thaw',
      reused: false,
    });

    const [pre, thaw] = h.ssmMock.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
    assert.equal(pre?.DocumentName, 'AWS-RunShellScript');
    assert.notEqual(pre?.Comment, thaw?.Comment, 'quiesce and thaw have keys of their own');
    assert.equal(pre?.TimeoutSeconds, 120);
    const script = pre?.Parameters?.commands?.[0] ?? '';
    assert.match(script, /^MAX=45$/m);
    assert.ok(script.indexOf('amiflow-watchdog=') < script.indexOf('fsfreeze -f'), 'watchdog first');
    assert.ok(script.indexOf('sync') < script.indexOf('fsfreeze -f'), 'sync before the freeze');
    assert.match(script, /\[ "\$target" = \/ \] && \[ 0 -ne 1 \]/, 'root skipped');
    assert.ok(script.includes(`/run/amiflow-freeze}/${runTag(RUN_KEY)}`), 'state in /run, named by the run');
    assert.match(thaw?.Parameters?.commands?.[0] ?? '', /fsfreeze -u/);
  });

  it('GIVEN a document kind WHEN quiesced THEN the pre document gets its parameters and the max freeze in the named parameter; the post document its own', async () => {
    const h = harness();
    h.ssmMock.on(ListCommandsCommand).resolves({ Commands: [] });
    h.ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c' } });
    const spec: QuiesceSpec = {
      kind: 'document',
      preDocument: 'Acme-FlushAndLock',
      postDocument: 'Acme-Unlock',
      preParameters: { database: ['orders'] },
      postParameters: { database: ['orders'] },
      maxFreezeParameter: 'maxSeconds',
    };
    await activityEnv().run(h.activities.sendQuiesceCommand, input(spec, 20));
    await activityEnv().run(h.activities.sendThawCommand, input(spec, 20));
    const [pre, post] = h.ssmMock.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
    assert.equal(pre?.DocumentName, 'Acme-FlushAndLock');
    assert.deepEqual(pre?.Parameters, { database: ['orders'], maxSeconds: ['20'] });
    assert.equal(post?.DocumentName, 'Acme-Unlock');
    assert.deepEqual(post?.Parameters, { database: ['orders'] });
  });

  it('GIVEN a thaw retried after a failed one WHEN sent with attempt 2 THEN its key differs, so SSM runs it again', async () => {
    const h = harness();
    h.ssmMock.on(ListCommandsCommand).resolves({ Commands: [] });
    h.ssmMock.on(SendCommandCommand).resolves({ Command: { CommandId: 'c' } });
    await activityEnv().run(h.activities.sendThawCommand, input({ kind: 'fsfreeze' }));
    await activityEnv().run(h.activities.sendThawCommand, { ...input({ kind: 'fsfreeze' }), attempt: 2 });
    const [a, b] = h.ssmMock.commandCalls(SendCommandCommand).map((c) => c.args[0].input.Comment);
    assert.notEqual(a, b);
  });
});

describe('the scripts themselves (bash, no file system frozen)', () => {
  it('GIVEN user scripts WHEN the pre step runs and the watchdog fires before the post step THEN the post script runs, the stamps say so, and the user scripts arrive intact', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'amiflow-freeze-'));
    try {
      const spec: QuiesceSpec = {
        kind: 'script',
        pre: `echo "it's quoted \\$HOME" > ${dir}/pre-ran`,
        post: `echo thawed >> ${dir}/post-ran`,
      };
      const key = `test/${process.pid}/${Date.now()}`;
      const env = { ...process.env, AMIFLOW_FREEZE_STATE: dir };
      const run = (script: string) => spawnSync('bash', ['-c', script], { encoding: 'utf8', env });
      const pre = run(scriptOf(preCommand(spec, key, 1)));
      assert.equal(pre.status, 0, pre.stderr);
      assert.match(pre.stdout, /^amiflow-watchdog=(process|systemd-timer) max=1$/m);
      assert.match(pre.stdout, /^amiflow-frozen-at=\d{13}$/m);
      assert.equal(readFileSync(`${dir}/pre-ran`, 'utf8'), "it's quoted $HOME\n");
      // The watchdog is armed for 1 s: wait for its own marker (a condition, bounded), then thaw.
      const deadline = Date.now() + 10_000;
      while (run(`cat ${dir}/post-ran 2>/dev/null`).stdout === '' && Date.now() < deadline)
        spawnSync('sleep', ['0.1']);
      const post = run(scriptOf(postCommand(spec, key)));
      assert.equal(post.status, 0, post.stderr);
      assert.match(post.stdout, /^amiflow-watchdog-fired-at=\d{13}$/m);
      assert.match(post.stdout, /^amiflow-thawed-at=\d{13}$/m);
      assert.equal(
        readFileSync(`${dir}/post-ran`, 'utf8'),
        'thawed\nthawed\n',
        'watchdog, then the post step',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('GIVEN a failing pre script WHEN it runs THEN it undoes itself (post script), disarms the watchdog and exits with its code', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'amiflow-freeze-'));
    try {
      const spec: QuiesceSpec = { kind: 'script', pre: 'exit 7', post: `echo undone >> ${dir}/post-ran` };
      const key = `test/${process.pid}/fail/${Date.now()}`;
      const pre = spawnSync('bash', ['-c', scriptOf(preCommand(spec, key, 30))], {
        encoding: 'utf8',
        env: { ...process.env, AMIFLOW_FREEZE_STATE: dir },
      });
      assert.equal(pre.status, 7);
      assert.match(pre.stderr, /amiflow-pre-script-failed=7/);
      assert.doesNotMatch(pre.stdout, /amiflow-frozen-at=/);
      assert.equal(readFileSync(`${dir}/post-ran`, 'utf8'), 'undone\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('GIVEN every generated script WHEN parsed by bash THEN each is valid', () => {
    const specs: QuiesceSpec[] = [
      { kind: 'fsfreeze' },
      { kind: 'fsfreeze', mountPoints: ['/data', '/var/lib/mysql'], freezeRoot: false },
      { kind: 'fsfreeze', mountPoints: ['/'], freezeRoot: true },
      { kind: 'script', pre: 'true', post: 'true' },
    ];
    for (const spec of specs)
      for (const script of [scriptOf(preCommand(spec, RUN_KEY, 30)), scriptOf(postCommand(spec, RUN_KEY))]) {
        const r = spawnSync('bash', ['-n', '-c', script], { encoding: 'utf8' });
        assert.equal(r.status, 0, `${spec.kind}: ${r.stderr}`);
      }
  });
});
