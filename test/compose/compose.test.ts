/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine: services, pinned images,
 * ports, start order, the worker's environment against what worker/config.ts reads, and the
 * search attributes against workflows/contracts.ts. When a Compose binary is installed, Compose
 * itself validates the file too.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { readWorkerSettings } from '../../worker/config';
import { temporalCli } from '../support/tools';
import { DEFAULT_TASK_QUEUE, SEARCH_ATTRIBUTE_TYPES } from '../../workflows/contracts';

const ROOT = path.resolve(__dirname, '..', '..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

type Env = Record<string, string | undefined>;

interface Service {
  image?: string;
  build?: unknown;
  ports?: unknown[];
  environment?: unknown;
  depends_on?: unknown;
  healthcheck?: { test?: unknown };
  volumes?: unknown[];
  entrypoint?: unknown;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function loadCompose(): Record<string, Service> {
  const doc: unknown = parse(readFileSync(COMPOSE_FILE, 'utf8'));
  assert.ok(isRecord(doc) && isRecord(doc.services), 'docker-compose.yml has a services map');
  return doc.services as Record<string, Service>;
}

function service(name: string): Service {
  const s = loadCompose()[name];
  assert.ok(s, `docker-compose.yml defines the '${name}' service`);
  return s;
}

/** `environment` in either Compose form; a bare `- NAME` passes the host's value through (undefined here). */
function environmentOf(s: Service): Env {
  const env = s.environment;
  if (env === undefined) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((item) => {
        const text = String(item);
        const at = text.indexOf('=');
        return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
      }),
    );
  }
  assert.ok(isRecord(env), 'environment is a list or a map');
  return Object.fromEntries(
    Object.entries(env).map(([k, v]): [string, string | undefined] => {
      if (v === null) return [k, undefined];
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return [k, String(v)];
      assert.fail(`environment.${k} must be a string, number or boolean`);
    }),
  );
}

/** depends_on in the long form: service → condition. */
function conditionsOf(s: Service): Record<string, string> {
  const deps = s.depends_on;
  if (deps === undefined) return {};
  assert.ok(isRecord(deps), 'depends_on uses the long form, with a condition per service');
  return Object.fromEntries(
    Object.entries(deps).map(([name, spec]) => {
      assert.ok(isRecord(spec) && typeof spec.condition === 'string', `depends_on.${name} has a condition`);
      return [name, spec.condition];
    }),
  );
}

/** Container ports a service publishes ("127.0.0.1:7233:7233" → 7233). */
function publishedContainerPorts(s: Service): number[] {
  return (s.ports ?? []).map((p) => {
    const text = isRecord(p) ? String(p.target) : String(p);
    return Number(text.split(':').at(-1)?.split('/')[0]);
  });
}

/** Every environment variable worker/config.ts reads, found by reading settings through a recording proxy. */
function variablesReadByWorkerConfig(): Set<string> {
  const seen = new Set<string>();
  const recording = (values: Env): Env =>
    new Proxy(values, {
      get(target, key, receiver) {
        if (typeof key === 'string') seen.add(key);
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
  readWorkerSettings(recording({}));
  // The TLS branch reads more (server name, CA) once a certificate and key are set.
  readWorkerSettings(
    recording({ TEMPORAL_TLS_CERT: '/tls/client.pem', TEMPORAL_TLS_KEY: '/tls/client.key' }),
  );
  return seen;
}

/** Variables the AWS SDK's default credential chain and region lookup read. */
const AWS_SDK_VARIABLES = new Set([
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_CONFIG_FILE',
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
]);

const EXPECTED_SERVICES = [
  'postgresql',
  'temporal-schema',
  'temporal',
  'temporal-setup',
  'temporal-ui',
  'worker',
];

void describe('docker-compose.yml', () => {
  void it('GIVEN the file WHEN parsed THEN it runs PostgreSQL, Temporal, its setup steps, the Web UI and the worker', () => {
    assert.deepEqual(Object.keys(loadCompose()).sort(), [...EXPECTED_SERVICES].sort());
    assert.match(service('postgresql').image ?? '', /^postgres:/);
    assert.match(service('temporal').image ?? '', /^temporalio\/server:/);
    assert.match(service('temporal-schema').image ?? '', /^temporalio\/admin-tools:/);
    assert.match(service('temporal-setup').image ?? '', /^temporalio\/admin-tools:/);
    assert.match(service('temporal-ui').image ?? '', /^temporalio\/ui:/);
    assert.ok(service('worker').build, 'the worker is built from the Dockerfile');
  });

  void it('GIVEN every image WHEN read THEN it is pinned to a version, never latest', () => {
    for (const [name, s] of Object.entries(loadCompose())) {
      const image = s.image;
      assert.ok(image, `${name} names its image`);
      const digest = image.includes('@sha256:');
      const tag = image.split('@')[0]?.split('/').at(-1)?.split(':')[1];
      assert.ok(
        digest || (tag !== undefined && tag !== 'latest'),
        `${name}: '${image}' must pin a tag or digest`,
      );
      if (!digest)
        assert.match(tag ?? '', /^\d+\.\d+/, `${name}: '${image}' must pin a version, not a moving tag`);
    }
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(
      service('worker').image,
      `amiflow-worker:${pkg.version}`,
      'the worker image carries the package version',
    );
    // The server and the tools that set up its schema must be the same release.
    const version = (s: Service) => s.image?.split(':')[1];
    assert.equal(version(service('temporal-schema')), version(service('temporal')));
    assert.equal(version(service('temporal-setup')), version(service('temporal')));
  });

  void it('GIVEN the dev server the tests use WHEN compared THEN compose runs the same server and UI releases', () => {
    const res = spawnSync(temporalCli(), ['--version'], { encoding: 'utf8' });
    const m = /Server (\d+\.\d+\.\d+), UI (\d+\.\d+\.\d+)/.exec(res.stdout);
    assert.ok(m, `temporal --version names the server and UI: ${res.stdout}${res.stderr}`);
    assert.equal(service('temporal').image, `temporalio/server:${m[1]}`);
    assert.equal(service('temporal-ui').image, `temporalio/ui:${m[2]}`);
  });

  void it('GIVEN the worker WHEN read THEN a readiness healthcheck and the metrics port on loopback', () => {
    const test = service('worker').healthcheck?.test;
    assert.ok(Array.isArray(test) && test.join(' ').includes('/readyz'), 'the healthcheck asks /readyz');
    assert.deepEqual(publishedContainerPorts(service('worker')), [9464]);
  });

  void it('GIVEN the ports WHEN read THEN Temporal gRPC is on 7233 and the Web UI on 8080, on loopback', () => {
    assert.deepEqual(publishedContainerPorts(service('temporal')), [7233]);
    assert.deepEqual(publishedContainerPorts(service('temporal-ui')), [8080]);
    for (const name of ['temporal', 'temporal-ui']) {
      for (const p of service(name).ports ?? [])
        assert.match(String(p), /^127\.0\.0\.1:/, `${name} publishes on loopback only: ${String(p)}`);
    }
    assert.deepEqual(
      publishedContainerPorts(service('postgresql')),
      [],
      'the database stays inside the network',
    );
  });

  void it('GIVEN depends_on WHEN read THEN each service waits for what it needs to be healthy or done', () => {
    assert.deepEqual(conditionsOf(service('temporal-schema')), { postgresql: 'service_healthy' });
    assert.deepEqual(conditionsOf(service('temporal')), {
      'temporal-schema': 'service_completed_successfully',
    });
    assert.deepEqual(conditionsOf(service('temporal-setup')), { temporal: 'service_healthy' });
    assert.deepEqual(conditionsOf(service('temporal-ui')), { temporal: 'service_healthy' });
    assert.deepEqual(conditionsOf(service('worker')), {
      temporal: 'service_healthy',
      'temporal-setup': 'service_completed_successfully',
    });
    const services = loadCompose();
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, condition] of Object.entries(conditionsOf(s))) {
        assert.ok(services[dep], `${name} depends on '${dep}', which exists`);
        if (condition === 'service_healthy')
          assert.ok(
            services[dep]?.healthcheck?.test,
            `${name} waits for '${dep}' to be healthy: it needs a healthcheck`,
          );
      }
    }
  });

  void it('GIVEN the worker environment WHEN compared with worker/config.ts THEN every amiflow variable is one it reads', () => {
    const env = environmentOf(service('worker'));
    const read = variablesReadByWorkerConfig();
    for (const name of Object.keys(env)) {
      if (AWS_SDK_VARIABLES.has(name)) continue;
      assert.ok(
        read.has(name),
        `worker sets ${name}, which worker/config.ts never reads (read: ${[...read].sort().join(', ')})`,
      );
    }
    assert.equal(
      env.TEMPORAL_ADDRESS,
      'temporal:7233',
      'the worker reaches the temporal service on its gRPC port',
    );
    assert.equal(env.AMIFLOW_TASK_QUEUE, DEFAULT_TASK_QUEUE);
    assert.equal(
      env.TEMPORAL_NAMESPACE,
      environmentOf(service('temporal-setup')).TEMPORAL_NAMESPACE,
      'the worker polls the namespace the setup step creates',
    );
    // The whole environment is accepted by the worker's own parser.
    assert.doesNotThrow(() => readWorkerSettings(env));
    for (const name of ['temporal-setup', 'temporal-ui'])
      assert.equal(
        environmentOf(service(name)).TEMPORAL_ADDRESS,
        'temporal:7233',
        `${name} reaches the server`,
      );
  });

  void it('GIVEN the setup step WHEN read THEN it registers exactly the search attributes of workflows/contracts.ts', () => {
    const raw = environmentOf(service('temporal-setup')).AMIFLOW_SEARCH_ATTRIBUTES ?? '';
    const registered = Object.fromEntries(
      raw.split(',').map((pair) => {
        const [name, type] = pair.split('=');
        return [name ?? '', type ?? ''];
      }),
    );
    assert.deepEqual(registered, SEARCH_ATTRIBUTE_TYPES);
  });

  void it('GIVEN the bind mounts WHEN read THEN each file or folder mounted from the repository exists', () => {
    for (const [name, s] of Object.entries(loadCompose())) {
      for (const v of s.volumes ?? []) {
        const source = String(v).split(':')[0] ?? '';
        if (!source.startsWith('./')) continue;
        assert.ok(existsSync(path.join(ROOT, source)), `${name} mounts ${source}, which exists`);
      }
    }
    for (const script of ['setup-schema.sh', 'setup-namespace.sh']) {
      const text = readFileSync(path.join(ROOT, 'deploy', 'temporal', script), 'utf8');
      assert.ok(
        text.startsWith('#!/bin/sh\n'),
        `${script} is a POSIX shell script (the admin-tools image has no bash)`,
      );
      assert.match(text, /^set -eu$/m, `${script} stops at the first error`);
    }
  });

  void it('GIVEN a Compose binary WHEN it validates the file THEN it exits 0', (t) => {
    const compose = findCompose();
    if (!compose) {
      t.skip(
        'neither `docker compose` nor `docker-compose` is installed (Debian: apt-get install docker-compose)',
      );
      return;
    }
    const res = spawnSync(compose[0] ?? '', [...compose.slice(1), '-f', COMPOSE_FILE, 'config', '-q'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { HOME: ROOT, ...process.env },
    });
    assert.equal(res.status, 0, `${compose.join(' ')} config -q failed:\n${res.stderr}`);
  });
});

void describe('Dockerfile', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');

  void it('GIVEN the build WHEN read THEN it compiles with tsconfig.build.json and runs the compiled worker', () => {
    assert.match(dockerfile, /^RUN npm ci\b/m);
    assert.match(dockerfile, /^RUN npm run build$/m);
    assert.match(dockerfile, /^RUN npm ci --omit=dev\b/m);
    // Node flags may come before the entry (the lean ones: test/deploy/lean-runtime.test.ts).
    assert.match(dockerfile, /^CMD \["node", (?:"--[^"]+", )*"dist\/worker\/main\.js"\]$/m);
    assert.match(dockerfile, /^USER node$/m);
    const build = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
      include: string[];
    };
    const base = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as {
      compilerOptions: { outDir: string; rootDir: string };
    };
    assert.equal(base.compilerOptions.outDir, 'dist');
    assert.equal(base.compilerOptions.rootDir, '.');
    assert.ok(build.include.includes('worker'), 'the build compiles worker/ (dist/worker/main.js)');
    assert.ok(existsSync(path.join(ROOT, 'worker', 'main.ts')));
    for (const folder of build.include)
      assert.match(
        dockerfile,
        new RegExp(`^COPY ${folder} \\./${folder}$`, 'm'),
        `the image copies ${folder}/`,
      );
  });

  void it('GIVEN the base image WHEN read THEN it is a pinned Node 24 LTS on Debian (the Temporal core needs glibc)', () => {
    const image = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
    assert.ok(image, 'the base image is one ARG');
    assert.match(image, /^node:24\.\d+\.\d+-bookworm-slim$/);
    const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    assert.ok(froms.length >= 2, 'multi-stage');
    for (const from of froms) assert.equal(from, '${NODE_IMAGE}');
  });
});

/** `docker compose` (v2 plugin) if it answers, else `docker-compose` (v1, Debian's package), else undefined. */
function findCompose(): string[] | undefined {
  for (const candidate of [['docker', 'compose'], ['docker-compose']]) {
    const res = spawnSync(candidate[0] ?? '', [...candidate.slice(1), 'version'], { encoding: 'utf8' });
    if (!res.error && res.status === 0) return candidate;
  }
  return undefined;
}
