/**
 * imageFromInstance: image an instance (stop, reboot, no-reboot or app-consistent), tag it, start it again.
 */
import { z } from 'zod';
import type { CommandStatus, Consistency, ConsistencyMode } from './common';
import { CONSISTENCY_MODES } from './common';
import { accountId, imageName, instanceId, oneOf, region, seconds, userTags } from './fields';
import type { Report } from './issues';
import { show, strictObject } from './issues';

export const imageFromInstanceTimeoutsSchema = strictObject({
  /** Longest wait for the instance to stop, or to run again. Default 900 s. */
  instanceStateSeconds: seconds(30, 24 * 3600).optional(),
  /** Longest wait for the image to become `available`. Default 4 h (large volumes take hours). */
  imageAvailableSeconds: seconds(60, 7 * 24 * 3600).optional(),
});
export type ImageFromInstanceTimeouts = z.infer<typeof imageFromInstanceTimeoutsSchema>;

/** Bounds of the app-consistent mode, named once: the schema, the CLI help and the docs use them. */
export const APP_CONSISTENT_LIMITS = {
  /** The on-instance watchdog thaws after this long, whatever happens to the worker. */
  maxFreezeSeconds: { min: 5, max: 300, default: 30 },
  /** Longest wait for the pre step (quiesce) to end on the instance. */
  preTimeoutSeconds: { min: 10, max: 900, default: 120 },
  /** Longest wait for the post step (thaw). */
  postTimeoutSeconds: { min: 10, max: 900, default: 120 },
} as const;

/** `fail` (default): the run fails and nothing is imaged; `crash-consistent`: image anyway, and say so. */
export const PRE_FAILURE_POLICIES = ['fail', 'crash-consistent'] as const;
export type PreFailurePolicy = (typeof PRE_FAILURE_POLICIES)[number];

export const QUIESCE_KINDS = ['fsfreeze', 'script', 'document'] as const;

const PATH_MESSAGE =
  'must be an absolute mount point of letters, digits and / . _ - only (it is written into a shell script)';
/** An absolute path with no shell metacharacters: it is quoted into the freeze script as is. */
const mountPoint = z
  .string({ error: PATH_MESSAGE })
  .regex(/^\/[A-Za-z0-9/._-]{0,254}$/, { error: (iss) => `${show(iss.input)} ${PATH_MESSAGE}` })
  .refine((p) => !p.split('/').includes('..'), { error: 'must not contain ..' });

const documentName = z
  .string({ error: 'must be an SSM document name or ARN' })
  .regex(/^(arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:document\/)?[a-zA-Z0-9_.\-:/]{3,128}$/, {
    error: (iss) => `${show(iss.input)} is not an SSM document name (3-128 of a-z A-Z 0-9 _ . - :) or ARN`,
  });
const documentParameters = z.record(
  z.string().regex(/^[a-zA-Z0-9_]{1,64}$/, { error: 'must be an SSM parameter name (a-z A-Z 0-9 _)' }),
  z.array(z.string().max(4096, { error: 'must be at most 4096 characters' }), {
    error: 'must be a list of strings',
  }),
  { error: 'must be an object of SSM parameter name to list of strings' },
);
const script = z
  .string({ error: 'must be a shell script (1 to 16000 characters)' })
  .min(1, { error: 'must be a shell script (1 to 16000 characters)' })
  .max(16_000, { error: 'must be a shell script (1 to 16000 characters)' });

/**
 * How the instance is quiesced:
 * - `fsfreeze` (default): `sync` and `fsfreeze -f` of the instance's EBS data file systems (or the
 *   listed mount points); the root file system only with `freezeRoot: true`, as freezing it can stall
 *   the SSM agent and everything logging to it;
 * - `script`: the user's own pre and post shell scripts (e.g. a database's flush-and-lock / unlock);
 * - `document`: named SSM documents for pre and post; amiflow passes the maximum freeze in the pre
 *   document's parameter `maxFreezeParameter`, so the document can arm its own watchdog.
 */
export const quiesceSchema = z.discriminatedUnion(
  'kind',
  [
    strictObject({
      kind: z.literal('fsfreeze'),
      mountPoints: z
        .array(mountPoint, { error: 'must be a list of mount points' })
        .min(1, {
          error: 'must list at least one mount point (omit it to freeze every EBS data file system)',
        })
        .max(16, { error: 'must list at most 16 mount points' })
        .refine((l) => new Set(l).size === l.length, { error: 'must not list a mount point twice' })
        .optional(),
      /** Freeze `/` too. Off by default: a frozen root can stall the SSM agent that thaws it. */
      freezeRoot: z.boolean({ error: 'must be true or false' }).optional(),
    }),
    strictObject({ kind: z.literal('script'), pre: script, post: script }),
    strictObject({
      kind: z.literal('document'),
      preDocument: documentName,
      postDocument: documentName,
      preParameters: documentParameters.optional(),
      postParameters: documentParameters.optional(),
      /** The pre document's parameter that receives the maximum freeze in seconds (its watchdog). */
      maxFreezeParameter: z
        .string({
          error:
            'must name the pre document parameter that receives the maximum freeze in seconds: its watchdog must thaw by itself',
        })
        .regex(/^[a-zA-Z0-9_]{1,64}$/, { error: 'must be an SSM parameter name (a-z A-Z 0-9 _)' }),
    }),
  ],
  {
    error: (iss) =>
      iss.code === 'invalid_union'
        ? `must be one of ${QUIESCE_KINDS.join(', ')}`
        : 'must be an object with a kind (fsfreeze, script or document)',
  },
);
export type QuiesceSpec = z.infer<typeof quiesceSchema>;

const limit = APP_CONSISTENT_LIMITS;
export const appConsistentOptionsSchema = strictObject({
  quiesce: quiesceSchema.optional(),
  maxFreezeSeconds: seconds(limit.maxFreezeSeconds.min, limit.maxFreezeSeconds.max).optional(),
  onPreFailure: z
    .enum(PRE_FAILURE_POLICIES, {
      error: (iss) =>
        `${show(iss.input)} is not a pre-step failure policy; use fail (default) or crash-consistent`,
    })
    .optional(),
  preTimeoutSeconds: seconds(limit.preTimeoutSeconds.min, limit.preTimeoutSeconds.max).optional(),
  postTimeoutSeconds: seconds(limit.postTimeoutSeconds.min, limit.postTimeoutSeconds.max).optional(),
}).superRefine((o, ctx) => {
  const q = o.quiesce;
  if (q?.kind === 'fsfreeze' && q.mountPoints?.includes('/') && q.freezeRoot !== true)
    ctx.addIssue({
      code: 'custom',
      path: ['quiesce', 'mountPoints'],
      message:
        "lists the root file system '/': freezing it can stall the SSM agent that thaws it; set quiesce.freezeRoot: true to mean it",
    });
});
export type AppConsistentOptions = z.infer<typeof appConsistentOptionsSchema>;

/** The rule of every input with a mode and app-consistent options: the options go with that mode only. */
export function appConsistentRule(input: Record<string, unknown>, report: Report): void {
  if (input.appConsistent !== undefined && input.mode !== 'app-consistent')
    report(
      ['appConsistent'],
      `applies to mode app-consistent only, not ${show(input.mode)}; drop it or set mode: app-consistent`,
    );
}

export const imageFromInstanceInputSchema = strictObject({
  region,
  /** 12-digit account id; omitted means the worker's own credentials. */
  accountId: accountId.optional(),
  instanceId,
  imageName,
  description: z
    .string({ error: 'must be a string of at most 255 characters' })
    .max(255, { error: 'must be a string of at most 255 characters' })
    .optional(),
  /** Tags for the image and its snapshots. */
  tags: userTags.optional(),
  mode: oneOf(CONSISTENCY_MODES, 'a consistency mode'),
  timeouts: imageFromInstanceTimeoutsSchema.optional(),
  /** Options of mode `app-consistent` (every one has a default); refused with any other mode. */
  appConsistent: appConsistentOptionsSchema.optional(),
}).superRefine((i, ctx) => {
  if (i.appConsistent !== undefined && i.mode !== 'app-consistent')
    ctx.addIssue({
      code: 'custom',
      path: ['appConsistent'],
      message: `applies to mode app-consistent only, not ${show(i.mode)}; drop it or set mode: app-consistent`,
    });
});
export type ImageFromInstanceInput = z.infer<typeof imageFromInstanceInputSchema>;

export interface ImageFromInstanceResult {
  imageId: string;
  imageName: string;
  region: string;
  accountId?: string;
  snapshotIds: string[];
  instanceId: string;
  mode: ConsistencyMode;
  consistency: Consistency;
  /** A sentence for people: what the consistency mode means for this image. */
  consistencyNote: string;
  /** The state the instance was found in, and the one it was left in (always the same). */
  instanceInitialState: 'running' | 'stopped';
  instanceFinalState: 'running' | 'stopped';
  /** Seconds the instance was not running because of this run (stop mode; 0 otherwise, reboot excluded). */
  downtimeSeconds: number;
  /** Mode app-consistent: what the pre and post steps did, and how long the instance was frozen. */
  appConsistency?: AppConsistencyReport;
  startedAt: string;
  finishedAt: string;
}

export const DEFAULT_TIMEOUTS: Required<ImageFromInstanceTimeouts> = {
  instanceStateSeconds: 900,
  imageAvailableSeconds: 4 * 3600,
};

/** How an SSM command on the instance ended (activities/run-command.ts), or that it never ran. */
export type StepCommandStatus = CommandStatus | 'not sent' | 'error';

export interface AppConsistencyStep {
  status: StepCommandStatus;
  commandId?: string;
  exitCode?: number;
  /** Why it did not succeed: the script's last stderr lines, or the failure of the step itself. */
  error?: string;
}

export interface AppConsistencyReport {
  quiesce: (typeof QUIESCE_KINDS)[number];
  /** The limit the on-instance watchdog was armed with. */
  maxFreezeSeconds: number;
  onPreFailure: PreFailurePolicy;
  pre: AppConsistencyStep;
  /** The thaw: `thawedBy` says whether the post step or the watchdog ended the freeze. */
  post: AppConsistencyStep & { thawedBy?: 'post step' | 'watchdog' };
  /** Mount points the pre step froze, as the script reported them (fsfreeze). */
  frozen?: string[];
  /**
   * Seconds from the freeze to the thaw. `instance`: from the scripts' own timestamps (the
   * instance's clock, both ends); `worker`: the pre step's end to the post step's end as the worker
   * saw them, an upper bound, when the scripts printed no timestamps (a document that does not).
   */
  freezeSeconds?: number;
  freezeMeasuredBy?: 'instance' | 'worker';
  /** True when the pre step failed and the run imaged crash-consistent as `onPreFailure` allowed. */
  fellBack: boolean;
}
