/**
 * The sandbox (moto) changes state at once: an instance is `stopped` the moment StopInstances
 * returns, an image `available` the moment CreateImage does. Real EC2 takes seconds to minutes, and
 * that is the time both an amiflow run and a direct script spend waiting. This model gives the
 * sandbox durations: an SDK middleware, attached to every EC2 client of both sides alike, that keeps
 * showing `stopping` / `pending` until the modelled time has passed. Nothing else is changed. It
 * also records when each step of a run reached AWS (RunTimeline), so a run's wall time can be taken
 * apart step by step; with zero durations it only records (the sandbox as it is).
 */
import type { EC2Client, Image, Instance } from '@aws-sdk/client-ec2';
import type { AwsClients } from '../activities/aws';

export interface Durations {
  stopMs: number;
  startMs: number;
  imageMs: number;
}

interface Observed {
  InstanceIds?: string[];
  InstanceId?: string;
  ImageId?: string;
  Reservations?: { Instances?: Instance[] }[];
  Images?: Image[];
}

/**
 * When each AWS-side step of one image run happened (epoch ms, as the answers arrived): the same
 * for an amiflow run and a direct script, so where their wall times differ can be read step by step.
 */
export interface RunTimeline {
  stopSent?: number;
  /** The first DescribeInstances answer after StopInstances that says `stopped`. */
  stoppedSeen?: number;
  createSent?: number;
  imageId?: string;
  startSent?: number;
  /** The first DescribeImages answer after CreateImage that says `available`. */
  availableSeen?: number;
  runningSeen?: number;
}

export class SandboxDurations {
  private readonly timelines = new Map<string, RunTimeline>();
  private readonly instanceOfImage = new Map<string, string>();
  private readonly stoppedAt = new Map<string, number>();
  private readonly runningAt = new Map<string, number>();
  private readonly availableAt = new Map<string, number>();
  private readonly attached = new WeakSet<EC2Client>();

  constructor(readonly durations: Durations) {}

  /** What the run on this instance did when (empty until its first action). */
  timeline(instanceId: string): RunTimeline {
    return { ...this.timelines.get(instanceId) };
  }

  describe(): string {
    const s = (ms: number) => `${ms / 1000} s`;
    return `stop ${s(this.durations.stopMs)}, start ${s(this.durations.startMs)}, image ${s(this.durations.imageMs)}`;
  }

  attach(client: EC2Client): EC2Client {
    if (this.attached.has(client)) return client;
    this.attached.add(client);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        this.observe(context.commandName ?? '', args.input as Observed, result.output as Observed);
        return result;
      },
      { step: 'initialize', name: 'benchSandboxDurations' },
    );
    return client;
  }

  /** The worker's clients (from createAwsClients), each with the model attached. */
  wrap(inner: AwsClients): AwsClients {
    return {
      ec2: async (target) => this.attach(await inner.ec2(target)),
      kms: (target) => inner.kms(target),
      destroy: () => inner.destroy(),
    };
  }

  /** The run's timeline, its first record made now. */
  private runOf(instanceId: string): RunTimeline {
    let t = this.timelines.get(instanceId);
    if (!t) {
      t = {};
      this.timelines.set(instanceId, t);
    }
    return t;
  }

  private observe(command: string, input: Observed, output: Observed): void {
    const now = Date.now();
    switch (command) {
      case 'StopInstancesCommand':
        for (const id of input.InstanceIds ?? []) {
          this.stoppedAt.set(id, now + this.durations.stopMs);
          this.runOf(id).stopSent ??= now;
        }
        break;
      case 'StartInstancesCommand':
        for (const id of input.InstanceIds ?? []) {
          this.runningAt.set(id, now + this.durations.startMs);
          this.runOf(id).startSent ??= now;
        }
        break;
      case 'CreateImageCommand':
        if (output.ImageId) {
          this.availableAt.set(output.ImageId, now + this.durations.imageMs);
          const instanceId = input.InstanceId ?? '';
          this.instanceOfImage.set(output.ImageId, instanceId);
          const t = this.runOf(instanceId);
          t.createSent ??= now;
          t.imageId ??= output.ImageId;
        }
        break;
      case 'DescribeInstancesCommand':
        for (const i of (output.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
          const id = i.InstanceId ?? '';
          if (i.State?.Name === 'stopped' && now < (this.stoppedAt.get(id) ?? 0))
            i.State = { Name: 'stopping', Code: 64 };
          if (i.State?.Name === 'running' && now < (this.runningAt.get(id) ?? 0))
            i.State = { Name: 'pending', Code: 0 };
          const t = this.timelines.get(id);
          if (t?.stopSent !== undefined && i.State?.Name === 'stopped') t.stoppedSeen ??= now;
          if (t?.startSent !== undefined && i.State?.Name === 'running') t.runningSeen ??= now;
        }
        break;
      case 'DescribeImagesCommand':
        for (const image of output.Images ?? []) {
          if (image.State === 'available' && now < (this.availableAt.get(image.ImageId ?? '') ?? 0))
            image.State = 'pending';
          const t = this.timelines.get(this.instanceOfImage.get(image.ImageId ?? '') ?? '');
          if (t && image.State === 'available') t.availableSeen ??= now;
        }
        break;
      default:
        break;
    }
  }
}
