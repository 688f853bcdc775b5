/**
 * Publishing an image id where launches look for it: an SSM parameter of data type `aws:ec2:image`
 * (launch templates and RunInstances take `resolve:ssm:<name>`). SSM validates that data type
 * asynchronously: PutParameter answers before it has checked the AMI, and a value it refuses never
 * becomes the parameter's value. So the put is followed by reading the parameter back until it shows
 * the new id (or the wait fails, saying so).
 */
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { AwsTarget } from '../contracts';
import { FailureType } from '../contracts';
import type { ActivityDeps } from './deps';
import { optionalClient } from './aws';
import { aws, failure, isAwsCode, rethrowAws } from './errors';
import { sdk } from './sdk-modules';
import { waitUntil } from './waiting';

export const IMAGE_DATA_TYPE = 'aws:ec2:image';

export interface ParameterRef {
  target: AwsTarget;
  name: string;
}

export interface ParameterState {
  exists: boolean;
  value?: string;
  version?: number;
  dataType?: string;
}

export interface PublishImageInput extends ParameterRef {
  imageId: string;
  description?: string;
  /** Epoch ms: the longest wait for SSM's asynchronous validation of the image id. */
  deadline: number;
}

export interface PublishedParameter {
  name: string;
  value: string;
  version: number;
  awsCalls: number;
}

export interface RestoreParameterInput extends ParameterRef {
  /** Only restore when the parameter still holds this run's value (someone may have moved it on since). */
  publishedValue: string;
  /** What it held before this run; absent: it did not exist, so it is deleted. */
  previous?: string;
}

export interface RestoredParameter {
  name: string;
  outcome: 'restored' | 'deleted' | 'left: changed since' | 'left: gone';
}

async function ssmOf(deps: ActivityDeps, target: AwsTarget): Promise<SSMClient> {
  return optionalClient(deps.aws, 'ssm', target, 'publishing parameters needs one');
}

async function read(ssm: SSMClient, name: string): Promise<ParameterState> {
  const { GetParameterCommand } = await sdk.ssm();
  try {
    const out = await ssm.send(new GetParameterCommand({ Name: name }));
    const p = out.Parameter;
    return {
      exists: true,
      ...(p?.Value !== undefined ? { value: p.Value } : {}),
      ...(p?.Version !== undefined ? { version: p.Version } : {}),
      ...(p?.DataType !== undefined ? { dataType: p.DataType } : {}),
    };
  } catch (err) {
    if (isAwsCode(err, 'ParameterNotFound')) return { exists: false };
    rethrowAws(err, `reading SSM parameter ${name}`);
  }
}

export function ssmActivities(deps: ActivityDeps) {
  return {
    /** The parameter as it is now (before this run changes it, so the change can be undone). */
    async readImageParameter(input: ParameterRef): Promise<ParameterState> {
      return read(await ssmOf(deps, input.target), input.name);
    },

    /**
     * Writes the image id (data type aws:ec2:image, overwriting) and waits until SSM's asynchronous
     * validation has made it the parameter's value. Safe to repeat: writing the same value again only
     * adds a parameter version.
     */
    async publishImageParameter(input: PublishImageInput): Promise<PublishedParameter> {
      const ssm = await ssmOf(deps, input.target);
      const { PutParameterCommand } = await sdk.ssm();
      const before = await read(ssm, input.name);
      if (before.exists && before.dataType !== undefined && before.dataType !== IMAGE_DATA_TYPE)
        throw failure(
          FailureType.AwsPolicyRefused,
          `SSM parameter ${input.name} in ${input.target.region} has data type '${before.dataType}'; ` +
            `SSM cannot change a parameter to ${IMAGE_DATA_TYPE}: delete it, or publish under another name`,
        );
      const put = await aws(`writing SSM parameter ${input.name} = ${input.imageId}`, () =>
        ssm.send(
          new PutParameterCommand({
            Name: input.name,
            Value: input.imageId,
            Type: 'String',
            DataType: IMAGE_DATA_TYPE,
            Overwrite: true,
            ...(input.description ? { Description: input.description.slice(0, 1024) } : {}),
          }),
        ),
      );
      const out = await waitUntil(deps, {
        what: `SSM to accept ${input.imageId} as parameter ${input.name} (asynchronous aws:ec2:image validation)`,
        poll: () => read(ssm, input.name),
        done: (p) => p.value === input.imageId && (p.version ?? 0) >= (put.Version ?? 0),
        progress: (p) => ({ value: p.value ?? '(none)', version: p.version ?? 0 }),
        progressCalls: 0,
        policy: { firstIntervalMs: 500, maxIntervalMs: 5_000 },
        deadline: input.deadline,
        maxCalls: 200,
      });
      return {
        name: input.name,
        value: input.imageId,
        version: out.state.version ?? put.Version ?? 0,
        awsCalls: out.calls + 2,
      };
    },

    /**
     * Compensation: puts back what the parameter held before this run, or deletes it when it did not
     * exist. Leaves it alone when it no longer holds this run's value. Safe to repeat.
     */
    async restoreImageParameter(input: RestoreParameterInput): Promise<RestoredParameter> {
      const ssm = await ssmOf(deps, input.target);
      const { DeleteParameterCommand, PutParameterCommand } = await sdk.ssm();
      const now = await read(ssm, input.name);
      if (!now.exists) return { name: input.name, outcome: input.previous ? 'left: gone' : 'deleted' };
      if (now.value !== input.publishedValue) {
        return {
          name: input.name,
          outcome: now.value === input.previous ? 'restored' : 'left: changed since',
        };
      }
      if (input.previous === undefined) {
        try {
          await ssm.send(new DeleteParameterCommand({ Name: input.name }));
        } catch (err) {
          if (!isAwsCode(err, 'ParameterNotFound')) rethrowAws(err, `deleting SSM parameter ${input.name}`);
        }
        return { name: input.name, outcome: 'deleted' };
      }
      const previous = input.previous;
      await aws(`restoring SSM parameter ${input.name} = ${previous}`, () =>
        ssm.send(
          new PutParameterCommand({
            Name: input.name,
            Value: previous,
            Type: 'String',
            DataType: IMAGE_DATA_TYPE,
            Overwrite: true,
          }),
        ),
      );
      return { name: input.name, outcome: 'restored' };
    },
  };
}
