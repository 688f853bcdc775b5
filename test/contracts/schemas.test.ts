/**
 * The contracts' zod schemas as the client and the workflows use them: issues named by field path
 * in field order, unknown fields named one by one, rules between fields reported at their field,
 * and parsing without eval (the workflow sandbox).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  InvalidInputError,
  complianceScanInputSchema,
  imageFromInstanceInputSchema,
  issuesFor,
  migrateInstanceInputSchema,
  parseWith,
} from '../../contracts';

const image = {
  region: 'eu-west-1',
  instanceId: 'i-0123456789abcdef0',
  imageName: 'web-2026.01.15',
  mode: 'stop',
};

void describe('contracts as zod schemas', () => {
  void it('GIVEN a typo at the top, a bad nested field and a bad mode WHEN parsed THEN the typo comes first, the rest in field order, each named by its path', () => {
    const issues = issuesFor(imageFromInstanceInputSchema, {
      ...image,
      noReboot: true,
      mode: 'fast',
      timeouts: { imageAvailableSeconds: 30, extra: 1 },
    });
    assert.deepEqual(
      issues.map((i) => i.field),
      ['noReboot', 'mode', 'timeouts.imageAvailableSeconds', 'timeouts.extra'],
    );
    assert.match(issues[0]?.message ?? '', /is not a known field \(known: region, accountId, instanceId, /);
    assert.match(
      issues[1]?.message ?? '',
      /'fast' is not a consistency mode; use one of stop, reboot, no-reboot/,
    );
  });

  void it('GIVEN a zone of another region WHEN a migration is parsed THEN the rule between region and zone reports at targetAvailabilityZone, in its place among the fields', () => {
    const issues = issuesFor(migrateInstanceInputSchema, {
      region: 'eu-west-1',
      instanceId: 'i-01',
      targetAvailabilityZone: 'us-east-1b',
      sourceAction: 'move',
    });
    assert.deepEqual(
      issues.map((i) => i.field),
      ['instanceId', 'targetAvailabilityZone', 'sourceAction'],
    );
    assert.match(issues[1]?.message ?? '', /not an Availability Zone of region 'eu-west-1'/);
  });

  void it('GIVEN a valid input WHEN parsed with parseWith THEN the caller’s own object comes back; GIVEN a bad one THEN InvalidInputError names every field', () => {
    assert.equal(parseWith(imageFromInstanceInputSchema, image), image);
    assert.throws(
      () => parseWith(complianceScanInputSchema, { name: 'a/b', regions: ['eu-west-1', 'eu-west-1'] }),
      (err: unknown) =>
        err instanceof InvalidInputError &&
        err.message ===
          "invalid input: name: 'a/b' is not a valid name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit; regions[1]: 'eu-west-1' is listed twice",
    );
  });

  void it('GIVEN the contracts loaded THEN zod parses without eval (jitless), as the workflow sandbox needs', () => {
    assert.equal(z.config().jitless, true);
  });
});
