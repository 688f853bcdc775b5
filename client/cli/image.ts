/**
 * `amiflow image …`: create (from an instance), share, share-expiry, unshare, copy. Each command's
 * flags are declared once below; the input is built from them and validated (naming the flag)
 * before anything connects.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type {
  CopyDestination,
  CopyImageInput,
  CopyImageResult,
  ImageFromInstanceInput,
  ImageFromInstanceResult,
  ShareExpiryUpdate,
  ShareImageInput,
  ShareImageResult,
  ShareRecord,
  UnshareImageResult,
} from '../../contracts';
import {
  copyImageIssues,
  parseShareExpiryUpdate,
  shareImageIssues,
  unshareImageIssues,
} from '../../workflows/share-validation';
import { InvalidInputError, imageFromInstanceIssues } from '../../workflows/validation';
import { copyImageInputSchema, imageFromInstanceInputSchema, shareImageInputSchema } from '../../contracts';
import type { AmiflowClient } from '../index';
import type { CliContext } from './context';
import { registerRollout } from './rollout';
import { forTerminal, ownAccountShareIssues } from '../trust-input';
import { emit, emitCompleted, outputOf, startAndFollow, withClient } from './context';
import type { FlagSpec } from './flags';
import {
  ACCOUNT,
  FOLLOW_FLAGS,
  REGION,
  TAG,
  UsageError,
  addFlags,
  followIssues,
  followOptions,
  inputFrom,
  parseDuration,
  parseIsoTime,
  refuse,
  schemaFlag,
} from './flags';
import { formatCopyResult, formatImageResult, formatShareResult, formatUnshareResult } from './image-format';

/** A script given as a file: its text goes into the input (and so to the instance over SSM). */
function scriptFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read script file '${path}': ${(err as Error).message}`);
  }
}

/** Mode app-consistent: the pre step, its watchdog, its failure policy (docs/consistency-modes.md). */
const APP_CONSISTENT_FLAGS: readonly FlagSpec[] = [
  {
    flags: '--freeze <mount point>',
    help: 'app-consistent: freeze this file system (repeatable; default: every EBS data file system, never /)',
    field: 'appConsistent.quiesce.mountPoints',
    repeat: true,
  },
  {
    flags: '--freeze-root',
    help: 'app-consistent: allow freezing the root file system / (it can stall the SSM agent)',
    field: 'appConsistent.quiesce.freezeRoot',
  },
  {
    flags: '--pre-script <file>',
    help: 'app-consistent: your own quiesce script (e.g. flush and lock a database) instead of fsfreeze',
    field: 'appConsistent.quiesce.pre',
    parse: scriptFile,
  },
  {
    flags: '--post-script <file>',
    help: 'app-consistent: the script that undoes --pre-script (also run by the watchdog)',
    field: 'appConsistent.quiesce.post',
    parse: scriptFile,
  },
  {
    flags: '--pre-document <name>',
    help: 'app-consistent: an SSM document that quiesces (with --post-document, --max-freeze-parameter)',
    field: 'appConsistent.quiesce.preDocument',
  },
  {
    flags: '--post-document <name>',
    help: 'app-consistent: the SSM document that undoes --pre-document',
    field: 'appConsistent.quiesce.postDocument',
  },
  {
    flags: '--max-freeze-parameter <name>',
    help: "app-consistent: the pre document's parameter that gets the max freeze (its watchdog)",
    field: 'appConsistent.quiesce.maxFreezeParameter',
  },
  {
    flags: '--max-freeze <duration>',
    help: 'app-consistent: the on-instance watchdog thaws after this long (5s to 5m, default 30s)',
    field: 'appConsistent.maxFreezeSeconds',
    parse: parseDuration,
  },
  {
    flags: '--on-pre-failure <policy>',
    help: 'app-consistent: when the pre step fails: fail the run, or image crash-consistent and say so',
    field: 'appConsistent.onPreFailure',
    choices: ['fail', 'crash-consistent'],
  },
  {
    flags: '--pre-timeout <duration>',
    help: 'app-consistent: longest wait for the pre step (default 2m)',
    field: 'appConsistent.preTimeoutSeconds',
    parse: parseDuration,
  },
  {
    flags: '--post-timeout <duration>',
    help: 'app-consistent: longest wait for the thaw (default 2m)',
    field: 'appConsistent.postTimeoutSeconds',
    parse: parseDuration,
  },
];

/** The quiesce kind the app-consistent flags given imply (the schema then names any flag that does not fit). */
function withQuiesceKind(input: Record<string, unknown>): Record<string, unknown> {
  const app = input.appConsistent as { quiesce?: Record<string, unknown> } | undefined;
  const q = app?.quiesce;
  if (!app || !q) return input;
  const kind =
    q.pre !== undefined || q.post !== undefined
      ? 'script'
      : q.preDocument !== undefined || q.postDocument !== undefined || q.maxFreezeParameter !== undefined
        ? 'document'
        : 'fsfreeze';
  return { ...input, appConsistent: { ...app, quiesce: { kind, ...q } } };
}

const create = (flags: string, field: string, more?: Partial<FlagSpec>) =>
  schemaFlag(flags, imageFromInstanceInputSchema, field, more);

const CREATE_FLAGS: readonly FlagSpec[] = [
  { ...REGION, help: 'AWS region of the instance' },
  create('--instance <i-…>', 'instanceId', { help: 'the instance to image' }),
  create('--name <image name>', 'imageName', { help: 'name of the new image' }),
  create('--mode <mode>', 'mode', {
    help:
      'stop: stop, image, start again (consistent); reboot: EC2 reboots it; no-reboot: no downtime, crash-consistent; ' +
      'app-consistent: no downtime, freeze (or your script) over SSM for the CreateImage call, then thaw',
    default: 'reboot',
  }),
  ACCOUNT,
  create('--description <text>', 'description', { help: 'image description' }),
  TAG,
  create('--instance-timeout <duration>', 'timeouts.instanceStateSeconds', {
    help: 'longest wait for the instance to stop or start',
  }),
  create('--available-timeout <duration>', 'timeouts.imageAvailableSeconds', {
    help: 'longest wait for the image to become available',
  }),
  ...APP_CONSISTENT_FLAGS,
  ...FOLLOW_FLAGS,
];

const share = (flags: string, field: string, more?: Partial<FlagSpec>) =>
  schemaFlag(flags, shareImageInputSchema, field, more);
const copy = (flags: string, field: string, more?: Partial<FlagSpec>) =>
  schemaFlag(flags, copyImageInputSchema, field, more);

// Help, choices, repetition and parsing come from the input schemas (contracts/share.ts, copy.ts).
const SHARE_FLAGS: readonly FlagSpec[] = [
  REGION,
  share('--image <ami-…>', 'imageId'),
  ACCOUNT,
  share('--target-account <12 digits>', 'targets.accountIds'),
  share('--target-org <ARN>', 'targets.organizationArns'),
  share('--target-ou <ARN>', 'targets.organizationalUnitArns'),
  share('--public', 'targets.public', { help: 'share with everyone (needs --allow-public)' }),
  share('--allow-public', 'allowPublic'),
  share('--allow-copy', 'allowCopy'),
  share('--kms-access <how>', 'kmsAccess'),
  share('--reencrypt-with <CMK>', 'reencryptWith'),
  share('--reencrypted-name <name>', 'reencryptedName'),
  TAG,
  share('--duration <duration>', 'durationSeconds'),
  share('--copy-timeout <duration>', 'timeouts.copyAvailableSeconds'),
  ...FOLLOW_FLAGS,
];
const SHARE_EXTRA = { targets: '--target-account/--target-org/--target-ou' };

const COPY_FLAGS: readonly FlagSpec[] = [
  REGION,
  copy('--image <ami-…>', 'imageId'),
  ACCOUNT,
  copy('--to <destination>', 'destinations', {
    help: 'region, or region=<r>[,account=<12 digits>][,kms=<key>][,name=<n>][,description=<t>] (repeatable)',
    subfields: { accountId: 'account', kmsKeyId: 'kms' },
  }),
  copy('--policy <policy>', 'partialFailure'),
  copy('--per-region <n>', 'concurrencyPerRegion'),
  copy('--reencrypt-with <CMK>', 'reencryptWith'),
  TAG,
  copy('--copy-timeout <duration>', 'timeouts.copyAvailableSeconds'),
  ...FOLLOW_FLAGS,
];

const DEST_KEYS: Record<string, keyof CopyDestination> = {
  region: 'region',
  account: 'accountId',
  kms: 'kmsKeyId',
  name: 'name',
  description: 'description',
};

/** `eu-west-1`, or `region=eu-west-1,account=111122223333,kms=alias/copies,name=web-copy`. */
export function parseDestination(raw: string, n: number): CopyDestination {
  if (!raw.includes('=')) return { region: raw };
  const out: Partial<Record<keyof CopyDestination, string>> = {};
  for (const part of raw.split(',')) {
    const at = part.indexOf('=');
    const key = DEST_KEYS[part.slice(0, at).trim()];
    if (at <= 0 || !key)
      throw new UsageError(
        `--to #${n}: '${part}' is not one of region=, account=, kms=, name=, description= (separated by commas)`,
      );
    if (out[key] !== undefined) throw new UsageError(`--to #${n}: '${part.slice(0, at)}' given twice`);
    out[key] = part.slice(at + 1).trim();
  }
  return { region: out.region ?? '', ...out };
}

type Opts = Record<string, unknown>;

function registerCreate(image: Command, ctx: CliContext): void {
  addFlags(
    image
      .command('create')
      .description('image an instance (stop, image, start again; or reboot / no-reboot / app-consistent)'),
    CREATE_FLAGS,
  ).action(async (opts: Opts, cmd: Command) => {
    const input = withQuiesceKind(inputFrom(CREATE_FLAGS, opts)) as unknown as ImageFromInstanceInput;
    refuse(CREATE_FLAGS, [...imageFromInstanceIssues(input), ...followIssues(opts)]);
    await startAndFollow<ImageFromInstanceResult>(ctx, cmd, opts, {
      start: (client, options) => client.startImageFromInstance(input, options),
      format: formatImageResult,
    });
  });
}

function registerShare(image: Command, ctx: CliContext): void {
  addFlags(
    image
      .command('share')
      .description('share an image with accounts, an organization or OUs (optionally for a time)'),
    SHARE_FLAGS,
  ).action(async (opts: Opts, cmd: Command) => {
    const raw = inputFrom(SHARE_FLAGS, opts);
    const input = { ...raw, targets: raw.targets ?? {} } as unknown as ShareImageInput;
    refuse(
      SHARE_FLAGS,
      [...shareImageIssues(input), ...ownAccountShareIssues(input), ...followIssues(opts)],
      SHARE_EXTRA,
    );
    const { watch, wait } = followOptions(opts);
    await startAndFollow<ShareImageResult>(ctx, cmd, opts, {
      start: (client, options) => {
        if (input.durationSeconds !== undefined && !watch && wait)
          console.error(
            'the share is withdrawn when it expires; this waits until then (--no-wait returns at once)',
          );
        return client.startShareImage(input, options);
      },
      format: formatShareResult,
    });
  });
}

function registerShareExpiry(image: Command, ctx: CliContext): void {
  image
    .command('share-expiry')
    .description('move the end of a running time-limited share')
    .argument('<share-workflow-id>', 'the share run')
    .option('--in <duration>', 'end it this long from now', parseDuration)
    .option('--at <ISO time>', 'end it at this time', parseIsoTime)
    .option('--now', 'end it now')
    .action(async (id: string, opts: { in?: number; at?: string; now?: boolean }, cmd: Command) => {
      const given = [opts.in !== undefined, opts.at !== undefined, opts.now === true].filter(Boolean).length;
      if (given !== 1) throw new UsageError('give exactly one of --in, --at and --now');
      const update: ShareExpiryUpdate = opts.now
        ? { expiresInSeconds: 0 }
        : opts.at !== undefined
          ? { expiresAt: opts.at }
          : { expiresInSeconds: opts.in ?? 0 };
      // Shape only: the workflow checks the time against its own clock.
      try {
        parseShareExpiryUpdate(update);
      } catch (err) {
        if (err instanceof InvalidInputError)
          throw new InvalidInputError(
            err.issues.map((i) => ({
              ...i,
              field:
                ({ expiresAt: '--at', expiresInSeconds: '--in' } as Record<string, string>)[i.field] ??
                i.field,
            })),
          );
        throw err;
      }
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        const { expiresAt } = await client.setShareExpiry(id, update);
        emit(output, { workflowId: id, expiresAt }, () => `share ${id} now ends at ${expiresAt}`);
        return 0;
      });
    });
}

/**
 * A share result read from `--record <file>` (the JSON `image share --output json` printed). It is
 * only compared with the share run's own record in Temporal: any difference refuses the unshare.
 */
function readShareRecord(file: string, id: string, deleteReencryptedCopy: boolean): ShareRecord {
  let record: unknown;
  try {
    record = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(
      `--record: cannot read '${file}' as JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const r = record as Partial<ShareRecord> | null;
  const share = {
    image: r?.image,
    sharedImageId: r?.sharedImageId,
    added: r?.added,
    ...(r?.reencryptedCopy ? { reencryptedCopy: r.reencryptedCopy } : {}),
  };
  const issues = unshareImageIssues({
    share,
    shareWorkflowId: id,
    ...(deleteReencryptedCopy ? { deleteReencryptedCopy } : {}),
  });
  if (issues.length)
    throw new InvalidInputError(
      issues.map((i) => ({
        ...i,
        field: i.field === 'shareWorkflowId' ? UNSHARE_ID : `--record ${i.field.replace(/^share\./, '')}`,
      })),
    );
  return share as ShareRecord;
}

const UNSHARE_ID = '<share-workflow-id>';

async function unshare(
  ctx: CliContext,
  client: AmiflowClient,
  id: string,
  expected: ShareRecord | undefined,
  deleteReencryptedCopy: boolean,
  output: 'json' | 'text',
): Promise<number> {
  const status = (await client.handle(id).describe()).status.name;
  if (status === 'RUNNING') {
    // A time-limited share still running: end it now; it withdraws what it added itself.
    const { expiresAt } = await client.setShareExpiry(id, { expiresInSeconds: 0 });
    console.error(forTerminal(`share ${id} ends now (${expiresAt}); it withdraws what it added`));
    const result = await client.result<ShareImageResult>(id);
    await emitCompleted(ctx, client, id, output, result, () => formatShareResult(result));
    return 0;
  }
  const share = await client.result<ShareImageResult>(id);
  if (share.withdrawnAt) {
    emit(output, share, () => `share ${id} was withdrawn already, at ${share.withdrawnAt ?? '?'}`);
    return 0;
  }
  // The worker reads what the run added from the run's own result; `expected` is only compared.
  const started = await client.startUnshareImage(id, {
    deleteReencryptedCopy,
    ...(expected ? { expected } : {}),
  });
  console.error(forTerminal(`started ${started.workflowId} (run ${started.runId})`));
  const result = await client.result<UnshareImageResult>(started.workflowId);
  await emitCompleted(ctx, client, started.workflowId, output, result, () => formatUnshareResult(result));
  return 0;
}

function registerUnshare(image: Command, ctx: CliContext): void {
  image
    .command('unshare')
    .description(
      "withdraw what a share run added, as the run's own record in Temporal names it (ends a running time-limited share now)",
    )
    .argument('<share-workflow-id>', 'the share run whose additions are withdrawn')
    .option(
      '--record <file>',
      "a share's JSON result you kept: only compared with the run's own record (any difference refuses)",
    )
    .option('--delete-reencrypted-copy', 'also delete the re-encrypted copy the share made')
    .action(async (id: string, opts: { record?: string; deleteReencryptedCopy?: boolean }, cmd: Command) => {
      const del = opts.deleteReencryptedCopy === true;
      const issues = unshareImageIssues({ shareWorkflowId: id });
      if (issues.length) throw new InvalidInputError(issues.map((i) => ({ ...i, field: UNSHARE_ID })));
      const record = opts.record !== undefined ? readShareRecord(opts.record, id, del) : undefined;
      const output = outputOf(cmd);
      await withClient(ctx, async (client) => {
        return unshare(ctx, client, id, record, del, output);
      });
    });
}

function registerCopy(image: Command, ctx: CliContext): void {
  addFlags(
    image.command('copy').description('copy an image to regions and accounts (optionally re-encrypted)'),
    COPY_FLAGS,
  ).action(async (opts: Opts, cmd: Command) => {
    const raw = inputFrom(COPY_FLAGS, opts);
    const to = (raw.destinations as string[] | undefined) ?? [];
    const input = {
      ...raw,
      destinations: to.map((d, i) => parseDestination(d, i + 1)),
    } as unknown as CopyImageInput;
    refuse(COPY_FLAGS, [...copyImageIssues(input), ...followIssues(opts)]);
    await startAndFollow<CopyImageResult>(ctx, cmd, opts, {
      start: (client, options) => client.startCopyImage(input, options),
      format: formatCopyResult,
      exitCode: (result) => (result === undefined || result.outcome === 'complete' ? 0 : 1),
    });
  });
}

export function registerImage(program: Command, ctx: CliContext): void {
  const image = program.command('image').description('make, share, copy and withdraw images');
  registerCreate(image, ctx);
  registerShare(image, ctx);
  registerShareExpiry(image, ctx);
  registerUnshare(image, ctx);
  registerCopy(image, ctx);
  registerRollout(image, ctx);
}
