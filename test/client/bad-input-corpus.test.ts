/**
 * The bad-input corpus (bad-input-corpus.cases.ts) through the CLI and the client library. Each case:
 * refused before any Temporal call (so before any workflow starts) and before any network
 * connection (so no AWS call); the flag or field named; CLI exit code 2; no stack trace; no secret of
 * the environment echoed. Prints the totals (cases, refused pre-workflow, by command).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { AmiflowClient, InvalidInputError } from '../../client';
import { main } from '../../client/cli';
import type { CliCase, LibraryCase } from './bad-input-corpus.cases';
import { CLI_CASES, LIBRARY_CASES, SECRET } from './bad-input-corpus.cases';

/** Every Temporal call made through the client, and every network connection the process opens. */
interface Recorder {
  temporalCalls: string[];
  connections: string[];
}

function recordingClient(rec: Recorder): AmiflowClient {
  const recorder = (area: string) =>
    new Proxy(
      {},
      {
        get: (_t, prop) => () => {
          rec.temporalCalls.push(`${area}.${String(prop)}`);
          return Promise.resolve({ firstExecutionRunId: 'run-1' });
        },
      },
    );
  const temporal = {
    workflow: recorder('workflow'),
    schedule: recorder('schedule'),
    workflowService: recorder('workflowService'),
    options: { namespace: 'default' },
  } as unknown as Client;
  return AmiflowClient.fromClient(temporal, 'amiflow');
}

interface Outcome {
  ok: boolean;
  preWorkflow: boolean;
  why?: string;
}
const totals = new Map<string, { cases: number; refused: number }>();
function count(key: string, o: Outcome): void {
  const t = totals.get(key) ?? { cases: 0, refused: 0 };
  t.cases += 1;
  if (o.ok && o.preWorkflow) t.refused += 1;
  totals.set(key, t);
}

const STACK = /\n\s+at .+[(:]\d+/;

async function runCli(c: CliCase, rec: Recorder): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  const writeErr = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => void out.push(a.map(String).join(' '));
  console.error = (...a: unknown[]) => void err.push(a.map(String).join(' '));
  process.stderr.write = (s: string | Uint8Array) => (err.push(String(s)), true);
  try {
    const code = await main(c.argv, () => {
      rec.temporalCalls.push('connect');
      return Promise.resolve(recordingClient(rec));
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
    process.stderr.write = writeErr;
  }
}

function label(argv: string[]): string {
  const text = argv.join(' ');
  return JSON.stringify(text.length > 110 ? `${text.slice(0, 110)}…` : text);
}

describe('bad-input corpus: refused before any workflow or AWS call', () => {
  const rec: Recorder = { temporalCalls: [], connections: [] };
  const connect = net.Socket.prototype.connect;
  const saved = { secret: process.env.AWS_SECRET_ACCESS_KEY, apiKey: process.env.TEMPORAL_API_KEY };
  before(() => {
    // GIVEN secrets in the environment and a process where any network connection is recorded
    process.env.AWS_SECRET_ACCESS_KEY = SECRET;
    process.env.TEMPORAL_API_KEY = SECRET;
    net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
      rec.connections.push(JSON.stringify(args[0]));
      this.destroy(new Error('the corpus allows no network connection'));
      return this;
    };
  });
  after(() => {
    net.Socket.prototype.connect = connect;
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    if (saved.apiKey === undefined) delete process.env.TEMPORAL_API_KEY;
    else process.env.TEMPORAL_API_KEY = saved.apiKey;
    const rows = [...totals].sort(([a], [b]) => a.localeCompare(b));
    const all = rows.reduce((s, [, t]) => ({ cases: s.cases + t.cases, refused: s.refused + t.refused }), {
      cases: 0,
      refused: 0,
    });
    const lines = [
      `bad-input corpus: ${all.cases} cases, ${all.refused} refused before any workflow or AWS call (${((100 * all.refused) / Math.max(all.cases, 1)).toFixed(1)} %)`,
      ...rows.map(([k, t]) => `  ${k.padEnd(34)} ${String(t.refused).padStart(3)}/${t.cases}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  });

  describe('CLI', () => {
    for (const c of CLI_CASES)
      test(`${c.command}: ${label(c.argv)} names ${c.names}`, async () => {
        rec.temporalCalls.length = 0;
        rec.connections.length = 0;
        const outcome: Outcome = { ok: false, preWorkflow: false };
        try {
          // WHEN the command line is run
          const r = await runCli(c, rec);
          outcome.preWorkflow = rec.temporalCalls.length === 0 && rec.connections.length === 0;
          // THEN it exits 2 before connecting, naming the flag, without a stack trace or a secret
          assert.deepEqual(rec.temporalCalls, [], `nothing may reach Temporal: ${r.err}`);
          assert.deepEqual(rec.connections, []);
          assert.equal(r.code, 2, `exit code (stderr: ${r.err})`);
          assert.ok(r.err.includes(c.names), `stderr should name ${c.names}: ${r.err}`);
          assert.doesNotMatch(r.err, STACK);
          assert.ok(!`${r.out}${r.err}`.includes(SECRET), 'no secret echoed');

          assert.doesNotMatch(
            r.err,
            /[\u0000-\u0008\u000b-\u001f\u007f]/,
            'no raw control character printed',
          );
          outcome.ok = true;
        } finally {
          count(`cli ${c.command}`, outcome);
        }
      });
  });

  describe('client library', () => {
    const cases: LibraryCase[] = LIBRARY_CASES;
    cases.forEach((c, i) => {
      void test(`${c.method} #${i + 1} names ${c.names}`, async () => {
        rec.temporalCalls.length = 0;
        rec.connections.length = 0;
        const outcome: Outcome = { ok: false, preWorkflow: false };
        try {
          // WHEN the method is called with the bad input
          const err = await c.call(recordingClient(rec)).then(
            () => undefined,
            (e: unknown) => e,
          );
          outcome.preWorkflow = rec.temporalCalls.length === 0 && rec.connections.length === 0;
          // THEN InvalidInputError names the field, and nothing reached Temporal or the network
          assert.ok(err instanceof InvalidInputError, `expected InvalidInputError, got ${String(err)}`);
          assert.ok(
            err.issues.some((x) => x.field.includes(c.names)),
            `issues ${JSON.stringify(err.issues)} should name ${c.names}`,
          );
          assert.deepEqual(rec.temporalCalls, []);
          assert.deepEqual(rec.connections, []);
          assert.ok(!err.message.includes(SECRET));
          outcome.ok = true;
        } finally {
          count(`lib ${c.method}`, outcome);
        }
      });
    });
  });
});
