/**
 * The CLI's `image share`, `image unshare`, `image share-expiry` and `image copy`: flags parsed and
 * validated (naming the flag) before anything connects, then the run started through the library.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type {
  CopyDestination,
  CopyImageInput,
  CopyImageResult,
  ShareExpiryUpdate,
  ShareImageInput,
  ShareImageResult,
  ShareRecord,
  UnshareImageResult,
  WorkflowProgress,
} from '../workflows/contracts';
import {
  copyImageIssues,
  parseShareExpiryUpdate,
  shareImageIssues,
  unshareImageIssues,
} from '../workflows/share-validation';
import type { InputIssue } from '../workflows/validation';
import { InvalidInputError } from '../workflows/validation';
import { followRun, parseTagFlags } from './cli-common';
import type { AmiflowClient } from './index';

export class DistributionUsageError extends Error {
  override name = 'UsageError';
}

export const DISTRIBUTION_USAGE = `  amiflow image share --region <region> --image <ami-…> [--account <owner account>]
                      [--target-account <12 digits>]… [--target-org <organization ARN>]… [--target-ou <OU ARN>]…
                      [--public --allow-public] [--allow-copy] [--kms-access grant|key-policy]
                      [--reencrypt-with <CMK id|alias|ARN>] [--reencrypted-name <name>] [--tag key=value]…
                      [--duration <30d|12h|90m|seconds>] [--id <workflow id>] [--watch | --no-wait] [--json]
  amiflow image share-expiry <share workflow id> (--in <duration> | --at <ISO time> | --now)
  amiflow image unshare <share workflow id> [--record <share result .json>, compared with the run's own] [--delete-reencrypted-copy] [--json]
  amiflow image copy --region <region> --image <ami-…> [--account <owner account>]
                     --to region=<region>[,account=<12 digits>][,kms=<key>][,name=<name>][,description=<text>]…
                     [--policy rollback|keep] [--per-region <n>] [--reencrypt-with <CMK>] [--tag key=value]…
                     [--copy-timeout <duration>] [--id <workflow id>] [--watch | --no-wait] [--json]`;

export interface Parsed<T> {
  input: T;
  id?: string;
  watch: boolean;
  wait: boolean;
  json: boolean;
}

const UNITS: Record<string, number> = { s: 1, m: 60, min: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** `30d`, `12h`, `90m`, `45s`, `2w` or a number of seconds. */
export function durationSeconds(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?$/.exec(raw.trim());
  if (!m)
    throw new DistributionUsageError(
      `--${flag}: '${raw}' is not a duration (e.g. 30d, 12h, 90m, or seconds)`,
    );
  return Math.round(Number(m[1]) * (UNITS[m[2] ?? 's'] ?? 1));
}

function refuse(issues: InputIssue[], flagFor: (field: string) => string): void {
  if (issues.length) throw new InvalidInputError(issues.map((i) => ({ ...i, field: flagFor(i.field) })));
}

function nth(field: string, prefix: string, flag: string): string | undefined {
  const m = new RegExp(`^${prefix.replace(/[.[\]]/g, '\\$&')}\\[(\\d+)\\](.*)$`).exec(field);
  return m ? `${flag} #${Number(m[1]) + 1}${m[2] ? ` ${m[2].replace(/^\./, '')}` : ''}` : undefined;
}

function shareFlag(field: string): string {
  const map: Record<string, string> = {
    region: '--region',
    accountId: '--account',
    imageId: '--image',
    targets: '--target-account/--target-org/--target-ou',
    'targets.public': '--public',
    allowCopy: '--allow-copy',
    kmsAccess: '--kms-access',
    reencryptWith: '--reencrypt-with',
    reencryptedName: '--reencrypted-name',
    durationSeconds: '--duration',
    'timeouts.copyAvailableSeconds': '--copy-timeout',
  };
  if (field.startsWith('tags.')) return `--tag ${field.slice(5)}`;
  return (
    map[field] ??
    nth(field, 'targets.accountIds', '--target-account') ??
    nth(field, 'targets.organizationArns', '--target-org') ??
    nth(field, 'targets.organizationalUnitArns', '--target-ou') ??
    field
  );
}

function copyFlag(field: string): string {
  const map: Record<string, string> = {
    region: '--region',
    accountId: '--account',
    imageId: '--image',
    destinations: '--to',
    partialFailure: '--policy',
    concurrencyPerRegion: '--per-region',
    reencryptWith: '--reencrypt-with',
    'timeouts.copyAvailableSeconds': '--copy-timeout',
  };
  if (field.startsWith('tags.')) return `--tag ${field.slice(5)}`;
  const dest = /^destinations\[(\d+)\](?:\.(\w+))?$/.exec(field);
  if (dest) {
    const key: Record<string, string> = {
      region: 'region',
      accountId: 'account',
      kmsKeyId: 'kms',
      name: 'name',
      description: 'description',
    };
    return `--to #${Number(dest[1]) + 1}${dest[2] ? ` ${key[dest[2]] ?? dest[2]}` : ''}`;
  }
  return map[field] ?? field;
}

const RUN_FLAGS = {
  id: { type: 'string' },
  watch: { type: 'boolean', default: false },
  'no-wait': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
} as const;

function runFlags(values: { id?: string; watch?: boolean; 'no-wait'?: boolean; json?: boolean }) {
  if (values.watch && values['no-wait'])
    throw new DistributionUsageError('--watch and --no-wait exclude each other');
  return {
    ...(values.id ? { id: values.id } : {}),
    watch: values.watch === true,
    wait: values['no-wait'] !== true,
    json: values.json === true,
  };
}

export function parseImageShare(argv: string[]): Parsed<ShareImageInput> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      region: { type: 'string' },
      account: { type: 'string' },
      image: { type: 'string' },
      'target-account': { type: 'string', multiple: true },
      'target-org': { type: 'string', multiple: true },
      'target-ou': { type: 'string', multiple: true },
      public: { type: 'boolean', default: false },
      'allow-public': { type: 'boolean', default: false },
      'allow-copy': { type: 'boolean', default: false },
      'kms-access': { type: 'string' },
      'reencrypt-with': { type: 'string' },
      'reencrypted-name': { type: 'string' },
      tag: { type: 'string', multiple: true },
      duration: { type: 'string' },
      'copy-timeout': { type: 'string' },
      ...RUN_FLAGS,
    },
  });
  if (positionals.length) throw new DistributionUsageError(`unexpected argument '${positionals[0]}'`);
  const duration = durationSeconds('duration', values.duration);
  const copyTimeout = durationSeconds('copy-timeout', values['copy-timeout']);
  const tags = parseTagFlags(values.tag, (m) => new DistributionUsageError(m));
  const input: ShareImageInput = {
    region: values.region ?? process.env.AWS_REGION ?? '',
    imageId: values.image ?? '',
    ...(values.account !== undefined ? { accountId: values.account } : {}),
    targets: {
      ...(values['target-account'] ? { accountIds: values['target-account'] } : {}),
      ...(values['target-org'] ? { organizationArns: values['target-org'] } : {}),
      ...(values['target-ou'] ? { organizationalUnitArns: values['target-ou'] } : {}),
      ...(values.public ? { public: true } : {}),
    },
    ...(values['allow-public'] ? { allowPublic: true } : {}),
    ...(values['allow-copy'] ? { allowCopy: true } : {}),
    ...(values['kms-access'] !== undefined
      ? { kmsAccess: values['kms-access'] as ShareImageInput['kmsAccess'] }
      : {}),
    ...(values['reencrypt-with'] !== undefined ? { reencryptWith: values['reencrypt-with'] } : {}),
    ...(values['reencrypted-name'] !== undefined ? { reencryptedName: values['reencrypted-name'] } : {}),
    ...(tags ? { tags } : {}),
    ...(duration !== undefined ? { durationSeconds: duration } : {}),
    ...(copyTimeout !== undefined ? { timeouts: { copyAvailableSeconds: copyTimeout } } : {}),
  };
  refuse(shareImageIssues(input), shareFlag);
  return { input, ...runFlags(values) };
}

/** `eu-west-1`, or `region=eu-west-1,account=111122223333,kms=alias/copies,name=web-copy`. */
export function parseDestination(raw: string, n: number): CopyDestination {
  if (!raw.includes('=')) return { region: raw };
  const keys: Record<string, keyof CopyDestination> = {
    region: 'region',
    account: 'accountId',
    kms: 'kmsKeyId',
    name: 'name',
    description: 'description',
  };
  const out: Partial<Record<keyof CopyDestination, string>> = {};
  for (const part of raw.split(',')) {
    const at = part.indexOf('=');
    const key = keys[part.slice(0, at).trim()];
    if (at <= 0 || !key)
      throw new DistributionUsageError(
        `--to #${n}: '${part}' is not one of region=, account=, kms=, name=, description= (separated by commas)`,
      );
    if (out[key] !== undefined)
      throw new DistributionUsageError(`--to #${n}: '${part.slice(0, at)}' given twice`);
    out[key] = part.slice(at + 1).trim();
  }
  return { region: out.region ?? '', ...out };
}

export function parseImageCopy(argv: string[]): Parsed<CopyImageInput> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      region: { type: 'string' },
      account: { type: 'string' },
      image: { type: 'string' },
      to: { type: 'string', multiple: true },
      policy: { type: 'string' },
      'per-region': { type: 'string' },
      'reencrypt-with': { type: 'string' },
      tag: { type: 'string', multiple: true },
      'copy-timeout': { type: 'string' },
      ...RUN_FLAGS,
    },
  });
  if (positionals.length) throw new DistributionUsageError(`unexpected argument '${positionals[0]}'`);
  const perRegion = values['per-region'];
  if (perRegion !== undefined && !/^\d+$/.test(perRegion))
    throw new DistributionUsageError(`--per-region: '${perRegion}' is not a whole number`);
  const copyTimeout = durationSeconds('copy-timeout', values['copy-timeout']);
  const tags = parseTagFlags(values.tag, (m) => new DistributionUsageError(m));
  const input: CopyImageInput = {
    region: values.region ?? process.env.AWS_REGION ?? '',
    imageId: values.image ?? '',
    ...(values.account !== undefined ? { accountId: values.account } : {}),
    destinations: (values.to ?? []).map((raw, i) => parseDestination(raw, i + 1)),
    ...(values.policy !== undefined
      ? { partialFailure: values.policy as CopyImageInput['partialFailure'] }
      : {}),
    ...(perRegion !== undefined ? { concurrencyPerRegion: Number(perRegion) } : {}),
    ...(values['reencrypt-with'] !== undefined ? { reencryptWith: values['reencrypt-with'] } : {}),
    ...(tags ? { tags } : {}),
    ...(copyTimeout !== undefined ? { timeouts: { copyAvailableSeconds: copyTimeout } } : {}),
  };
  refuse(copyImageIssues(input), copyFlag);
  return { input, ...runFlags(values) };
}

export function parseShareExpiry(argv: string[]): { id: string; update: ShareExpiryUpdate } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { in: { type: 'string' }, at: { type: 'string' }, now: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1)
    throw new DistributionUsageError('image share-expiry takes one share workflow id');
  const given = [values.in !== undefined, values.at !== undefined, values.now].filter(Boolean).length;
  if (given !== 1) throw new DistributionUsageError('give exactly one of --in, --at and --now');
  const update: ShareExpiryUpdate = values.now
    ? { expiresInSeconds: 0 }
    : values.at !== undefined
      ? { expiresAt: values.at }
      : { expiresInSeconds: durationSeconds('in', values.in) ?? 0 };
  // Shape only: the workflow checks the time against its own clock.
  try {
    parseShareExpiryUpdate(update);
  } catch (err) {
    if (err instanceof InvalidInputError)
      refuse(err.issues, (f) => ({ expiresAt: '--at', expiresInSeconds: '--in' })[f] ?? f);
    throw err;
  }
  return { id: positionals[0] as string, update };
}

export function parseImageUnshare(argv: string[]): {
  id: string;
  record?: ShareRecord;
  deleteReencryptedCopy: boolean;
  json: boolean;
} {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      record: { type: 'string' },
      'delete-reencrypted-copy': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  // The run's own result is what gets withdrawn; a record file is only compared with it.
  if (positionals.length !== 1)
    throw new DistributionUsageError(
      "image unshare takes the share's workflow id (--record <file> is only compared with that run's own record)",
    );
  const id = positionals[0] as string;
  const deleteReencryptedCopy = values['delete-reencrypted-copy'];
  refuse(unshareImageIssues({ shareWorkflowId: id }), () => '<share workflow id>');
  if (values.record === undefined) return { id, deleteReencryptedCopy, json: values.json };
  let record: unknown;
  try {
    record = JSON.parse(readFileSync(values.record, 'utf8'));
  } catch (err) {
    throw new DistributionUsageError(
      `--record: cannot read '${values.record}' as JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const r = record as Partial<ShareRecord> | null;
  const share = {
    image: r?.image,
    sharedImageId: r?.sharedImageId,
    added: r?.added,
    ...(r?.reencryptedCopy ? { reencryptedCopy: r.reencryptedCopy } : {}),
  };
  refuse(
    unshareImageIssues({
      share,
      shareWorkflowId: id,
      ...(deleteReencryptedCopy ? { deleteReencryptedCopy } : {}),
    }),
    (f) => (f === 'shareWorkflowId' ? '<share workflow id>' : `--record ${f.replace(/^share\./, '')}`),
  );
  return { id, record: share as ShareRecord, deleteReencryptedCopy, json: values.json };
}

// ---------------------------------------------------------------------------------------------
// Results for people
// ---------------------------------------------------------------------------------------------

export function formatShareResult(r: ShareImageResult): string {
  const lp = r.added.launchPermissions.map(
    (p) => p.userId ?? p.organizationArn ?? p.organizationalUnitArn ?? 'everyone',
  );
  const lines = [
    `image ${r.sharedImageId} (${r.image.region}) shared at ${r.sharedAt}` +
      (r.reencryptedCopy ? ` (a copy of ${r.image.imageId} under ${r.reencryptedCopy.kmsKeyId})` : ''),
    `  launch permission added for: ${lp.join(', ') || '(none: every target had it)'}`,
  ];
  const already = r.alreadyPresent.launchPermissions.map(
    (p) => p.userId ?? p.organizationArn ?? p.organizationalUnitArn ?? 'everyone',
  );
  if (already.length) lines.push(`  already had it (left alone): ${already.join(', ')}`);
  if (r.added.snapshotPermissions.length)
    lines.push(
      `  may copy it (snapshot create-volume permission): ${[...new Set(r.added.snapshotPermissions.flatMap((p) => p.userIds))].join(', ')}`,
    );
  for (const g of r.added.grants)
    lines.push(`  KMS grant ${g.grantId} on ${g.keyArn} for ${g.granteeAccountId}`);
  for (const k of r.keyAccess)
    lines.push(
      `  principals in the target accounts need this IAM policy on ${k.keyArn}:`,
      JSON.stringify(k.targetIamPolicy, null, 2).replace(/^/gm, '    '),
    );
  if (r.withdrawnAt) lines.push(`  withdrawn at ${r.withdrawnAt} (due ${r.expiresAt ?? '?'})`);
  else lines.push(`  withdraw it with: amiflow image unshare <this workflow id>`);
  return lines.join('\n');
}

export function formatCopyResult(r: CopyImageResult): string {
  const lines = [`copies of ${r.source.imageId} '${r.source.imageName}' (${r.source.region}): ${r.outcome}`];
  for (const d of r.destinations)
    lines.push(
      `  ${d.region}${d.accountId ? `/${d.accountId}` : ''}: ${d.status}${d.imageId ? ` ${d.imageId}` : ''}` +
        `${d.exists ? '' : d.imageId ? ' (gone)' : ''}${d.error ? `: ${d.error}` : ''}`,
    );
  if (r.share)
    lines.push(
      `  shared with ${r.share.accountIds.join(', ')} to copy, ${r.share.withdrawn ? 'withdrawn since' : 'NOT withdrawn'}`,
    );
  return lines.join('\n');
}

export function formatUnshareResult(r: UnshareImageResult): string {
  const w = r.withdrawn;
  return (
    `withdrawn from ${r.sharedImageId} (${r.image.region}): ${w.launchPermissions.length} launch permission(s), ` +
    `create-volume permissions on ${w.snapshotPermissions.length} snapshot(s), ${w.grants.length} KMS grant(s)` +
    (r.deletedReencryptedCopy ? `; re-encrypted copy ${r.deletedReencryptedCopy} deleted` : '')
  );
}

/** A share, unshare or copy result for people, or undefined when `value` is none of them (`amiflow watch`). */
export function formatDistributionResult(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if ('destinations' in value && 'outcome' in value) return formatCopyResult(value as CopyImageResult);
  if ('withdrawn' in value && 'sharedImageId' in value)
    return formatUnshareResult(value as UnshareImageResult);
  if ('added' in value && 'sharedAt' in value) return formatShareResult(value as ShareImageResult);
  return undefined;
}

type Printer = (p: WorkflowProgress) => void;

/** Runs what the parsed command asks, once connected. */
export async function runShare(
  client: AmiflowClient,
  parsed: Parsed<ShareImageInput>,
  printer: Printer,
): Promise<number> {
  if (parsed.input.durationSeconds !== undefined && !parsed.watch && parsed.wait)
    console.error(
      `the share is withdrawn when it expires; this waits until then (--no-wait returns at once)`,
    );
  const started = await client.startShareImage(parsed.input, parsed.id ? { workflowId: parsed.id } : {});
  await followRun<ShareImageResult>(client, started, parsed, printer, formatShareResult);
  return 0;
}

export async function runCopy(
  client: AmiflowClient,
  parsed: Parsed<CopyImageInput>,
  printer: Printer,
): Promise<number> {
  const started = await client.startCopyImage(parsed.input, parsed.id ? { workflowId: parsed.id } : {});
  const result = await followRun<CopyImageResult>(client, started, parsed, printer, formatCopyResult);
  return result === undefined || result.outcome === 'complete' ? 0 : 1;
}

export async function runUnshare(
  client: AmiflowClient,
  parsed: ReturnType<typeof parseImageUnshare>,
): Promise<number> {
  {
    const status = (await client.handle(parsed.id).describe()).status.name;
    if (status === 'RUNNING') {
      // A time-limited share still running: end it now; it withdraws what it added itself.
      const { expiresAt } = await client.setShareExpiry(parsed.id, { expiresInSeconds: 0 });
      console.error(`share ${parsed.id} ends now (${expiresAt}); it withdraws what it added`);
      const result = await client.result<ShareImageResult>(parsed.id);
      console.log(parsed.json ? JSON.stringify(result, null, 2) : formatShareResult(result));
      return 0;
    }
    const share = await client.result<ShareImageResult>(parsed.id);
    if (share.withdrawnAt) {
      console.log(`share ${parsed.id} was withdrawn already, at ${share.withdrawnAt}`);
      return 0;
    }
  }
  const started = await client.startUnshareImage(parsed.id, {
    deleteReencryptedCopy: parsed.deleteReencryptedCopy,
    ...(parsed.record ? { expected: parsed.record } : {}),
  });
  console.error(`started ${started.workflowId} (run ${started.runId})`);
  const result = await client.result<UnshareImageResult>(started.workflowId);
  console.log(parsed.json ? JSON.stringify(result, null, 2) : formatUnshareResult(result));
  return 0;
}

export async function runShareExpiry(
  client: AmiflowClient,
  parsed: ReturnType<typeof parseShareExpiry>,
): Promise<number> {
  const { expiresAt } = await client.setShareExpiry(parsed.id, parsed.update);
  console.log(`share ${parsed.id} now ends at ${expiresAt}`);
  return 0;
}
