/**
 * The lean runtime settings (docs/sizing.md) are one fact in four places: `LEAN_ENV` (what every
 * bench and e2e worker runs with, so what the memory figures measured), the Dockerfile's ENV (the
 * image, which docker-compose runs), the Kubernetes Deployment's env and `npm start`. They must not
 * drift: a figure measured under one set would not describe what ships.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { LEAN_ENV } from '../../devkit/worker-process';
import { ROOT } from '../support/tools';

const read = (...p: string[]) => readFileSync(path.join(ROOT, ...p), 'utf8');

/** `KEY=value` pairs of the Dockerfile's final stage ENV lines (a value without spaces or quotes). */
function dockerfileEnv(): Record<string, string> {
  const stages = read('Dockerfile').split(/^FROM /m);
  const last = stages[stages.length - 1] ?? '';
  const env: Record<string, string> = {};
  for (const line of last.split('\n').filter((l) => l.startsWith('ENV ')))
    for (const pair of line.slice(4).trim().split(/\s+/)) {
      const at = pair.indexOf('=');
      if (at > 0) env[pair.slice(0, at)] = pair.slice(at + 1);
    }
  return env;
}

function deploymentEnv(): Record<string, string> {
  const doc = parse(read('deploy', 'kubernetes', 'deployment.yaml')) as {
    spec: {
      template: { spec: { containers: { name: string; env?: { name: string; value?: string }[] }[] } };
    };
  };
  const worker = doc.spec.template.spec.containers.find((c) => c.name === 'worker');
  assert.ok(worker, 'deployment.yaml has no container named worker');
  return Object.fromEntries(
    (worker.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])),
  );
}

/** `npm start`'s variables and its node flags, as NODE_OPTIONS would carry them. */
function npmStartEnv(): Record<string, string> {
  const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start;
  const words = start.split(/\s+/);
  const node = words.indexOf('node');
  assert.ok(node > 0, `npm start should run node after its variables: ${start}`);
  const env = Object.fromEntries(
    words.slice(0, node).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
  );
  const flags = words.slice(node + 1).filter((w) => w.startsWith('--') && w !== '--import');
  return { ...env, NODE_OPTIONS: flags.join(' ') };
}

void describe('lean runtime settings', () => {
  for (const [where, env] of [
    ['the Dockerfile', dockerfileEnv],
    ['the Kubernetes Deployment', deploymentEnv],
    ['npm start', npmStartEnv],
  ] as const)
    void it(`GIVEN ${where} WHEN its runtime settings are read THEN they are LEAN_ENV's`, () => {
      const found = env();
      for (const [name, value] of Object.entries(LEAN_ENV))
        assert.equal(
          found[name],
          value,
          `${where}: ${name} should be ${value} as in LEAN_ENV (devkit/worker-process.ts)`,
        );
    });
});
