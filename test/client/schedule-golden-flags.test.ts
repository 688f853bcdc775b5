/**
 * The flags of `schedule …` and `golden approve|reject` are derived from the schemas (the plan's
 * schedule fields, the golden run's approval decision): a value the schema refuses is refused
 * before anything connects, exit 2, naming the flag with the schema's own message; help shows the
 * schema's choices.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { main } from '../../client/cli';
import { OVERLAP_POLICIES } from '../../contracts/plan';

/** Runs the CLI with a client that must never be reached; returns the exit code and what it printed on stderr. */
async function refused(args: string[]): Promise<{ code: number; stderr: string; connected: boolean }> {
  let connected = false;
  const lines: string[] = [];
  const original = console.error;
  console.error = (...parts: unknown[]) => lines.push(parts.join(' '));
  try {
    const code = await main(args, () => {
      connected = true;
      return Promise.reject(new Error('must not connect'));
    });
    return { code, stderr: lines.join('\n'), connected };
  } finally {
    console.error = original;
  }
}

const BACKFILL = [
  'schedule',
  'backfill',
  'amiflow/p/web',
  '--from',
  '2026-01-01T00:00:00Z',
  '--to',
  '2026-01-02T00:00:00Z',
];

const CASES: { kind: string; args: string[]; says: RegExp }[] = [
  {
    kind: 'an unknown overlap policy on trigger',
    args: ['schedule', 'trigger', 'amiflow/p/web', '--overlap', 'queue'],
    says: /--overlap: 'queue' is not an overlap policy; use one of skip, buffer-one/,
  },
  {
    kind: 'an unknown overlap policy on backfill',
    args: [...BACKFILL, '--overlap', 'later'],
    says: /--overlap: 'later' is not an overlap policy/,
  },
  {
    kind: 'a pause note longer than a schedule note may be',
    args: ['schedule', 'pause', 'amiflow/p/web', '--note', 'n'.repeat(1001)],
    says: /--note: must be at most 1000 characters/,
  },
  {
    kind: 'an approval comment longer than the decision takes',
    args: ['golden', 'approve', 'golden-web-1', '--comment', 'c'.repeat(1001)],
    says: /--comment: must be a string of at most 1000 characters/,
  },
  {
    kind: 'a rejection claimed by a name longer than the decision takes',
    args: ['golden', 'reject', 'golden-web-1', '--by', 'b'.repeat(129)],
    says: /--by: /,
  },
];

void describe('schedule and golden flags, derived from the schemas', () => {
  for (const c of CASES)
    void it(`GIVEN ${c.kind} WHEN run THEN exit 2 naming the flag, without connecting`, async () => {
      const r = await refused(c.args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, c.says);
      assert.equal(r.connected, false);
    });

  void it('GIVEN schedule trigger --help THEN it lists the plan schema’s overlap policies', async () => {
    let help = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = (chunk: string | Uint8Array) => {
      help += String(chunk);
      return true;
    };
    try {
      await main(['schedule', 'trigger', '--help']);
    } finally {
      process.stdout.write = write;
    }
    for (const policy of OVERLAP_POLICIES) assert.ok(help.includes(`"${policy}"`), `${policy} in:\n${help}`);
  });
});
