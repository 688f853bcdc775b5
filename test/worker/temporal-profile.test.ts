/** worker/temporal-profile.ts: the worker connects as the Temporal CLI would, and says from where. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readTemporalSettings } from '../../worker/config';
import { connectWorker, workerConnectionPlan } from '../../worker/temporal-profile';
import { freePort } from '../support/ports';

function tomlFile(): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'amiflow-toml-')), 'temporal.toml');
  writeFileSync(
    file,
    [
      '[profile.default]',
      'address = "localhost:7233"',
      '',
      '[profile.prod]',
      'address = "prod.tmprl.cloud:7233"',
      'namespace = "amiflow.acct"',
      'api_key = "key-from-file"',
      '',
    ].join('\n'),
  );
  return file;
}

void describe('the worker Temporal connection (envconfig)', () => {
  void it('GIVEN a profile in temporal.toml WHEN TEMPORAL_PROFILE names it THEN address, namespace and API key come from it', async () => {
    const env = { TEMPORAL_CONFIG_FILE: tomlFile(), TEMPORAL_PROFILE: 'prod' };
    const plan = await workerConnectionPlan(readTemporalSettings(env), env);
    assert.equal(plan.address, 'prod.tmprl.cloud:7233');
    assert.equal(plan.namespace, 'amiflow.acct');
    assert.equal(plan.options.apiKey, 'key-from-file');
    assert.ok(plan.options.tls, 'an API key implies TLS');
    assert.match(plan.source, /profile 'prod' in .*temporal\.toml/);
  });

  void it('GIVEN the profile and TEMPORAL_ADDRESS WHEN read THEN the variable wins and is named', async () => {
    const env = {
      TEMPORAL_CONFIG_FILE: tomlFile(),
      TEMPORAL_PROFILE: 'prod',
      TEMPORAL_ADDRESS: 'other:7233',
    };
    const plan = await workerConnectionPlan(readTemporalSettings(env), env);
    assert.equal(plan.address, 'other:7233');
    assert.equal(plan.source, 'TEMPORAL_ADDRESS');
  });

  void it('GIVEN a profile that does not exist WHEN read THEN refused naming the profile and the file', async () => {
    const env = { TEMPORAL_CONFIG_FILE: tomlFile(), TEMPORAL_PROFILE: 'staging' };
    await assert.rejects(
      workerConnectionPlan(readTemporalSettings(env), env),
      /profile 'staging'.*TEMPORAL_PROFILE/,
    );
  });

  void it('GIVEN nothing listening WHEN the worker connects THEN the failure names the address and its setting', async () => {
    const env = {
      TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
      TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml',
    };
    const plan = await workerConnectionPlan(readTemporalSettings(env), env);
    await assert.rejects(connectWorker(plan), (err: Error) => {
      assert.match(
        err.message,
        new RegExp(`cannot connect to Temporal at ${env.TEMPORAL_ADDRESS} \\(from TEMPORAL_ADDRESS\\)`),
      );
      return true;
    });
  });
});
