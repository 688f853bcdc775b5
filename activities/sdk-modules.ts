/**
 * The AWS SDK modules only some activities use, loaded on first use (issue 13's idle RSS). An idle
 * worker, or one that only images, copies and waits, needs EC2 alone; SSM, KMS, Auto Scaling,
 * CloudWatch and STS together hold ~3.4 MB of heap once loaded (each client module carries every
 * command of its service), so they load when the first activity that needs one runs. The SDK's module
 * cache makes each load happen once; a failed load is retried on the next call, not remembered.
 *
 * Activity files keep `import type` for the SDK's types and take command classes from these loaders:
 * `const { DescribeKeyCommand } = await sdk.kms();`.
 */
import type * as AutoScaling from '@aws-sdk/client-auto-scaling';
import type * as CloudWatch from '@aws-sdk/client-cloudwatch';
import type * as Kms from '@aws-sdk/client-kms';
import type * as Ssm from '@aws-sdk/client-ssm';
import type * as Sts from '@aws-sdk/client-sts';

/** One loader per module: later calls share the first call's promise unless it failed. */
function onFirstUse<M>(load: () => Promise<M>): () => Promise<M> {
  let loading: Promise<M> | undefined;
  return () => {
    loading ??= load().catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
    return loading;
  };
}

export const sdk = {
  autoScaling: onFirstUse((): Promise<typeof AutoScaling> => import('@aws-sdk/client-auto-scaling')),
  cloudWatch: onFirstUse((): Promise<typeof CloudWatch> => import('@aws-sdk/client-cloudwatch')),
  kms: onFirstUse((): Promise<typeof Kms> => import('@aws-sdk/client-kms')),
  ssm: onFirstUse((): Promise<typeof Ssm> => import('@aws-sdk/client-ssm')),
  sts: onFirstUse((): Promise<typeof Sts> => import('@aws-sdk/client-sts')),
};
