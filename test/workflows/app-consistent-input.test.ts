/**
 * Mode app-consistent where other workflows image a running instance (issue 15): golden pipelines
 * and backups accept it through their `mode`, with imageFromInstance's own `appConsistent` rules;
 * bad options are refused by name before anything starts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backupIssues, goldenImageIssues } from '../../workflows/golden-validation';
import { goldenInput } from './golden-stubs';

const backup = (extra: Record<string, unknown>) => ({
  region: 'eu-west-1',
  plan: 'nightly',
  instanceIds: ['i-0123456789abcdef0'],
  ...extra,
});

void describe('app-consistent in golden pipelines and backups', () => {
  void it('GIVEN mode app-consistent with options WHEN validated THEN both accept it', () => {
    const appConsistent = { maxFreezeSeconds: 15, onPreFailure: 'crash-consistent' };
    assert.deepEqual(goldenImageIssues({ ...goldenInput(), mode: 'app-consistent', appConsistent }), []);
    assert.deepEqual(backupIssues(backup({ mode: 'app-consistent', appConsistent })), []);
    assert.deepEqual(backupIssues(backup({ mode: 'app-consistent' })), [], 'the options have defaults');
  });

  const bad: [string, Record<string, unknown>, string, RegExp][] = [
    [
      'options with another mode',
      { mode: 'reboot', appConsistent: {} },
      'appConsistent',
      /mode app-consistent only/,
    ],
    [
      'freeze limit out of range',
      { mode: 'app-consistent', appConsistent: { maxFreezeSeconds: 900 } },
      'appConsistent.maxFreezeSeconds',
      /5 to 300/,
    ],
    [
      'root freeze without the explicit flag',
      { mode: 'app-consistent', appConsistent: { quiesce: { kind: 'fsfreeze', mountPoints: ['/'] } } },
      'appConsistent.quiesce.mountPoints',
      /freezeRoot: true/,
    ],
    ['still no no-reboot', { mode: 'no-reboot' }, 'mode', /crash-consistent only/],
  ];
  for (const [kind, extra, field, says] of bad) {
    void it(`GIVEN ${kind} WHEN validated THEN golden and backup inputs name ${field}`, () => {
      for (const issues of [goldenImageIssues({ ...goldenInput(), ...extra }), backupIssues(backup(extra))]) {
        const issue = issues.find((i) => i.field === field);
        assert.ok(issue, `issues ${JSON.stringify(issues)} should name ${field}`);
        assert.match(issue.message, says);
      }
    });
  }
});
