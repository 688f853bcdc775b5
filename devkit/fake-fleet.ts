/**
 * A fleet of EC2 accounts and regions in memory, for running the REAL guardrail activities against
 * many accounts × regions without AWS: each (account, region) gets its own SDK `EC2Client` whose
 * `send` is replaced (aws-sdk-client-mock) by answers computed from the fleet, as EC2 gives them:
 *
 * - DescribeInstances: the `instance-state-name` filter, pages of `MaxResults` with `NextToken`;
 * - DescribeImages by ids: only images the account may see (owned, shared with it, or public), tags
 *   only to their owner; an id EC2 does not know fails the whole call with InvalidAMIID.NotFound;
 * - DescribeImages with `Owners: ['self']` and tag filters (the catalogue), paginated;
 * - Allowed AMIs settings per (account, region): Get, Enable, Disable, ReplaceImageCriteria.
 *
 * Faults are injected per (account, region): a permanent error for every call, or N throttling
 * answers to a command. Every call is counted per (account, region) and command.
 */
import type {
  DescribeImagesCommandInput,
  DescribeImagesCommandOutput,
  DescribeInstancesCommandInput,
  DescribeInstancesCommandOutput,
  EnableAllowedImagesSettingsCommandInput,
  Image,
  Instance,
  ReplaceImageCriteriaInAllowedImagesSettingsCommandInput,
} from '@aws-sdk/client-ec2';
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DisableAllowedImagesSettingsCommand,
  EC2Client,
  EC2ServiceException,
  EnableAllowedImagesSettingsCommand,
  GetAllowedImagesSettingsCommand,
  ReplaceImageCriteriaInAllowedImagesSettingsCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import type { AwsClients } from '../activities/aws';
import type { AllowedImagesCriterion, AwsTarget } from '../contracts';

/** The account the fleet's `self` (a target without accountId) acts as. */
export const FLEET_SELF = '999988887777';

export interface FleetImage {
  imageId: string;
  region: string;
  ownerId: string;
  name?: string;
  state?: Image['State'];
  tags?: Record<string, string>;
  deprecationTime?: string;
  /** Accounts with launch permission. */
  sharedWith?: string[];
  public?: boolean;
  ownerAlias?: string;
  kmsKeyId?: string;
}

export interface FleetInstance {
  instanceId: string;
  imageId: string;
  state: 'running' | 'stopped' | 'terminated' | 'pending';
  name?: string;
}

export interface AllowedSettings {
  state: string;
  criteria: AllowedImagesCriterion[];
  managedBy?: string;
}

export function awsFault(name: string, status: number, message = `simulated ${name}`): EC2ServiceException {
  return new EC2ServiceException({
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId: 'fleet' },
    message,
  });
}

function key(account: string, region: string): string {
  return `${account}/${region}`;
}

export class FakeFleet {
  private readonly images = new Map<string, FleetImage>();
  private readonly instances = new Map<string, FleetInstance[]>();
  private readonly settings = new Map<string, AllowedSettings>();
  private readonly faults = new Map<string, Error>();
  private readonly throttles = new Map<string, number>();
  /** `account/region` → command name → calls. */
  readonly calls = new Map<string, Map<string, number>>();
  private readonly clientsByKey = new Map<string, EC2Client>();

  addImage(image: FleetImage): this {
    this.images.set(image.imageId, image);
    return this;
  }

  /** Deregisters: EC2 no longer knows the id (InvalidAMIID.NotFound). */
  removeImage(imageId: string): this {
    this.images.delete(imageId);
    return this;
  }

  addInstances(account: string, region: string, ...list: FleetInstance[]): this {
    const k = key(account, region);
    this.instances.set(k, [...(this.instances.get(k) ?? []), ...list]);
    return this;
  }

  /** `n` instances `i-<prefix>…` running `imageId` (every fourth one stopped). */
  addMany(account: string, region: string, imageId: string, n: number, prefix: string): this {
    const list = Array.from({ length: n }, (_, i): FleetInstance => ({
      instanceId: `i-${prefix}${i.toString(16).padStart(17 - prefix.length, '0')}`,
      imageId,
      state: i % 4 === 3 ? 'stopped' : 'running',
    }));
    return this.addInstances(account, region, ...list);
  }

  setAllowedSettings(account: string, region: string, s: AllowedSettings): this {
    this.settings.set(key(account, region), s);
    return this;
  }

  allowedSettings(account: string, region: string): AllowedSettings {
    return (
      this.settings.get(key(account, region)) ?? { state: 'disabled', criteria: [], managedBy: 'account' }
    );
  }

  /** Every call in (account, region) fails with `err`. */
  fail(account: string, region: string, err: Error): this {
    this.faults.set(key(account, region), err);
    return this;
  }

  /** The next `n` calls of `command` (e.g. `DescribeInstancesCommand`) in (account, region) are throttled. */
  throttle(account: string, region: string, command: string, n: number): this {
    this.throttles.set(`${key(account, region)}/${command}`, n);
    return this;
  }

  count(account: string, region: string, command?: string): number {
    const m = this.calls.get(key(account, region));
    if (!m) return 0;
    return command ? (m.get(command) ?? 0) : [...m.values()].reduce((a, b) => a + b, 0);
  }

  totalCalls(command?: string): number {
    let n = 0;
    for (const m of this.calls.values())
      n += command ? (m.get(command) ?? 0) : [...m.values()].reduce((a, b) => a + b, 0);
    return n;
  }

  /** The activities' AWS dependency: one mocked client per (account, region). */
  clients(): AwsClients {
    return {
      ec2: (target: AwsTarget) => Promise.resolve(this.client(target.accountId ?? FLEET_SELF, target.region)),
      kms: () => Promise.reject(new Error('the fake fleet has no KMS')),
      destroy: () => undefined,
    };
  }

  private enter(account: string, region: string, command: string): void {
    const k = key(account, region);
    const m = this.calls.get(k) ?? new Map<string, number>();
    m.set(command, (m.get(command) ?? 0) + 1);
    this.calls.set(k, m);
    const fault = this.faults.get(k);
    if (fault) throw fault;
    const t = this.throttles.get(`${k}/${command}`) ?? 0;
    if (t > 0) {
      this.throttles.set(`${k}/${command}`, t - 1);
      throw awsFault('RequestLimitExceeded', 503, 'Request limit exceeded.');
    }
  }

  private visible(image: FleetImage, account: string): boolean {
    return image.ownerId === account || image.public === true || (image.sharedWith ?? []).includes(account);
  }

  private describe(image: FleetImage, account: string): Image {
    const own = image.ownerId === account;
    return {
      ImageId: image.imageId,
      OwnerId: image.ownerId,
      State: image.state ?? 'available',
      CreationDate: '2026-01-01T00:00:00.000Z',
      ...(image.name ? { Name: image.name } : {}),
      ...(image.ownerAlias ? { ImageOwnerAlias: image.ownerAlias } : {}),
      ...(image.deprecationTime ? { DeprecationTime: image.deprecationTime } : {}),
      ...(own && image.tags
        ? { Tags: Object.entries(image.tags).map(([Key, Value]) => ({ Key, Value })) }
        : {}),
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/xvda',
          Ebs: {
            SnapshotId: `snap-${image.imageId.slice(4)}`,
            ...(image.kmsKeyId ? { Encrypted: true, KmsKeyId: image.kmsKeyId } : {}),
          },
        },
      ],
    };
  }

  private client(account: string, region: string): EC2Client {
    const k = key(account, region);
    const existing = this.clientsByKey.get(k);
    if (existing) return existing;
    const client = new EC2Client({ region, credentials: { accessKeyId: 'AKIDFLEET', secretAccessKey: 'x' } });
    const mock = mockClient(client);
    mock.onAnyCommand().callsFake((input: unknown) => {
      throw new Error(`the fake fleet does not answer ${JSON.stringify(input)}`);
    });
    mock
      .on(DescribeInstancesCommand)
      .callsFake((input: DescribeInstancesCommandInput): DescribeInstancesCommandOutput => {
        this.enter(account, region, 'DescribeInstancesCommand');
        const states = input.Filters?.find((f) => f.Name === 'instance-state-name')?.Values;
        const all = (this.instances.get(k) ?? []).filter((i) => !states || states.includes(i.state));
        const start = input.NextToken ? Number(input.NextToken) : 0;
        const size = input.MaxResults ?? 1000;
        const page = all.slice(start, start + size);
        const next = start + size < all.length ? String(start + size) : undefined;
        return {
          $metadata: {},
          // Two instances per reservation, as a launch of two would be.
          Reservations: Array.from({ length: Math.ceil(page.length / 2) }, (_, r) => ({
            Instances: page.slice(r * 2, r * 2 + 2).map((i): Instance => ({
              InstanceId: i.instanceId,
              ImageId: i.imageId,
              State: { Name: i.state },
              LaunchTime: new Date('2026-01-02T00:00:00Z'),
              ...(i.name ? { Tags: [{ Key: 'Name', Value: i.name }] } : {}),
            })),
          })),
          ...(next ? { NextToken: next } : {}),
        };
      });
    mock
      .on(DescribeImagesCommand)
      .callsFake((input: DescribeImagesCommandInput): DescribeImagesCommandOutput => {
        this.enter(account, region, 'DescribeImagesCommand');
        if (input.ImageIds?.length) {
          const unknown = input.ImageIds.filter((id) => {
            const i = this.images.get(id);
            return !i || i.region !== region;
          });
          if (unknown.length)
            throw awsFault(
              'InvalidAMIID.NotFound',
              400,
              `The image id '[${unknown.join(', ')}]' does not exist`,
            );
          return {
            $metadata: {},
            Images: input.ImageIds.flatMap((id) => {
              const i = this.images.get(id) as FleetImage;
              return this.visible(i, account) ? [this.describe(i, account)] : [];
            }),
          };
        }
        const own = input.Owners?.includes('self');
        const filters = (input.Filters ?? []).filter((f) => f.Name?.startsWith('tag:'));
        const all = [...this.images.values()].filter(
          (i) =>
            i.region === region &&
            (!own || i.ownerId === account) &&
            filters.every((f) => (f.Values ?? []).includes(i.tags?.[f.Name?.slice(4) ?? ''] ?? '\u0000')),
        );
        const start = input.NextToken ? Number(input.NextToken) : 0;
        const size = input.MaxResults ?? 1000;
        const next = start + size < all.length ? String(start + size) : undefined;
        return {
          $metadata: {},
          Images: all.slice(start, start + size).map((i) => this.describe(i, account)),
          ...(next ? { NextToken: next } : {}),
        };
      });
    mock.on(GetAllowedImagesSettingsCommand).callsFake(() => {
      this.enter(account, region, 'GetAllowedImagesSettingsCommand');
      const s = this.allowedSettings(account, region);
      return {
        $metadata: {},
        State: s.state,
        ImageCriteria: structuredClone(s.criteria),
        ...(s.managedBy ? { ManagedBy: s.managedBy } : {}),
      };
    });
    mock
      .on(EnableAllowedImagesSettingsCommand)
      .callsFake((input: EnableAllowedImagesSettingsCommandInput) => {
        this.enter(account, region, 'EnableAllowedImagesSettingsCommand');
        const s = this.allowedSettings(account, region);
        this.settings.set(k, { ...s, state: input.AllowedImagesSettingsState ?? 'enabled' });
        return { $metadata: {}, AllowedImagesSettingsState: input.AllowedImagesSettingsState };
      });
    mock.on(DisableAllowedImagesSettingsCommand).callsFake(() => {
      this.enter(account, region, 'DisableAllowedImagesSettingsCommand');
      this.settings.set(k, { ...this.allowedSettings(account, region), state: 'disabled' });
      return { $metadata: {}, AllowedImagesSettingsState: 'disabled' };
    });
    mock
      .on(ReplaceImageCriteriaInAllowedImagesSettingsCommand)
      .callsFake((input: ReplaceImageCriteriaInAllowedImagesSettingsCommandInput) => {
        this.enter(account, region, 'ReplaceImageCriteriaInAllowedImagesSettingsCommand');
        this.settings.set(k, {
          ...this.allowedSettings(account, region),
          criteria: structuredClone((input.ImageCriteria ?? []) as AllowedImagesCriterion[]),
        });
        return { $metadata: {}, ReturnValue: true };
      });
    this.clientsByKey.set(k, client);
    return client;
  }
}
