/**
 * KMS for sharing and copying encrypted images: tell the AWS managed `aws/ebs` key (which cannot be
 * shared) from a customer managed key, check a key can encrypt a copy before EC2 is asked to (EC2
 * checks the key only later, and a bad one surfaces as a copy that fails hours in), and give target
 * accounts the use of a key through named grants that a retry finds instead of duplicating.
 */
import type { GrantListEntry, KeyMetadata, KMSClient } from '@aws-sdk/client-kms';
import { Context } from '@temporalio/activity';
import type { AwsTarget, KeyGrantRecord } from '../contracts';
import { FailureType, KMS_GRANT_OPERATIONS, shareGrantName } from '../contracts';
import { partitionOf } from './aws';
import { notVisibleYet, withinWindow } from './consistency';
import type { ActivityDeps } from './deps';
import { aws, failure, isAwsCode, rethrowAws } from './errors';
import { sdk } from './sdk-modules';

export interface KeyInfo {
  keyArn: string;
  keyId: string;
  accountId: string;
  /** `AWS`: an AWS managed key such as aws/ebs (cannot be shared); `CUSTOMER`: a customer managed key. */
  keyManager: 'AWS' | 'CUSTOMER';
  keyState: string;
  enabled: boolean;
  /** EBS encrypts only with symmetric keys (`SYMMETRIC_DEFAULT`) used to encrypt and decrypt. */
  keySpec?: string;
  keyUsage?: string;
}

export interface CheckKeyInput {
  target: AwsTarget;
  /** Key id, alias, key ARN or alias ARN. */
  keyId: string;
  /** What the key is for, for messages: e.g. "the copy to eu-west-1". */
  purpose: string;
  /** Refuse an AWS managed key with this reason (a key for an image that must be shareable). */
  refuseAwsManaged?: string;
}

export interface GrantKeyAccessInput {
  /** Where the key is (the shared image's account and region). */
  target: AwsTarget;
  keyArn: string;
  accountIds: string[];
  /** The share run: grants are named after it (see `shareGrantName`). */
  runId: string;
}

export interface RevokeKeyGrantsInput {
  target: AwsTarget;
  keyArn: string;
  /** The grants' names: found by name, so an undo works even when the grant's id was never learnt. */
  grantNames: string[];
}

/** What `revokeKeyGrants` has revoked so far, kept in its heartbeat details for a retry. */
interface RevokeProgress {
  grantIds: string[];
  names: string[];
}

export interface RevokedGrants {
  revoked: string[];
  /** Names with no grant (never made, or revoked already). */
  absent: string[];
}

function keyInfo(meta: KeyMetadata | undefined, keyId: string): KeyInfo {
  if (!meta?.Arn || !meta.KeyId) throw new Error(`DescribeKey returned no metadata for ${keyId}`);
  return {
    keyArn: meta.Arn,
    keyId: meta.KeyId,
    accountId: meta.AWSAccountId ?? '',
    keyManager: meta.KeyManager === 'AWS' ? 'AWS' : 'CUSTOMER',
    keyState: meta.KeyState ?? 'Unknown',
    enabled: meta.Enabled ?? meta.KeyState === 'Enabled',
    ...(meta.KeySpec ? { keySpec: meta.KeySpec } : {}),
    ...(meta.KeyUsage ? { keyUsage: meta.KeyUsage } : {}),
  };
}

export async function describeKey(kms: KMSClient, keyId: string, purpose: string): Promise<KeyInfo> {
  const { DescribeKeyCommand } = await sdk.kms();
  const out = await aws(`reading KMS key ${keyId} (${purpose})`, () =>
    kms.send(new DescribeKeyCommand({ KeyId: keyId })),
  );
  return keyInfo(out.KeyMetadata, keyId);
}

/** Every grant on the key, following ListGrants' pages. */
async function listGrants(kms: KMSClient, keyArn: string): Promise<GrantListEntry[]> {
  const { ListGrantsCommand } = await sdk.kms();
  const grants: GrantListEntry[] = [];
  let marker: string | undefined;
  do {
    const page = await aws(`listing the grants of ${keyArn}`, () =>
      kms.send(new ListGrantsCommand({ KeyId: keyArn, ...(marker ? { Marker: marker } : {}) })),
    );
    grants.push(...(page.Grants ?? []));
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return grants;
}

export function granteeRoot(accountId: string, region: string): string {
  return `arn:${partitionOf(region)}:iam::${accountId}:root`;
}

/**
 * The key exists, is enabled and (when asked) is customer managed: checked before a copy is started
 * with it, so a bad key fails at once with a message instead of hours later as a failed copy.
 */
export async function checkKey(kms: KMSClient, input: CheckKeyInput): Promise<KeyInfo> {
  const { DescribeKeyCommand } = await sdk.kms();
  let key: KeyInfo;
  try {
    key = keyInfo((await kms.send(new DescribeKeyCommand({ KeyId: input.keyId }))).KeyMetadata, input.keyId);
  } catch (err) {
    if (isAwsCode(err, 'NotFoundException'))
      throw failure(
        FailureType.KmsKeyUnusable,
        `KMS key ${input.keyId} for ${input.purpose} does not exist in ${input.target.region}` +
          `${input.target.accountId ? ` (account ${input.target.accountId})` : ''}: give a key of that region`,
      );
    rethrowAws(err, `reading KMS key ${input.keyId} (${input.purpose})`);
  }
  if (!key.enabled || key.keyState !== 'Enabled')
    throw failure(
      FailureType.KmsKeyUnusable,
      `KMS key ${key.keyArn} for ${input.purpose} is ${key.keyState}: enable it, or give another key`,
      { keyArn: key.keyArn, keyState: key.keyState },
    );
  // EBS supports only symmetric encryption keys
  // (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html#ebs-encryption-requirements).
  if (
    (key.keySpec !== undefined && key.keySpec !== 'SYMMETRIC_DEFAULT') ||
    (key.keyUsage !== undefined && key.keyUsage !== 'ENCRYPT_DECRYPT')
  )
    throw failure(
      FailureType.KmsKeyUnusable,
      `KMS key ${key.keyArn} for ${input.purpose} is ${key.keySpec ?? 'of an unknown spec'} for ${key.keyUsage ?? 'an unknown usage'}: ` +
        'EBS encrypts only with symmetric keys (SYMMETRIC_DEFAULT) for ENCRYPT_DECRYPT; give such a key',
      { keyArn: key.keyArn, keySpec: key.keySpec, keyUsage: key.keyUsage },
    );
  if (input.refuseAwsManaged && key.keyManager === 'AWS')
    throw failure(
      FailureType.KmsKeyUnusable,
      `KMS key ${input.keyId} (${key.keyArn}) for ${input.purpose} is an AWS managed key: ${input.refuseAwsManaged}`,
      { keyArn: key.keyArn },
    );
  return key;
}

export function kmsActivities(deps: ActivityDeps) {
  return {
    /**
     * The key exists, is enabled and (when asked) is customer managed: checked before a copy is
     * started with it, so a bad key fails at once with a message instead of hours later.
     */
    async checkKmsKey(input: CheckKeyInput): Promise<KeyInfo> {
      return checkKey(await deps.aws.kms(input.target), input);
    },

    /**
     * Gives each account the use of the key through a grant with exactly the operations EC2 needs
     * to launch or copy the shared image. Grants are named after the run and the account, and
     * looked up by name first, so a retry reuses the grant its earlier attempt made.
     */
    async grantKeyAccess(input: GrantKeyAccessInput): Promise<KeyGrantRecord[]> {
      const kms = await deps.aws.kms(input.target);
      const { CreateGrantCommand } = await sdk.kms();
      const existing = new Map(
        (await listGrants(kms, input.keyArn)).flatMap((g) => (g.Name && g.GrantId ? [[g.Name, g]] : [])),
      );
      const records: KeyGrantRecord[] = [];
      for (const accountId of input.accountIds) {
        const grantName = shareGrantName(input.runId, accountId);
        const principal = granteeRoot(accountId, input.target.region);
        const found = existing.get(grantName);
        if (found?.GrantId && found.GranteePrincipal === principal) {
          records.push({
            keyArn: input.keyArn,
            granteeAccountId: accountId,
            grantId: found.GrantId,
            grantName,
          });
          continue;
        }
        const out = await aws(`granting account ${accountId} the use of ${input.keyArn}`, () =>
          kms.send(
            new CreateGrantCommand({
              KeyId: input.keyArn,
              GranteePrincipal: principal,
              Operations: [...KMS_GRANT_OPERATIONS],
              Name: grantName,
            }),
          ),
        );
        if (!out.GrantId) throw new Error('CreateGrant returned no GrantId');
        records.push({ keyArn: input.keyArn, granteeAccountId: accountId, grantId: out.GrantId, grantName });
      }
      return records;
    },

    /**
     * Withdraws the named grants; grants that are gone already count as withdrawn. KMS is eventually
     * consistent too: a grant CreateGrant just made can be missing from ListGrants, or unknown to
     * RevokeGrant, for seconds (AWS documents up to minutes). Within the consistency window neither
     * means "never made" or "gone": the step fails retryably (NotVisibleYet) and Temporal asks again,
     * so an undo racing a fresh grant does not leave it behind. Past the window a missing name is
     * `absent`. The ids revoked are kept in heartbeat details, so a retry that still sees one listed
     * (the same lag, the other way) takes RevokeGrant's NotFound for it as done.
     */
    async revokeKeyGrants(input: RevokeKeyGrantsInput): Promise<RevokedGrants> {
      if (input.grantNames.length === 0) return { revoked: [], absent: [] };
      const kms = await deps.aws.kms(input.target);
      const { RevokeGrantCommand } = await sdk.kms();
      const ctx = Context.current();
      const earlier = ctx.info.heartbeatDetails as RevokeProgress | undefined;
      const done: RevokeProgress = {
        grantIds: [...(earlier?.grantIds ?? [])],
        names: [...(earlier?.names ?? [])],
      };
      const byName = new Map<string, string[]>();
      for (const g of await listGrants(kms, input.keyArn))
        if (g.Name && g.GrantId) byName.set(g.Name, [...(byName.get(g.Name) ?? []), g.GrantId]);
      const revoked: string[] = [];
      const missing: string[] = [];
      for (const name of input.grantNames) {
        const ids = byName.get(name) ?? [];
        if (ids.length === 0) {
          if (done.names.includes(name)) revoked.push(name);
          else missing.push(name);
          continue;
        }
        for (const grantId of ids) {
          try {
            await kms.send(new RevokeGrantCommand({ KeyId: input.keyArn, GrantId: grantId }));
          } catch (err) {
            if (!isAwsCode(err, 'NotFoundException', 'InvalidGrantIdException'))
              rethrowAws(err, `revoking grant ${name} on ${input.keyArn}`);
            // Listed a moment ago, unknown to RevokeGrant now: another endpoint's lag, not a revocation
            // (unless an earlier attempt revoked it).
            if (!done.grantIds.includes(grantId) && withinWindow(deps))
              throw notVisibleYet(deps, `grant ${name} (${grantId}) on ${input.keyArn}, to revoke`, err);
          }
          done.grantIds.push(grantId);
        }
        done.names.push(name);
        ctx.heartbeat(done);
        revoked.push(name);
      }
      // Checked after revoking what is visible, so the retry has less left to do.
      if (missing.length > 0 && withinWindow(deps))
        throw notVisibleYet(deps, `grant(s) ${missing.join(', ')} on ${input.keyArn}`);
      const absent = missing;
      return { revoked, absent };
    },
  };
}
