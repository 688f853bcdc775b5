/**
 * deploy/kubernetes: every manifest passes kubernetes-validate (strict: unknown fields fail) against
 * the Kubernetes API schemas, and the manifests agree with the worker: probes on its health paths
 * and port, the scrape port its metrics address, a termination grace longer than its shutdown grace.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { hostAndPort, readWorkerSettings } from '../../worker/config';
import { ROOT, validator } from '../support/tools';

const DIR = path.join(ROOT, 'deploy', 'kubernetes');
const KUBERNETES_VERSION = '1.33.0';
const kubeValidate = validator('AMIFLOW_KUBERNETES_VALIDATE', 'kubernetes-validate');

function validate(file: string): { ok: boolean; output: string } {
  if (!('path' in kubeValidate)) throw new Error(kubeValidate.missing);
  const res = spawnSync(kubeValidate.path, ['--strict', '-k', KUBERNETES_VERSION, file], {
    encoding: 'utf8',
  });
  return { ok: res.status === 0, output: `${res.stdout}${res.stderr}` };
}

/** The plain Kubernetes objects (not kustomize's file, not the operator's CRD objects). */
const MANIFESTS = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');

type Doc = Record<string, unknown>;
const load = (file: string): Doc => parse(readFileSync(path.join(DIR, file), 'utf8')) as Doc;
function at(doc: unknown, ...keys: (string | number)[]): unknown {
  return keys.reduce<unknown>((v, k) => (v as Record<string | number, unknown> | undefined)?.[k], doc);
}

const skip = 'missing' in kubeValidate ? kubeValidate.missing : false;

void describe('Kubernetes manifests', () => {
  void it('GIVEN each manifest WHEN validated strictly THEN it passes', { skip }, () => {
    assert.ok(MANIFESTS.length >= 5);
    for (const file of MANIFESTS) {
      const { ok, output } = validate(path.join(DIR, file));
      assert.ok(ok, `${file}: ${output}`);
    }
  });

  void it(
    'GIVEN a manifest with a misspelt field WHEN validated THEN it fails (the validator can fail)',
    { skip },
    () => {
      const bad = load('deployment.yaml');
      (bad.spec as Doc).replica = 2;
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'amiflow-k8s-')), 'bad.yaml');
      writeFileSync(file, JSON.stringify(bad));
      const { ok, output } = validate(file);
      assert.equal(ok, false);
      assert.match(output, /replica/);
    },
  );

  void it('GIVEN the manifests WHEN read with the worker config THEN probes, ports and grace agree', () => {
    const config = at(load('configmap.yaml'), 'data') as Record<string, string>;
    const settings = readWorkerSettings(config, false);
    assert.equal(settings.logFormat, 'json');
    const deployment = load('deployment.yaml');
    const pod = at(deployment, 'spec', 'template', 'spec') as Doc;
    const container = at(pod, 'containers', 0) as Doc;
    const ports = Object.fromEntries(
      (container.ports as { name: string; containerPort: number }[]).map((p) => [p.name, p.containerPort]),
    );
    assert.equal(ports.health, hostAndPort(settings.healthAddress ?? '').port);
    assert.equal(ports.metrics, hostAndPort(settings.metricsAddress ?? '').port);
    assert.equal(at(container, 'livenessProbe', 'httpGet', 'path'), '/healthz');
    assert.equal(at(container, 'readinessProbe', 'httpGet', 'path'), '/readyz');
    assert.equal(
      at(deployment, 'spec', 'template', 'metadata', 'annotations', 'prometheus.io/port'),
      String(ports.metrics),
    );
    assert.ok(
      (pod.terminationGracePeriodSeconds as number) * 1000 > settings.shutdownGraceMs + 5000,
      'Kubernetes waits longer than the worker lets activities finish',
    );
    const podLabels = at(deployment, 'spec', 'template', 'metadata', 'labels') as Record<string, string>;
    for (const file of ['pdb.yaml', 'service.yaml']) {
      const selector = (at(load(file), 'spec', 'selector', 'matchLabels') ??
        at(load(file), 'spec', 'selector')) as Record<string, string>;
      for (const [k, v] of Object.entries(selector))
        assert.equal(podLabels[k], v, `${file} selects the worker pods`);
    }
    const monitor = parse(
      readFileSync(path.join(DIR, 'prometheus-operator', 'servicemonitor.yaml'), 'utf8'),
    ) as Doc;
    const servicePorts = (at(load('service.yaml'), 'spec', 'ports') as { name: string }[]).map((p) => p.name);
    assert.ok(servicePorts.includes(String(at(monitor, 'spec', 'endpoints', 0, 'port'))));
    const kustomized = (
      at(parse(readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8')), 'resources') as string[]
    ).sort();
    assert.deepEqual(
      kustomized,
      MANIFESTS.filter((f) => !f.includes('example')).sort(),
      'kustomization lists every manifest',
    );
  });
});
