/**
 * What the client and CLI tests share: a Temporal client that records every call, the command line
 * run with its output captured, and the two bad-input tables (library: refused naming the field,
 * nothing reaches Temporal; CLI: refused naming the flag, nothing connects). Each test file states
 * only its good input and its cases.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Client } from '@temporalio/client';
import { AmiflowClient, InvalidInputError } from '../../client';
import { main, run } from '../../client/cli';

/** The instance the tests image and move: a good region and instance id. */
export const INSTANCE = { region: 'eu-west-1', instanceId: 'i-0123456789abcdef0' };

/** The first lines of a plan file (lines 1-7): its header and the start of pipeline `web`. */
export const PLAN_HEAD = `apiVersion: amiflow/v1
plan: team-web
defaults:
  timeZone: UTC
pipelines:
  - name: web
    region: eu-west-1
`;

/** `image create` with every required flag, good: a case adds what it changes. */
export const IMAGE_CREATE_ARGV: readonly string[] = [
  'image',
  'create',
  '--region',
  'eu-west-1',
  '--instance',
  'i-0123456789abcdef0',
  '--name',
  'web-1',
];

/** `instance migrate` with every required flag but `--source`, good. */
export const MIGRATE_ARGV: readonly string[] = [
  'instance',
  'migrate',
  '--region',
  'eu-west-1',
  '--instance',
  'i-0123456789abcdef0',
  '--to-az',
  'eu-west-1b',
];

export interface RecordedCall {
  name: string;
  args: unknown[];
}

/**
 * An AmiflowClient over a Temporal client (workflows and schedules) that records every call made
 * through it: `calls` their names, `recorded` their arguments too. A start answers run `run-1`.
 */
export function recordingClient(): { client: AmiflowClient; calls: string[]; recorded: RecordedCall[] } {
  const calls: string[] = [];
  const recorded: RecordedCall[] = [];
  const recorder = new Proxy(
    {},
    {
      get:
        (_t, prop) =>
        (...args: unknown[]) => {
          calls.push(String(prop));
          recorded.push({ name: String(prop), args });
          return Promise.resolve({ firstExecutionRunId: 'run-1' });
        },
    },
  );
  const temporal = { workflow: recorder, schedule: recorder } as unknown as Client;
  return { client: AmiflowClient.fromClient(temporal, 'amiflow'), calls, recorded };
}

/** Connecting is a test failure: the command must refuse (or finish) before it connects. */
export const mustNotConnect = (): Promise<AmiflowClient> => Promise.reject(new Error('must not connect'));

export interface Printed {
  code: number;
  out: string;
  err: string;
}

/** Runs `fn` with stdout and stderr (console and stream writes) captured; its number is the exit code. */
export async function capturedOutput(fn: () => Promise<number>): Promise<Printed> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => out.push(`${a.map(String).join(' ')}\n`);
  console.error = (...a: unknown[]) => err.push(`${a.map(String).join(' ')}\n`);
  process.stdout.write = (s: string) => out.push(s) > 0;
  process.stderr.write = (s: string) => err.push(s) > 0;
  try {
    const code = await fn();
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    Object.assign(console, { log, error });
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
}

/** What a command line printed, and its exit code; `connect` defaults to failing the test. */
export function captured(argv: string[], connect = mustNotConnect): Promise<Printed> {
  return capturedOutput(() => main(argv, connect));
}

/** A library bad-input case: its name, what it changes in the good input, the field it must name. */
export type BadInput = [kind: string, change: Record<string, unknown>, field: string];

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * One test per case: GIVEN a client whose every Temporal call is recorded, WHEN `start` is given
 * the good input with the case's change, THEN it is refused (InvalidInputError) naming the field,
 * in its issues and its message, and nothing reached Temporal.
 */
export function refusesBadInput<I extends object>(
  good: I,
  cases: readonly BadInput[],
  start: (client: AmiflowClient, input: I) => Promise<unknown>,
): void {
  for (const [kind, change, field] of cases)
    test(`${kind} → names ${field}`, async () => {
      const { client, calls } = recordingClient();
      const err = await start(client, { ...good, ...change }).catch((e: unknown) => e);
      assert.ok(err instanceof InvalidInputError, `expected InvalidInputError, got ${String(err)}`);
      assert.ok(
        err.issues.some((i) => i.field === field),
        `issues ${JSON.stringify(err.issues)} should name ${field}`,
      );
      assert.match(err.message, new RegExp(`${escapeRegExp(field)}: `));
      assert.deepEqual(calls, []);
    });
}

/** A CLI bad-input case: its name, the flags it adds to the good command line, the refusal. */
export type BadFlags = [kind: string, extra: string[], message: RegExp];

/** One test per case: the good command line plus the case's flags is refused as said, never connecting. */
export function refusesBadFlags(base: readonly string[], cases: readonly BadFlags[]): void {
  for (const [kind, extra, message] of cases)
    test(kind, async () => {
      let connected = false;
      const connect = () => {
        connected = true;
        return mustNotConnect();
      };
      await assert.rejects(run([...base, ...extra], connect), message);
      assert.equal(connected, false);
    });
}
