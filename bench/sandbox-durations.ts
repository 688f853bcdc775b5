/**
 * The sandbox (moto) changes state at once: an instance is `stopped` the moment StopInstances
 * returns, an image `available` the moment CreateImage does. Real EC2 takes seconds to minutes, and
 * that is the time both an amiflow run and a direct script spend waiting. This model gives the
 * sandbox durations: an SDK middleware, attached to every EC2 client of both sides alike, that keeps
 * showing `stopping` / `pending` until the modelled time has passed. Nothing else is changed.
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
  ImageId?: string;
  Reservations?: { Instances?: Instance[] }[];
  Images?: Image[];
}

export class SandboxDurations {
  private readonly stoppedAt = new Map<string, number>();
  private readonly runningAt = new Map<string, number>();
  private readonly availableAt = new Map<string, number>();
  private readonly attached = new WeakSet<EC2Client>();

  constructor(readonly durations: Durations) {}

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

  private observe(command: string, input: Observed, output: Observed): void {
    const now = Date.now();
    switch (command) {
      case 'StopInstancesCommand':
        for (const id of input.InstanceIds ?? []) this.stoppedAt.set(id, now + this.durations.stopMs);
        break;
      case 'StartInstancesCommand':
        for (const id of input.InstanceIds ?? []) this.runningAt.set(id, now + this.durations.startMs);
        break;
      case 'CreateImageCommand':
        if (output.ImageId) this.availableAt.set(output.ImageId, now + this.durations.imageMs);
        break;
      case 'DescribeInstancesCommand':
        for (const i of (output.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
          const id = i.InstanceId ?? '';
          if (i.State?.Name === 'stopped' && now < (this.stoppedAt.get(id) ?? 0))
            i.State = { Name: 'stopping', Code: 64 };
          if (i.State?.Name === 'running' && now < (this.runningAt.get(id) ?? 0))
            i.State = { Name: 'pending', Code: 0 };
        }
        break;
      case 'DescribeImagesCommand':
        for (const image of output.Images ?? []) {
          if (image.State === 'available' && now < (this.availableAt.get(image.ImageId ?? '') ?? 0))
            image.State = 'pending';
        }
        break;
      default:
        break;
    }
  }
}
