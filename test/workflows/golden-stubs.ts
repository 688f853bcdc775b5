/**
 * Stubs for the goldenImage and backupInstances time-skipping tests: a small model of the images
 * and SSM parameters of several (account, region) scopes ("the fleet"), and every activity those
 * workflows and their children (imageFromInstance, copyImage, shareImage) call, acting on it as AWS
 * would. Typed against the real activity signatures, built on `unplannedActivities()` (anything not
 * planned fails loudly). Tests seed older versions, read the fleet afterwards and inject failures.
 */
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Activities } from '../../activities';
import { proofProblem } from '../../activities/approvers';
import type { ManagedImage } from '../../activities/retention';
import { principalOf } from '../../workflows/approvers';
import type {
  ApprovalAck,
  ApprovalDecision,
  ApproverProof,
  AwsTarget,
  BackupInput,
  BackupResult,
  GoldenImageInput,
  GoldenImageResult,
  InstanceState,
  Tags,
} from '../../workflows/contracts';
import {
  APPROVAL_BINDING_HEADER,
  APPROVED_VALUE,
  FailureType,
  MANAGED_BY_VALUE,
  TAG,
  approvalBinding,
  approveUpdate,
  rejectUpdate,
} from '../../workflows/contracts';
import type { WorkflowOutcome } from './harness';
import { happyActivities } from './stub-activities';
import { shareCopyActivities } from '../../devkit/fake-share-copy';
import { stepReached, uniqueWorkflowId, workflowOutcome } from './harness';
import type { RunOf } from './run-helpers';

export const REGION = 'eu-west-1';
export const COPY_REGION = 'eu-central-1';
export const ACCOUNT = '111122223333';
export const CONSUMER = '444455556666';
export const BUILDER = 'i-0b0b0b0b0b0b0b0b0';
export const BASE_AMI = 'ami-0base0base0base00';
export const SUBNET = 'subnet-0123456789abcdef0';
export const TEST_INSTANCE = 'i-0eeeeeeeeeeeeeee1';
export const PARAMETER = '/golden/web/latest';
export const SCHEDULED = '2026-01-15T03:00:00.000Z';
/** The pipeline's own account and region, where images are made. */
export const HERE = { region: REGION, accountId: ACCOUNT };

export interface FleetImage extends ManagedImage {
  region: string;
  accountId?: string;
  launchPermissions: string[];
}

function key(t: AwsTarget): string {
  return `${t.accountId ?? 'self'}/${t.region}`;
}

/** Images and parameters per (account, region), as EC2 and SSM would keep them. */
export class Fleet {
  readonly images = new Map<string, FleetImage>();
  readonly parameters = new Map<string, string>();
  readonly references = new Map<string, string[]>();
  private seq = 0;
  /** A fixed clock for seeded images' creation times. */
  constructor(readonly epoch = Date.parse('2025-06-01T00:00:00Z')) {}

  nextId(prefix: 'ami' | 'snap'): string {
    this.seq += 1;
    return `${prefix}-0${this.seq.toString(16).padStart(16, '0')}`;
  }

  add(t: AwsTarget, image: Partial<FleetImage> & { name: string; tags: Tags }): FleetImage {
    const imageId = image.imageId ?? this.nextId('ami');
    const made: FleetImage = {
      imageId,
      state: 'available',
      creationDate: new Date(this.epoch + this.seq * 3600_000).toISOString(),
      protected: false,
      snapshotIds: [this.nextId('snap')],
      launchPermissions: [],
      region: t.region,
      ...(t.accountId ? { accountId: t.accountId } : {}),
      ...image,
    };
    this.images.set(imageId, made);
    return made;
  }

  /** An approved version of `pipeline` made before the tests' runs. */
  seedVersion(
    t: AwsTarget,
    pipeline: string,
    version: string,
    approvedAt: string,
    extra: Partial<FleetImage> = {},
  ): FleetImage {
    return this.add(t, {
      name: `${pipeline}-${version}`,
      creationDate: approvedAt,
      tags: {
        [TAG.managedBy]: MANAGED_BY_VALUE,
        [TAG.pipeline]: pipeline,
        [TAG.version]: version,
        [TAG.approved]: APPROVED_VALUE,
        [TAG.approvedBy]: 'someone',
        [TAG.approvedAt]: approvedAt,
      },
      ...extra,
    });
  }

  in(t: AwsTarget): FleetImage[] {
    return [...this.images.values()].filter((i) => key(i) === key(t));
  }

  get(imageId: string): FleetImage {
    const i = this.images.get(imageId);
    if (!i) throw new Error(`no image ${imageId} in the fleet`);
    return i;
  }

  approvedOf(t: AwsTarget, pipeline: string): FleetImage[] {
    return this.in(t).filter(
      (i) => i.tags[TAG.pipeline] === pipeline && i.tags[TAG.approved] === APPROVED_VALUE,
    );
  }

  parameter(t: AwsTarget, name: string): string | undefined {
    return this.parameters.get(`${key(t)}:${name}`);
  }

  setParameter(t: AwsTarget, name: string, value: string | undefined): void {
    if (value === undefined) this.parameters.delete(`${key(t)}:${name}`);
    else this.parameters.set(`${key(t)}:${name}`, value);
  }
}

export interface GoldenScenario {
  /** What the health check finds on the console. Default: the success marker. */
  console?: 'healthy' | 'failure-marker';
  /** The test instance's status checks. Default ok. */
  statusChecks?: 'ok' | 'impaired';
  builderState?: InstanceState;
}

/** Every activity golden and backup runs (and their children) call, acting on `fleet`. */
/** The pipeline's approvers: a role (its sessions approve) and one user. */
export const APPROVERS_ROLE = 'arn:aws:iam::111122223333:role/image-approvers';
export const BOB = 'arn:aws:iam::111122223333:user/bob';
/** What STS answers for alice, who assumed the approvers' role. */
export const ALICE_SESSION = 'arn:aws:sts::111122223333:assumed-role/image-approvers/alice';
export const MALLORY = 'arn:aws:iam::999988887777:user/mallory';
const FAKE_STS = 'http://sts.test';

/**
 * A proof as the approver's client makes it, for the stub STS: the caller it answers for rides in
 * the URL (the real STS reads it from the signature, see test/activities/approvers.test.ts).
 */
export function proofFor(
  handle: WorkflowHandleWithFirstExecutionRunId,
  kind: 'approve' | 'reject',
  callerArn: string,
  runId = handle.firstExecutionRunId,
): ApproverProof {
  const signedAt = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  return {
    url: `${FAKE_STS}/?Action=GetCallerIdentity&Version=2011-06-15&caller=${encodeURIComponent(callerArn)}`,
    headers: {
      authorization: `AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/${signedAt.slice(0, 8)}/us-east-1/sts/aws4_request, SignedHeaders=host;${APPROVAL_BINDING_HEADER};x-amz-date, Signature=${'0'.repeat(64)}`,
      'x-amz-date': signedAt,
      [APPROVAL_BINDING_HEADER]: approvalBinding(kind, handle.workflowId, runId),
    },
  };
}

/** The stub STS: the real proof checks, then the caller the proof names. */
const verifyApprover: Activities['verifyApprover'] = (input) => {
  const problem = proofProblem(input, Date.now(), FAKE_STS);
  if (problem)
    throw ApplicationFailure.create({
      type: FailureType.ApproverNotVerified,
      nonRetryable: true,
      message: problem,
    });
  const arn = new URL(input.proof.url).searchParams.get('caller') ?? '';
  const principal = principalOf(arn);
  if (!principal) throw ApplicationFailure.nonRetryable(`no principal in ${arn}`);
  return Promise.resolve({ arn, ...principal });
};

export function goldenActivities(fleet: Fleet, scenario: GoldenScenario = {}): Activities {
  const base = happyActivities({ state: scenario.builderState ?? 'running' });
  // Snapshot permissions and KMS grants leave no trace in the fleet: the share/copy fakes' answers.
  const { addSnapshotPermissions, removeSnapshotPermissions, grantKeyAccess, revokeKeyGrants } =
    shareCopyActivities();
  const terminated: string[] = [];
  const findAny = (imageId: string) => fleet.images.get(imageId);
  /** What every describe of a fleet image starts with. */
  const described = (imageId: string) => {
    const s = fleet.get(imageId);
    return { s, basics: { imageId: s.imageId, imageName: s.name ?? '', ownerId: ACCOUNT } };
  };
  return {
    ...base,
    verifyApprover,
    // imageFromInstance, on the fleet: a new id per image
    checkImageName: (ref) => {
      if (fleet.in(ref.target).some((i) => i.name === ref.imageName))
        throw ApplicationFailure.create({
          type: FailureType.ImageNameTaken,
          nonRetryable: true,
          message: `an image named '${ref.imageName}' already exists in ${ref.target.region}`,
        });
      return Promise.resolve({ status: 'free' });
    },
    createImage: (input) => {
      const made = fleet.add(input.target, {
        name: input.imageName,
        tags: { ...input.tags },
        state: 'pending',
        creationDate: new Date().toISOString(), // as EC2 stamps it: newer than every seeded image
      });
      return Promise.resolve({ imageId: made.imageId, created: true });
    },
    waitForImageAvailable: (input) => {
      const image = fleet.get(input.imageId);
      image.state = 'available';
      return Promise.resolve({
        imageId: image.imageId,
        snapshotIds: image.snapshotIds,
        awsCalls: 3,
        polls: 3,
        heartbeats: 0,
      });
    },
    tagSnapshots: (input) => Promise.resolve({ snapshotIds: fleet.get(input.imageId).snapshotIds }),
    deleteImage: (input) => {
      const found =
        (input.imageId ? findAny(input.imageId) : undefined) ??
        fleet.in(input.target).find((i) => i.name === input.imageName);
      const ours =
        found && found.tags[TAG.workflowId] === input.workflowId && found.tags[TAG.runId] === input.runId;
      if (found && ours) fleet.images.delete(found.imageId);
      return Promise.resolve({
        ...(found ? { imageId: found.imageId } : {}),
        deregistered: Boolean(found && ours),
        deletedSnapshotIds: found && ours ? found.snapshotIds : [],
      });
    },
    // goldenImage's own
    readBuilderInstance: (ref) =>
      Promise.resolve({
        instanceId: ref.instanceId,
        state: scenario.builderState ?? 'running',
        rootDeviceType: 'ebs',
        imageId: BASE_AMI,
      }),
    listManagedImages: (input) =>
      Promise.resolve(
        fleet
          .in(input.target)
          .filter((i) => Object.entries(input.tags).every(([k, v]) => i.tags[k] === v))
          .map(({ region: _r, accountId: _a, launchPermissions: _l, ...m }) => structuredClone(m)),
      ),
    tagImage: (input) => {
      const image = fleet.get(input.imageId);
      Object.assign(image.tags, input.tags);
      return Promise.resolve({
        imageId: input.imageId,
        snapshotIds: input.snapshots ? image.snapshotIds : [],
      });
    },
    planTestLaunch: (input) =>
      Promise.resolve({
        instanceType: input.instanceType,
        availabilityZone: `${input.target.region}a`,
        subnetId: input.subnetId,
        securityGroupIds: input.securityGroupIds ?? [],
        blockDevices: [],
        tags: input.tags,
        disableApiTermination: false,
        ebsOptimized: false,
        monitoring: false,
      }),
    launchInstance: (input) =>
      Promise.resolve({
        instanceId: TEST_INSTANCE,
        created: true,
        clientToken: `amiflow-${input.owner.runId}`,
      }),
    waitForInstanceReady: (input) => {
      if (scenario.statusChecks === 'impaired')
        throw ApplicationFailure.create({
          type: FailureType.InstanceChecksFailed,
          nonRetryable: true,
          message: `the new instance ${input.instanceId} failed its status checks (system: ok, instance: impaired)`,
        });
      return Promise.resolve({ instanceId: input.instanceId, at: input.deadline, awsCalls: 3 });
    },
    checkConsoleHealth: (input) => {
      if (scenario.console === 'failure-marker')
        throw ApplicationFailure.create({
          type: FailureType.ValidationFailed,
          nonRetryable: true,
          message: `the test instance ${input.instanceId} reported failure on its console: ${input.failureMarker ?? 'FAILED'}`,
        });
      return Promise.resolve({
        marker: input.successMarker,
        line: `[  12.3] ${input.successMarker}`,
        seenAt: input.deadline - 600_000,
        awsCalls: 4,
      });
    },
    terminateLaunchedInstance: (input) => {
      terminated.push(input.instanceId ?? TEST_INSTANCE);
      return Promise.resolve({ instanceId: input.instanceId ?? TEST_INSTANCE, terminated: true });
    },
    // copyImage, on the fleet
    describeCopySource: (input) => {
      const { s, basics } = described(input.imageId);
      return Promise.resolve({
        ...basics,
        encrypted: false,
        snapshotIds: s.snapshotIds,
        userTags: Object.fromEntries(Object.entries(s.tags).filter(([k]) => !k.startsWith('amiflow:'))),
      });
    },
    copyImage: (input) => {
      const made = fleet.add(input.destination, {
        name: input.imageName,
        state: 'pending',
        creationDate: new Date().toISOString(),
        tags: {
          ...input.tags,
          [TAG.managedBy]: MANAGED_BY_VALUE,
          [TAG.workflowId]: input.workflowId,
          [TAG.runId]: input.runId,
          [TAG.workflowType]: input.workflowType,
          [TAG.sourceImage]: input.source.imageId,
          [TAG.sourceRegion]: input.source.region,
        },
      });
      return Promise.resolve({
        imageId: made.imageId,
        created: true,
        clientToken: `t-${made.imageId}`,
        awsCalls: 2,
      });
    },
    // shareImage, on the fleet
    describeImageForSharing: (input) => {
      const { s, basics } = described(input.imageId);
      return Promise.resolve({
        ...basics,
        snapshots: s.snapshotIds.map((snapshotId) => ({ snapshotId, encrypted: false })),
        keys: [],
        encryption: 'unencrypted',
        launchPermissions: s.launchPermissions.map((userId) => ({ userId })),
        snapshotPermissions: s.snapshotIds.map((snapshotId) => ({ snapshotId, userIds: [] })),
        publicSnapshotIds: [],
      });
    },
    addLaunchPermissions: (input) => {
      const s = fleet.get(input.imageId);
      for (const p of input.permissions) if (p.userId) s.launchPermissions.push(p.userId);
      return Promise.resolve({ calls: 1, gone: [] });
    },
    removeLaunchPermissions: (input) => {
      const s = findAny(input.imageId);
      if (s)
        s.launchPermissions = s.launchPermissions.filter(
          (a) => !input.permissions.some((p) => p.userId === a),
        );
      return Promise.resolve({ calls: 1, gone: s ? [] : [input.imageId] });
    },
    addSnapshotPermissions,
    removeSnapshotPermissions,
    grantKeyAccess,
    revokeKeyGrants,
    // SSM
    readImageParameter: (input) => {
      const value = fleet.parameter(input.target, input.name);
      return Promise.resolve(
        value !== undefined
          ? { exists: true, value, version: 1, dataType: 'aws:ec2:image' }
          : { exists: false },
      );
    },
    publishImageParameter: (input) => {
      fleet.setParameter(input.target, input.name, input.imageId);
      return Promise.resolve({ name: input.name, value: input.imageId, version: 2, awsCalls: 3 });
    },
    restoreImageParameter: (input) => {
      const now = fleet.parameter(input.target, input.name);
      if (now !== input.publishedValue)
        return Promise.resolve({ name: input.name, outcome: 'left: changed since' as const });
      fleet.setParameter(input.target, input.name, input.previous);
      return Promise.resolve({
        name: input.name,
        outcome: input.previous ? ('restored' as const) : ('deleted' as const),
      });
    },
    // retention
    findImageReferences: (input) =>
      Promise.resolve(
        Object.fromEntries(
          input.imageIds.flatMap((id) => {
            const refs = fleet.references.get(id);
            return refs?.length ? [[id, refs]] : [];
          }),
        ),
      ),
    protectImage: (input) => {
      fleet.get(input.imageId).protected = true;
      return Promise.resolve({ imageId: input.imageId });
    },
    deprecateImage: (input) => {
      const at = new Date(Math.ceil(input.deprecateAt / 60_000) * 60_000).toISOString();
      fleet.get(input.imageId).deprecationTime = at;
      return Promise.resolve({ imageId: input.imageId, deprecateAt: at });
    },
    retireImage: (input) => {
      const image = fleet.get(input.imageId);
      const refs = fleet.references.get(input.imageId);
      if (refs?.length)
        return Promise.resolve({
          imageId: input.imageId,
          deregistered: false,
          deletedSnapshotIds: [],
          references: refs,
        });
      // As the real activity: a shared image is kept unless the policy says retireShared.
      if (image.launchPermissions.length > 0 && input.retireShared !== true)
        return Promise.resolve({
          imageId: input.imageId,
          deregistered: false,
          deletedSnapshotIds: [],
          sharedWith: [...image.launchPermissions],
        });
      fleet.images.delete(input.imageId);
      return Promise.resolve({
        imageId: input.imageId,
        deregistered: true,
        deletedSnapshotIds: image.snapshotIds,
      });
    },
    findInstancesByTags: () => Promise.resolve(['i-0c0c0c0c0c0c0c0c0']),
  };
}

/** A pipeline with every stage: validation with a health check, approval, a copy, a share, a parameter. */
export function goldenInput(overrides: Partial<GoldenImageInput> = {}): GoldenImageInput {
  return {
    region: REGION,
    accountId: ACCOUNT,
    pipeline: 'web',
    builderInstanceId: BUILDER,
    mode: 'stop',
    scheduledTime: SCHEDULED,
    tags: { team: 'web' },
    validation: {
      subnetId: SUBNET,
      healthCheck: { successMarker: 'amiflow-health: ok', failureMarker: 'amiflow-health: FAILED' },
    },
    approval: { timeoutSeconds: 24 * 3600, approvers: [APPROVERS_ROLE, BOB] },
    distribution: { copies: [{ region: COPY_REGION }], shareWith: { accountIds: [CONSUMER] } },
    publish: { parameterName: PARAMETER },
    retention: { keep: 2, deprecateAfterSeconds: 0, deregisterAfterSeconds: 7 * 24 * 3600 },
    ...overrides,
  };
}

/**
 * A pipeline with only its image stages: made, approved by its own checks (no validation, approval
 * gate, distribution or publishing) and retired; `overrides` add the stage a test is about.
 */
export function imageOnlyInput(overrides: Partial<GoldenImageInput> = {}): GoldenImageInput {
  const { approval: _a, validation: _v, distribution: _d, publish: _p, ...imageStages } = goldenInput();
  return { ...imageStages, ...overrides };
}

export function backupInput(overrides: Partial<BackupInput> = {}): BackupInput {
  return {
    region: REGION,
    accountId: ACCOUNT,
    plan: 'db-nightly',
    instanceIds: ['i-0a0a0a0a0a0a0a0a0'],
    mode: 'reboot',
    scheduledTime: SCHEDULED,
    retention: { keep: 2 },
    ...overrides,
  };
}

export function startGolden(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  input: unknown,
  workflowId = uniqueWorkflowId('golden'),
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  // Deliberately unchecked: tests also send inputs the client library would refuse.
  return env.client.workflow.start('goldenImage', { taskQueue, workflowId, args: [input] });
}

/** The fleet's activities, with AWS refusing to protect the new image (a retirement failure). */
export function protectionRefused(fleet: Fleet): Activities {
  return {
    ...goldenActivities(fleet),
    protectImage: () =>
      Promise.reject(
        ApplicationFailure.create({
          type: FailureType.AwsUnauthorized,
          nonRetryable: true,
          message: 'protecting: AWS refused with UnauthorizedOperation: not allowed',
        }),
      ),
  };
}

/** A goldenImage run of `input`, started and waiting at its approval gate. */
export async function awaitingApproval(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  input: unknown = goldenInput(),
  workflowId?: string,
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const handle = await startGolden(env, taskQueue, input, workflowId);
  await stepReached(handle, 'await approval', ['running']);
  return handle;
}

/** `decision` on a waiting run, taken by `callerArn` with the proof their client makes for it. */
export function decide(
  handle: WorkflowHandleWithFirstExecutionRunId,
  kind: 'approve' | 'reject',
  callerArn: string,
  comment?: string,
): Promise<ApprovalAck> {
  const decision: ApprovalDecision = {
    proof: proofFor(handle, kind, callerArn),
    ...(comment !== undefined ? { comment } : {}),
  };
  return handle.executeUpdate(kind === 'approve' ? approveUpdate : rejectUpdate, { args: [decision] });
}

export type GoldenOutcome<R> = WorkflowOutcome<R>;

/** How the tests run a backup plan to its end (see `runTo`). */
export const BACKUP: RunOf<WorkflowHandle, WorkflowOutcome<BackupResult>> = {
  queuePrefix: 'backup',
  start: (env, taskQueue, input) =>
    env.client.workflow.start('backupInstances', {
      taskQueue,
      workflowId: uniqueWorkflowId('backup/db-nightly'),
      args: [input],
    }),
  outcome: (handle) => workflowOutcome<BackupResult>(handle),
};

/** How the tests run a golden pipeline to its end (see `runTo` and `runLogged`). */
export const GOLDEN: RunOf<WorkflowHandle, GoldenOutcome<GoldenImageResult>> = {
  queuePrefix: 'golden',
  start: startGolden,
  outcome: (handle) => workflowOutcome<GoldenImageResult>(handle),
};
export { workflowOutcome as outcomeOf, stepReached as stepIs } from './harness';
