/**
 * client/policies.ts: the IAM and KMS key policy statements `amiflow guardrails policy` prints,
 * taken from its output as JSON and checked statement by statement, then evaluated with IAM's rules
 * for the operators they use (conditions ANDed across keys, ORed across values; a negated operator
 * is true for a key the request lacks; an explicit Deny wins) against launches from approved,
 * retired, tagged, allowed-owner and unknown images, and against KMS calls with and without
 * `kms:GrantIsForAWSResource`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AmiflowClient } from '../../client';
import { run } from '../../client/cli';
import type { KeyPolicies, LaunchPolicies, PolicyDocument, PolicyStatement } from '../../client/policies';
import {
  POLICY_SIZE_LIMITS,
  keyPolicies,
  launchPolicies,
  policyFindings,
  roleWildcardWarnings,
  workerPolicy,
} from '../../client/policies';
import type { ApprovedImage, Catalogue, IamPolicyStatement } from '../../workflows/contracts';

const TOOLING = '111100001111';
const TARGETS = ['333300003333', '222200002222'];
const KEY_EU = `arn:aws:kms:eu-west-1:${TOOLING}:key/1111aaaa-11aa-11aa-11aa-111111111111`;
const KEY_US = `arn:aws:kms:us-east-1:${TOOLING}:key/2222bbbb-22bb-22bb-22bb-222222222222`;
const THROUGH_EC2_BY_TARGETS = {
  StringEquals: { 'kms:CallerAccount': ['222200002222', '333300003333'] },
  StringLike: { 'kms:ViaService': 'ec2.*.amazonaws.com' },
};
const KEY_OLD = `arn:aws:kms:eu-west-1:${TOOLING}:key/3333cccc-33cc-33cc-33cc-333333333333`;

function image(imageId: string, region: string, extra: Partial<ApprovedImage> = {}): ApprovedImage {
  return {
    imageId,
    region,
    ownerId: TOOLING,
    pipeline: 'web',
    state: 'available',
    deprecated: false,
    kmsKeyIds: [],
    basis: 'approval-tags',
    ...extra,
  };
}

const CURRENT_EU = 'ami-0a000000000000001';
const CURRENT_US = 'ami-0a000000000000002';
const RETIRED_EU = 'ami-0b000000000000001';
const VENDOR_EU = 'ami-0c000000000000001';

const CATALOGUE: Catalogue = {
  images: [
    image(CURRENT_EU, 'eu-west-1', { kmsKeyIds: [KEY_EU] }),
    image(RETIRED_EU, 'eu-west-1', { deprecated: true, kmsKeyIds: [KEY_OLD] }),
    image(CURRENT_US, 'us-east-1', { kmsKeyIds: [KEY_US] }),
    image(VENDOR_EU, 'eu-west-1', {
      ownerId: '555500005555',
      basis: 'allow-list',
      reason: 'vendor',
      kmsKeyIds: [KEY_EU],
    }),
  ],
  allowedOwners: [{ owner: 'amazon', reason: 'EKS-optimized images' }],
  errors: [],
  readAt: '2026-01-01T00:00:00.000Z',
};

/**
 * Runs `amiflow guardrails policy … --json` against a client that answers the catalogue; returns
 * what it printed, parsed.
 */
async function printed(argv: string[], catalogue: Catalogue = CATALOGUE): Promise<unknown> {
  const client = {
    listApprovedImages: () => Promise.resolve(catalogue),
    close: () => Promise.resolve(),
  } as unknown as AmiflowClient;
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(' '));
  try {
    assert.equal(await run(['guardrails', 'policy', ...argv, '--json'], () => Promise.resolve(client)), 0);
  } finally {
    console.log = log;
  }
  return JSON.parse(lines.join('\n'));
}

/** Runs `amiflow guardrails policy …` with a connection that must not be made. */
function refusedWithoutConnecting(argv: string[]): Promise<number> {
  return run(['guardrails', 'policy', ...argv], () => Promise.reject(new Error('must not connect')));
}

// --- IAM's evaluation, for the operators the statements use -----------------------------------

type Context = Record<string, string | boolean | undefined>;

function glob(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.?+^$()[\]{}|\\/]/g, '\\$&'))
      .join('.*')}$`,
  );
  return re.test(value);
}

function conditionHolds(condition: PolicyStatement['Condition'], ctx: Context): boolean {
  return Object.entries(condition ?? {}).every(([op, keys]) =>
    Object.entries(keys).every(([key, raw]) => {
      const values = (Array.isArray(raw) ? raw : [raw]).map(String);
      const actual = ctx[key];
      switch (op) {
        case 'StringEquals':
          return actual !== undefined && values.includes(String(actual));
        case 'StringNotEquals':
          return actual === undefined || !values.includes(String(actual));
        case 'Bool':
          return actual !== undefined && values.includes(String(actual));
        case 'ForAnyValue:StringEqualsIgnoreCase': {
          const lower = values.map((v) => v.toLowerCase());
          return String(actual ?? '')
            .split(',')
            .some((a) => a !== '' && lower.includes(a.toLowerCase()));
        }
        case 'StringLike':
          return actual !== undefined && values.some((v) => glob(v, String(actual)));
        case 'ArnNotLike':
          return actual === undefined || !values.some((v) => glob(v, String(actual)));
        default:
          throw new Error(`the test evaluator does not know ${op}`);
      }
    }),
  );
}

function matches(
  s: PolicyStatement | IamPolicyStatement,
  action: string,
  resource: string,
  ctx: Context,
): boolean {
  const actions = Array.isArray(s.Action) ? s.Action : [s.Action];
  if (!actions.some((a) => glob(a, action))) return false;
  const st = s as PolicyStatement;
  if (st.Resource !== undefined && ![st.Resource].flat().some((r) => glob(r, resource))) return false;
  if (st.NotResource !== undefined && [st.NotResource].flat().some((r) => glob(r, resource))) return false;
  return conditionHolds(st.Condition, ctx);
}

function decide(
  doc: PolicyDocument,
  action: string,
  resource: string,
  ctx: Context,
): 'allow' | 'deny' | 'implicit-deny' {
  const hits = doc.Statement.filter((s) => matches(s, action, resource, ctx));
  if (hits.some((s) => s.Effect === 'Deny')) return 'deny';
  return hits.some((s) => s.Effect === 'Allow') ? 'allow' : 'implicit-deny';
}

const imageArn = (region: string, id: string) => `arn:aws:ec2:${region}::image/${id}`;
const launch = (imageId: string, owner: string, tagged?: boolean): Context => ({
  'ec2:ImageID': imageId,
  'ec2:Owner': owner,
  ...(tagged ? { 'ec2:ResourceTag/amiflow:approved': 'true' } : {}),
});

void describe('guardrails policy --iam', () => {
  void it('GIVEN the catalogue WHEN printed as JSON THEN the allow policy has exactly three statements, each on images with its condition, and nothing that widens the principal', async () => {
    const regions = ['eu-west-1', 'us-east-1'].flatMap((r) => ['--region', r]);
    const out = (await printed(['--iam', ...regions])) as LaunchPolicies;

    assert.equal(out.allow.Version, '2012-10-17');
    const [ids, tagged, owners, ...rest] = out.allow.Statement;
    assert.equal(rest.length, 0);
    assert.deepEqual(ids, {
      Sid: 'AllowRunInstancesFromApprovedImageIds',
      Effect: 'Allow',
      Action: 'ec2:RunInstances',
      Resource: 'arn:aws:ec2:*::image/*',
      Condition: { StringEquals: { 'ec2:ImageID': [CURRENT_EU, CURRENT_US, VENDOR_EU] } },
    });
    assert.deepEqual(tagged, {
      Sid: 'AllowRunInstancesFromImagesTaggedApproved',
      Effect: 'Allow',
      Action: 'ec2:RunInstances',
      Resource: 'arn:aws:ec2:*::image/*',
      Condition: { StringEquals: { 'ec2:ResourceTag/amiflow:approved': 'true' } },
    });
    assert.deepEqual(owners, {
      Sid: 'AllowRunInstancesFromAllowListedOwners',
      Effect: 'Allow',
      Action: 'ec2:RunInstances',
      Resource: 'arn:aws:ec2:*::image/*',
      Condition: { StringEquals: { 'ec2:Owner': ['amazon'] } },
    });
    // Today's unconditioned Allow of RunInstances on everything but images is gone.
    assert.ok(out.allow.Statement.every((st) => st.NotResource === undefined));
    assert.deepEqual(policyFindings(out.allow), []);
    assert.deepEqual(policyFindings(out.deny), []);
    assert.deepEqual(out.imageIds, { 'eu-west-1': [CURRENT_EU, VENDOR_EU], 'us-east-1': [CURRENT_US] });
  });

  void it('GIVEN the catalogue WHEN printed as JSON THEN the deny policy is one statement denying images that match none of id, owner and approval tag', async () => {
    const out = (await printed(['--iam', '--region', 'eu-west-1'])) as LaunchPolicies;

    assert.deepEqual(out.deny, {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'DenyRunInstancesFromUnapprovedImages',
          Effect: 'Deny',
          Action: 'ec2:RunInstances',
          Resource: 'arn:aws:ec2:*::image/*',
          Condition: {
            StringNotEquals: {
              'ec2:ResourceTag/amiflow:approved': 'true',
              'ec2:ImageID': [CURRENT_EU, CURRENT_US, VENDOR_EU],
              'ec2:Owner': ['amazon'],
            },
          },
        },
      ],
    });
  });

  void it('GIVEN the generated policies WHEN launches are evaluated with IAM’s rules THEN approved, tagged and allowed-owner images launch, retired and unknown ones do not, and no other resource is granted', () => {
    const { allow, deny } = launchPolicies(CATALOGUE);
    const cases: [string, string, Context, 'allow' | 'implicit-deny', 'allow' | 'deny'][] = [
      [
        'approved, shared by the pipeline account',
        imageArn('eu-west-1', CURRENT_EU),
        launch(CURRENT_EU, TOOLING),
        'allow',
        'allow',
      ],
      [
        'allow-listed vendor image',
        imageArn('eu-west-1', VENDOR_EU),
        launch(VENDOR_EU, '555500005555'),
        'allow',
        'allow',
      ],
      [
        'the account’s own copy, tagged approved',
        imageArn('eu-west-1', 'ami-0e000000000000001'),
        launch('ami-0e000000000000001', TARGETS[0] as string, true),
        'allow',
        'allow',
      ],
      [
        'an Amazon image (allowed owner)',
        imageArn('us-east-1', 'ami-0f000000000000001'),
        launch('ami-0f000000000000001', 'amazon'),
        'allow',
        'allow',
      ],
      [
        'a retired version',
        imageArn('eu-west-1', RETIRED_EU),
        launch(RETIRED_EU, TOOLING),
        'implicit-deny',
        'deny',
      ],
      [
        'another image of the pipeline account',
        imageArn('eu-west-1', 'ami-0d000000000000001'),
        launch('ami-0d000000000000001', TOOLING),
        'implicit-deny',
        'deny',
      ],
      [
        'a community image',
        imageArn('eu-west-1', 'ami-0d000000000000002'),
        launch('ami-0d000000000000002', '999999999999'),
        'implicit-deny',
        'deny',
      ],
    ];
    for (const [what, resource, ctx, byAllow, byDeny] of cases) {
      assert.equal(decide(allow, 'ec2:RunInstances', resource, ctx), byAllow, `allow policy, ${what}`);
      // The deny policy sits beside an Allow * (an SCP under FullAWSAccess).
      const withFullAccess: PolicyDocument = {
        Version: '2012-10-17',
        Statement: [...deny.Statement, { Sid: 'FullAccess', Effect: 'Allow', Action: '*', Resource: '*' }],
      };
      assert.equal(decide(withFullAccess, 'ec2:RunInstances', resource, ctx), byDeny, `deny policy, ${what}`);
    }
    const instance = `arn:aws:ec2:eu-west-1:${TARGETS[0]}:instance/*`;
    assert.equal(
      decide(allow, 'ec2:RunInstances', instance, {}),
      'implicit-deny',
      "the instance resource comes from the principal's own policy: attaching this widens nothing",
    );
    assert.equal(
      decide(deny, 'ec2:RunInstances', instance, {}),
      'implicit-deny',
      'the deny statement is about images only',
    );
    assert.equal(decide(allow, 'ec2:TerminateInstances', instance, {}), 'implicit-deny', 'RunInstances only');
  });

  void it('GIVEN --include-deprecated WHEN generated THEN the retired version is named too', () => {
    const { allow } = launchPolicies(CATALOGUE, { includeDeprecated: true });
    assert.equal(
      decide(allow, 'ec2:RunInstances', imageArn('eu-west-1', RETIRED_EU), launch(RETIRED_EU, TOOLING)),
      'allow',
    );
  });

  void it('GIVEN 400 approved ids in a GovCloud region WHEN generated THEN the partition is aws-us-gov and the notes say the documents are over IAM’s size limits', () => {
    const many: Catalogue = {
      ...CATALOGUE,
      images: Array.from({ length: 400 }, (_, i) =>
        image(`ami-0${i.toString(16).padStart(16, '0')}`, 'us-gov-west-1'),
      ),
    };
    const out = launchPolicies(many);
    assert.equal(out.allow.Statement[0]?.Resource, 'arn:aws-us-gov:ec2:*::image/*');
    assert.ok(JSON.stringify(out.allow).length > POLICY_SIZE_LIMITS.managedPolicy);
    assert.ok(out.notes.some((n) => n.includes('over the 6144 of a managed policy')));
    assert.ok(out.notes.some((n) => n.includes('over the 5120 of an SCP')));
  });

  void it('GIVEN an empty catalogue WHEN generated THEN the deny statement denies every image not tagged approved, and the notes say so', () => {
    const out = launchPolicies({ images: [], allowedOwners: [], errors: [], readAt: '' });
    assert.deepEqual(out.deny.Statement[0]?.Condition, {
      StringNotEquals: { 'ec2:ResourceTag/amiflow:approved': 'true' },
    });
    assert.deepEqual(
      out.allow.Statement.map((s) => s.Sid),
      ['AllowRunInstancesFromImagesTaggedApproved'],
    );
    assert.ok(out.notes.some((n) => n.includes('has no approved image')));
  });
});

void describe('guardrails policy --iam --amiflow-role', () => {
  const ROLE = `arn:aws:iam::${TOOLING}:role/amiflow-worker`;

  void it('GIVEN the worker’s role WHEN printed as JSON THEN the deny policy also reserves the approval tags to it, whatever their case', async () => {
    const out = (await printed(['--iam', '--region', 'eu-west-1', '--amiflow-role', ROLE])) as LaunchPolicies;

    assert.deepEqual(out.deny.Statement[1], {
      Sid: 'DenyApprovalTagsExceptByAmiflow',
      Effect: 'Deny',
      Action: 'ec2:CreateTags',
      Resource: 'arn:aws:ec2:*::image/*',
      Condition: {
        'ForAnyValue:StringEqualsIgnoreCase': {
          'aws:TagKeys': [
            'amiflow:approved',
            'amiflow:pipeline',
            'amiflow:version',
            'amiflow:approved-by',
            'amiflow:approved-at',
          ],
        },
        ArnNotLike: { 'aws:PrincipalArn': [ROLE] },
      },
    });
    assert.ok(!out.notes.some((n) => n.includes('--amiflow-role')));

    const tagging = (principal: string, keys: string[]) =>
      decide(out.deny, 'ec2:CreateTags', imageArn('eu-west-1', 'ami-0e000000000000001'), {
        'aws:PrincipalArn': principal,
        'aws:TagKeys': keys.join(','),
      });
    const someone = `arn:aws:iam::${TARGETS[0]}:role/developer`;
    assert.equal(tagging(someone, ['amiflow:approved']), 'deny');
    assert.equal(tagging(someone, ['team', 'AMIFLOW:Approved']), 'deny');
    assert.equal(tagging(someone, ['team']), 'implicit-deny', 'other tags are not this statement’s business');
    assert.equal(
      tagging(ROLE, ['amiflow:approved', 'amiflow:version']),
      'implicit-deny',
      'amiflow itself may',
    );
  });

  void it('GIVEN no role WHEN generated THEN no tag statement, and a note says anyone who may tag images can approve one', () => {
    const out = launchPolicies(CATALOGUE);
    assert.equal(out.deny.Statement.length, 1);
    assert.ok(out.notes.some((n) => n.includes('--amiflow-role')));
  });

  void it('GIVEN a role that is no role ARN, or with --kms WHEN parsed THEN refused naming --amiflow-role', async () => {
    await assert.rejects(
      refusedWithoutConnecting(['--iam', '--region', 'eu-west-1', '--amiflow-role', 'amiflow']),
      /--amiflow-role #1: 'amiflow' is not an IAM role ARN/,
    );
    await assert.rejects(
      refusedWithoutConnecting([
        '--kms',
        '--region',
        'eu-west-1',
        '--account',
        '111122223333',
        '--amiflow-role',
        ROLE,
      ]),
      /--amiflow-role: applies to --iam only/,
    );
  });
});

void describe('guardrails policy --kms', () => {
  void it('GIVEN approved images under two keys (and a retired one under a third) WHEN printed as JSON THEN each current key gets two key-policy statements for the target accounts and the IAM policy their principals need', async () => {
    const accounts = TARGETS.flatMap((t) => ['--account', t]);
    const out = (await printed(['--kms', '--region', 'eu-west-1', ...accounts])) as KeyPolicies;

    assert.deepEqual(
      out.keys.map((k) => [k.keyArn, k.imageIds]),
      [
        [KEY_EU, [CURRENT_EU, VENDOR_EU]],
        [KEY_US, [CURRENT_US]],
      ],
    );
    const principals = ['arn:aws:iam::222200002222:root', 'arn:aws:iam::333300003333:root'];
    // Both key-policy statements allow the target accounts' principals on the key itself ('*').
    const toTargets = (Sid: string, Action: string | string[], Condition: PolicyStatement['Condition']) => ({
      Sid,
      Effect: 'Allow',
      Principal: { AWS: principals },
      Action,
      Resource: '*',
      Condition,
    });
    const useActions = ['DescribeKey', 'Decrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext'];
    for (const k of out.keys) {
      const [use, grant, ...rest] = k.keyPolicyStatements;
      assert.equal(rest.length, 0);
      assert.deepEqual(
        use,
        toTargets(
          'AllowApprovedImageAccountsUseOfTheKey',
          [...useActions, 'ReEncryptFrom', 'ReEncryptTo'].map((a) => `kms:${a}`),
          THROUGH_EC2_BY_TARGETS,
        ),
      );
      assert.deepEqual(
        grant,
        toTargets('AllowApprovedImageAccountsGrantsForEc2', 'kms:CreateGrant', {
          ...THROUGH_EC2_BY_TARGETS,
          Bool: { 'kms:GrantIsForAWSResource': true },
        }),
      );
      assert.deepEqual(policyFindings({ Version: '2012-10-17', Statement: k.keyPolicyStatements }), []);
      const [useIam, grantIam, ...more] = k.targetAccountIamPolicy.Statement;
      assert.equal(more.length, 0);
      assert.equal(useIam?.Resource, k.keyArn);
      assert.ok(!useIam?.Action.includes('kms:CreateGrant'));
      assert.deepEqual(grantIam?.Action, ['kms:CreateGrant']);
      assert.deepEqual(grantIam?.Condition, { Bool: { 'kms:GrantIsForAWSResource': true } });
    }
    assert.ok(out.notes.some((n) => n.includes('aws/ebs')));
  });

  void it('GIVEN the key policy WHEN KMS calls are evaluated THEN a target account may decrypt and let EC2 grant, but not grant to itself, and another account may do nothing', () => {
    const { keys } = keyPolicies(CATALOGUE, TARGETS);
    const policy: PolicyDocument = { Version: '2012-10-17', Statement: keys[0]?.keyPolicyStatements ?? [] };
    const asPrincipal = (account: string, extra: Context = {}) =>
      policy.Statement.filter((s) => [s.Principal?.AWS ?? []].flat().includes(`arn:aws:iam::${account}:root`))
        .length
        ? { ...extra }
        : undefined;
    const call = (account: string, action: string, ctx: Context = {}) => {
      const scoped = asPrincipal(account, {
        'kms:CallerAccount': account,
        'kms:ViaService': 'ec2.eu-west-1.amazonaws.com',
        ...ctx,
      });
      return scoped ? decide(policy, action, KEY_EU, scoped) : 'implicit-deny';
    };
    assert.equal(call('222200002222', 'kms:Decrypt'), 'allow');
    assert.equal(call('222200002222', 'kms:ReEncryptFrom'), 'allow');
    assert.equal(call('222200002222', 'kms:CreateGrant', { 'kms:GrantIsForAWSResource': true }), 'allow');
    assert.equal(
      call('222200002222', 'kms:CreateGrant', { 'kms:GrantIsForAWSResource': false }),
      'implicit-deny',
    );
    assert.equal(call('222200002222', 'kms:CreateGrant'), 'implicit-deny');
    assert.equal(call('222200002222', 'kms:ScheduleKeyDeletion'), 'implicit-deny');
    assert.equal(call('999999999999', 'kms:Decrypt'), 'implicit-deny');
    // Not through EC2 (the target account's own code decrypting with the key): refused.
    assert.equal(call('222200002222', 'kms:Decrypt', { 'kms:ViaService': undefined }), 'implicit-deny');
    assert.equal(
      call('222200002222', 'kms:Decrypt', { 'kms:ViaService': 'lambda.eu-west-1.amazonaws.com' }),
      'implicit-deny',
    );
  });

  void it('GIVEN --kms without target accounts WHEN parsed THEN it is refused naming --account', async () => {
    await assert.rejects(
      refusedWithoutConnecting(['--kms', '--region', 'eu-west-1']),
      /--account: is required with --kms/,
    );
  });
});

void describe('policies checked statement by statement', () => {
  void it("GIVEN today's allow statement (RunInstances on NotResource image/*) and an unconditioned key statement WHEN checked THEN each is a finding", () => {
    const findings = policyFindings({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'Others', Effect: 'Allow', Action: 'ec2:RunInstances', NotResource: 'arn:aws:ec2:*::image/*' },
        {
          Sid: 'KeyUse',
          Effect: 'Allow',
          Principal: { AWS: ['arn:aws:iam::222200002222:root'] },
          Action: ['kms:Decrypt', 'kms:CreateGrant'],
          Resource: '*',
        },
        {
          Sid: 'Cleanup',
          Effect: 'Allow',
          Action: 'ec2:DeregisterImage',
          Resource: 'arn:aws:ec2:*::image/*',
        },
      ],
    });
    assert.deepEqual(
      findings.map((f) => f.split(':')[0]),
      ['Others', 'KeyUse', 'KeyUse', 'KeyUse', 'KeyUse', 'Cleanup'],
    );
    assert.match(findings[0] ?? '', /widens the principal/);
    assert.ok(findings.some((f) => f.includes('kms:ViaService')));
    assert.ok(findings.some((f) => f.includes('kms:CallerAccount / aws:PrincipalOrgID')));
    assert.ok(findings.some((f) => f.includes('ec2:ResourceTag/amiflow:managed-by')));
  });

  void it('GIVEN --amiflow-role role/* or a name pattern WHEN generated THEN the notes warn that every matching role may mark images approved', () => {
    const out = launchPolicies(CATALOGUE, { amiflowRoleArns: [`arn:aws:iam::${TOOLING}:role/*`] });
    assert.ok(
      out.notes.some((n) =>
        /WARNING: --amiflow-role .*role\/\* matches every role of account 111100001111/.test(n),
      ),
    );
    assert.match(roleWildcardWarnings([`arn:aws:iam::${TOOLING}:role/amiflow-*`])[0] ?? '', /is a pattern/);
    assert.deepEqual(roleWildcardWarnings([`arn:aws:iam::${TOOLING}:role/amiflow-worker`]), []);
  });

  void it("GIVEN the worker's policy WHEN evaluated THEN it deregisters, deletes and terminates only what amiflow tagged, and grants keys only for the share's operations", () => {
    const { policy, notes } = workerPolicy({ assumeRoleArns: ['arn:aws:iam::222200002222:role/amiflow'] });
    assert.deepEqual(policyFindings(policy), []);
    assert.ok(!notes.some((n) => n.startsWith('CHECK')));
    const amiflows = { 'ec2:ResourceTag/amiflow:managed-by': 'amiflow' };
    const img = imageArn('eu-west-1', 'ami-0d000000000000001');
    assert.equal(decide(policy, 'ec2:DeregisterImage', img, amiflows), 'allow');
    assert.equal(
      decide(policy, 'ec2:DeregisterImage', img, {}),
      'implicit-deny',
      'an image amiflow did not make',
    );
    assert.equal(
      decide(
        policy,
        'ec2:TerminateInstances',
        `arn:aws:ec2:eu-west-1:${TOOLING}:instance/i-0123456789abcdef0`,
        {},
      ),
      'implicit-deny',
    );
    const grant = policy.Statement.find((st) => st.Sid === 'GrantKeysOnlyForSharing');
    assert.deepEqual(Object.keys(grant?.Condition ?? {}), ['ForAllValues:StringEquals']);
  });

  void it("GIVEN the worker's policy WHEN it sends SSM commands (app-consistent) THEN only to instances tagged for it or launched by amiflow, only with the shell (and build) documents, and it may follow and cancel them", () => {
    const { policy, notes } = workerPolicy();
    const instance = `arn:aws:ec2:eu-west-1:${TOOLING}:instance/i-0123456789abcdef0`;
    const shell = 'arn:aws:ssm:eu-west-1::document/AWS-RunShellScript';
    assert.equal(
      decide(policy, 'ssm:SendCommand', instance, { 'ssm:resourceTag/amiflow:run-commands': 'allowed' }),
      'allow',
    );
    assert.equal(
      decide(policy, 'ssm:SendCommand', instance, { 'ssm:resourceTag/amiflow:managed-by': 'amiflow' }),
      'allow',
    );
    assert.equal(decide(policy, 'ssm:SendCommand', instance, {}), 'implicit-deny', 'an instance not tagged');
    assert.equal(
      decide(policy, 'ssm:SendCommand', instance, { 'ssm:resourceTag/amiflow:run-commands': 'yes' }),
      'implicit-deny',
    );
    assert.equal(decide(policy, 'ssm:SendCommand', shell, {}), 'allow');
    assert.equal(
      decide(policy, 'ssm:SendCommand', `arn:aws:ssm:eu-west-1::document/AWS-RunRemoteScript`, {}),
      'implicit-deny',
      'a document neither mode app-consistent nor builds use',
    );
    for (const action of ['ssm:GetCommandInvocation', 'ssm:ListCommands', 'ssm:DescribeInstanceInformation'])
      assert.equal(decide(policy, action, '*', {}), 'allow', action);
    const cancel = policy.Statement.find((st) => st.Sid === 'CancelOwnAccountCommands');
    assert.deepEqual(cancel?.Condition, {
      StringEquals: { 'aws:ResourceAccount': '${aws:PrincipalAccount}' },
    });
    assert.ok(notes.some((n) => /amiflow:run-commands=allowed/.test(n)));
  });
});
