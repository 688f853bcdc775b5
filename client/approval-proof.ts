/**
 * The approver's side of a verified approval: an STS GetCallerIdentity request signed (SigV4) with
 * the approver's own AWS credentials, with the decision, workflow id and run id in a signed header;
 * the worker accepts it for 15 minutes after its signing time (STS itself refuses older ones). The worker sends it to STS and records the ARN STS
 * answers (activities/approvers.ts); nothing here is trusted by the worker except that signature.
 */
import type { BinaryLike } from 'node:crypto';
import { createHash, createHmac } from 'node:crypto';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { SignatureV4 } from '@smithy/signature-v4';
import type {
  AwsCredentialIdentity,
  AwsCredentialIdentityProvider,
  Checksum,
  SourceData,
} from '@smithy/types';
import type { ApproverProof } from '../contracts';
import { APPROVAL_BINDING_HEADER, approvalBinding } from '../contracts';

/** SHA-256 (and HMAC-SHA-256 with a secret) from node:crypto, as the signer wants it. */
class NodeSha256 implements Checksum {
  private hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh();
  }
  private fresh() {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(this.secret));
  }
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

function bytes(data: SourceData): BinaryLike {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export interface ApprovalSigning {
  /** The approver's credentials; default the AWS SDK's default chain (env, profile, SSO, …). */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** STS region to sign for; default `AWS_REGION`, else us-east-1. */
  region?: string;
  /** STS endpoint; default `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL`, else the region's own. */
  endpoint?: string;
  /** Signing time (tests). */
  now?: Date;
}

function stsEndpoint(region: string): string {
  const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `https://sts.${region}.${suffix}`;
}

/** A proof that whoever holds `signing.credentials` takes this decision on this run. */
export async function signApproval(
  kind: 'approve' | 'reject',
  workflowId: string,
  runId: string,
  signing: ApprovalSigning = {},
): Promise<ApproverProof> {
  const region = signing.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const endpoint = new URL(
    signing.endpoint ??
      process.env.AWS_ENDPOINT_URL_STS ??
      process.env.AWS_ENDPOINT_URL ??
      stsEndpoint(region),
  );
  const binding = approvalBinding(kind, workflowId, runId);
  const signer = new SignatureV4({
    service: 'sts',
    region,
    credentials: signing.credentials ?? fromNodeProviderChain(),
    sha256: NodeSha256,
  });
  // Signed headers (not query authentication): the same proof for STS, and one a sandbox that
  // routes by the Authorization header (moto) can answer too.
  const signed = await signer.sign(
    {
      method: 'GET',
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      ...(endpoint.port ? { port: Number(endpoint.port) } : {}),
      path: '/',
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
      headers: { host: endpoint.host, [APPROVAL_BINDING_HEADER]: binding },
    },
    signing.now ? { signingDate: signing.now } : {},
  );
  const headers = Object.fromEntries(
    Object.entries(signed.headers).filter(([k]) => k.toLowerCase() !== 'host'),
  );
  return {
    url: `${endpoint.protocol}//${endpoint.host}/?Action=GetCallerIdentity&Version=2011-06-15`,
    headers,
  };
}
