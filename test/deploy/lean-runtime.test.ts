/**
 * The lean runtime settings (docs/sizing.md) are one fact in four places: `LEAN_ENV` and
 * `LEAN_NODE_FLAGS` (what every bench and e2e worker runs with, so what the memory figures
 * measured), the Dockerfile (its ENV and its CMD: the image, which docker-compose runs), the
 * Kubernetes Deployment (its env and its command) and `npm start`. They must not drift: a figure
 * measured under one set would not describe what ships. Node 24 refuses most V8 flags in
 * NODE_OPTIONS, so `LEAN_NODE_FLAGS` must be on each place's node command line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { LEAN_ENV, LEAN_NODE_FLAGS } from '../../devkit/worker-process';
import { ROOT } from '../support/tools';

const read = (...p: string[]) => readFileSync(path.join(ROOT, ...p), 'utf8');

/** How a place starts the worker: its environment and the flags between `node` and the entry. */
interface Runtime {
  env: Record<string, string>;
  nodeFlags: string[];
}

/** The flags of a `node … entry` command: what comes after `node`, up to the entry, minus `--import X`. */
function nodeFlagsOf(command: readonly string[], where: string): string[] {
  assert.equal(command[0], 'node', `${where} should start the worker with node: ${command.join(' ')}`);
  const flags: string[] = [];
  for (let i = 1; i < command.length; i++) {
    const word = command[i] ?? '';
    if (word === '--import') i++;
    else if (word.startsWith('--')) flags.push(word);
    else break;
  }
  return flags;
}

/** The Dockerfile's final stage: `KEY=value` pairs of its ENV lines and its exec-form CMD. */
function dockerfileRuntime(): Runtime {
  const stages = read('Dockerfile').split(/^FROM /m);
  const last = stages[stages.length - 1] ?? '';
  const env: Record<string, string> = {};
  for (const line of last.split('\n').filter((l) => l.startsWith('ENV ')))
    for (const pair of line.slice(4).trim().split(/\s+/)) {
      const at = pair.indexOf('=');
      if (at > 0) env[pair.slice(0, at)] = pair.slice(at + 1);
    }
  const cmd = last.split('\n').find((l) => l.startsWith('CMD '));
  assert.ok(cmd, 'the Dockerfile has no CMD');
  return { env, nodeFlags: nodeFlagsOf(JSON.parse(cmd.slice(4)) as string[], "the Dockerfile's CMD") };
}

function deploymentRuntime(): Runtime {
  const doc = parse(read('deploy', 'kubernetes', 'deployment.yaml')) as {
    spec: {
      template: {
        spec: {
          containers: { name: string; command?: string[]; env?: { name: string; value?: string }[] }[];
        };
      };
    };
  };
  const worker = doc.spec.template.spec.containers.find((c) => c.name === 'worker');
  assert.ok(worker, 'deployment.yaml has no container named worker');
  return {
    env: Object.fromEntries(
      (worker.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])),
    ),
    nodeFlags: nodeFlagsOf(worker.command ?? [], "the Deployment's worker command"),
  };
}

/** `npm start`'s variables, and its node flags (NODE_OPTIONS's among them: it sets no NODE_OPTIONS). */
function npmStartRuntime(): Runtime {
  const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start;
  const words = start.split(/\s+/);
  const node = words.indexOf('node');
  assert.ok(node > 0, `npm start should run node after its variables: ${start}`);
  const env = Object.fromEntries(
    words.slice(0, node).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
  );
  const nodeFlags = nodeFlagsOf(words.slice(node), 'npm start');
  return {
    env: { ...env, NODE_OPTIONS: nodeFlags.filter((f) => !LEAN_NODE_FLAGS.includes(f)).join(' ') },
    nodeFlags,
  };
}

void describe('lean runtime settings', () => {
  for (const [where, runtime] of [
    ['the Dockerfile', dockerfileRuntime],
    ['the Kubernetes Deployment', deploymentRuntime],
    ['npm start', npmStartRuntime],
  ] as const) {
    void it(`GIVEN ${where} WHEN its environment is read THEN it is LEAN_ENV's`, () => {
      const { env } = runtime();
      for (const [name, value] of Object.entries(LEAN_ENV))
        assert.equal(
          env[name],
          value,
          `${where}: ${name} should be ${value} as in LEAN_ENV (devkit/worker-process.ts)`,
        );
    });

    void it(`GIVEN ${where} WHEN its node command line is read THEN it carries LEAN_NODE_FLAGS`, () => {
      const { nodeFlags } = runtime();
      for (const flag of LEAN_NODE_FLAGS)
        assert.ok(
          nodeFlags.includes(flag),
          `${where}: node should run with ${flag} as in LEAN_NODE_FLAGS (devkit/worker-process.ts); it has ${nodeFlags.join(' ') || 'no flags'}`,
        );
    });
  }

  void it('GIVEN docker-compose.yml WHEN its worker service is read THEN it keeps the image command', () => {
    const doc = parse(read('docker-compose.yml')) as {
      services: Record<string, { command?: unknown; entrypoint?: unknown }>;
    };
    const worker = doc.services.worker;
    assert.ok(worker, 'docker-compose.yml has no worker service');
    assert.equal(worker.command, undefined, "the worker service's command would drop the image's node flags");
    assert.equal(
      worker.entrypoint,
      undefined,
      "the worker service's entrypoint would drop the image's node flags",
    );
  });

  void it('GIVEN LEAN_ENV and LEAN_NODE_FLAGS WHEN node starts with both THEN it runs', () => {
    // Node 24 refuses to start when NODE_OPTIONS holds a V8 flag it does not allow there.
    const run = spawnSync(process.execPath, [...LEAN_NODE_FLAGS, '-e', 'process.exit(0)'], {
      env: { PATH: process.env.PATH ?? '', ...LEAN_ENV },
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, `node ${LEAN_NODE_FLAGS.join(' ')} with LEAN_ENV failed: ${run.stderr}`);
  });
});
