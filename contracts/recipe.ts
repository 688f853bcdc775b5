/**
 * buildImage: build an AMI from a recipe (a parent image, build/validate/test steps run over SSM
 * Run Command on a builder instance, and how to name and tag the result), as EC2 Image Builder and
 * Packer do, but durable: every step resumes where it was, the builder is never leaked, and a
 * build whose inputs did not change returns the image it made before.
 *
 * Two forms: the recipe FILE (YAML a team keeps in git: script files by path, reusable components
 * with parameters; client/recipe.ts loads it) and the resolved RECIPE the workflow takes (every
 * script and file sent as content, components expanded into plain steps). Both are declared here.
 */
import { defineSignal } from '@temporalio/workflow';
import { z } from 'zod';
import type { CommandStatus } from './common';
import { TAG } from './common';
import { accountId, oneOf, region, seconds, userTags } from './fields';
import { show, strictObject } from './issues';

export const RECIPE_API_VERSION = 'amiflow/v1';

/** Tags a built image carries (besides the usual run tags): kept with every other tag key, in TAG. */
export const RECIPE_TAG = TAG.recipeBuild;

export const BuildFailure = {
  ParentImageNotFound: 'ParentImageNotFound',
  BuildStepFailed: 'BuildStepFailed',
  SsmAgentOffline: 'SsmAgentOffline',
  NoInstanceCapacity: 'NoInstanceCapacity',
} as const;

export const STEP_KINDS = ['shell', 'powershell', 'file', 'reboot', 'document'] as const;
export type StepKind = (typeof STEP_KINDS)[number];
/** What a recipe file may also write: a component reference, expanded when the file is loaded. */
export const FILE_STEP_KINDS = [...STEP_KINDS, 'component'] as const;
export const PHASES = ['build', 'validate', 'test'] as const;
export type Phase = (typeof PHASES)[number];

/** SSM's own bounds for a Run Command execution timeout (AWS-RunShellScript: 1 s to 48 h). */
export const STEP_TIMEOUT_BOUNDS = { min: 10, max: 48 * 3600 } as const;
export const DEFAULT_STEP_TIMEOUT_SECONDS = 3600;
/** SendCommand takes at most 64 KB of parameters; content beyond this belongs in S3, not a recipe. */
export const MAX_STEP_CONTENT = 48 * 1024;

const STEP_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._/:()-]{0,99}$/;
const INSTANCE_TYPE_RE = /^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$/;
const SUBNET_RE = /^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/;
const SG_RE = /^sg-([0-9a-f]{8}|[0-9a-f]{17})$/;
const PROFILE_RE = /^[\w+=,.@-]{1,128}$/;
const DOCUMENT_RE = /^[A-Za-z0-9_.:/-]{3,128}$/;
const FILE_MODE_RE = /^0?[0-7]{3}$/;
const OWNER_RE = /^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SSM_PARAM_RE = /^\/[A-Za-z0-9_.\-/]+$/;
const IMAGE_ID_RE = /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/;
const ACCOUNT_OR_ALIAS_RE = /^(\d{12}|self|amazon|aws-marketplace)$/;
export const ARCHITECTURES = ['x86_64', 'arm64', 'i386', 'x86_64_mac', 'arm64_mac'] as const;
export const VOLUME_TYPES = ['gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1', 'standard'] as const;
/** Placeholders an output image name may hold. */
export const NAME_PLACEHOLDERS = ['recipe', 'hash', 'date', 'time', 'parent'] as const;

function matching(re: RegExp, what: string) {
  return z
    .string({ error: (iss) => `${show(iss.input)} is not ${what}` })
    .regex(re, { error: (iss) => `${show(iss.input)} is not ${what}` });
}

const stepName = matching(STEP_NAME_RE, 'a step name (1 to 100 letters, digits and . _ / : ( ) - or spaces)');
const stepTimeout = seconds(STEP_TIMEOUT_BOUNDS.min, STEP_TIMEOUT_BOUNDS.max);
const content = (what: string) =>
  z
    .string({ error: `must be the ${what} as a string` })
    .min(1, { error: `must not be empty: give the ${what}` })
    .max(MAX_STEP_CONTENT, {
      error: (iss) =>
        `is ${String((iss.input as string).length)} characters; at most ${MAX_STEP_CONTENT} fit in one SSM command (put larger payloads in S3 and fetch them in a step)`,
    });
const env = z
  .record(
    z.string(),
    z.string({ error: (iss) => `environment values must be strings, got ${show(iss.input)}` }),
    {
      error: 'must be a map of variable name → string value',
    },
  )
  .superRefine((vars, ctx) => {
    for (const key of Object.keys(vars))
      if (!ENV_NAME_RE.test(key))
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${show(key)} is not an environment variable name`,
        });
  });
const workingDirectory = z
  .string({ error: 'must be an absolute path' })
  .refine((v) => v.startsWith('/') || /^[A-Za-z]:\\/.test(v), {
    error: (iss) => `${show(iss.input)} is not an absolute path (/opt/app or C:\\app)`,
  });
const documentParameters = z.record(
  z.string(),
  z.array(z.string({ error: 'document parameter values must be strings' }), {
    error: 'document parameters are lists of strings (SSM takes every value as a list)',
  }),
  { error: 'must be a map of parameter name → list of strings' },
);

/** Fields every step has. */
const common = { name: stepName, timeoutSeconds: stepTimeout.optional() };
const commandFields = { ...common, workingDirectory: workingDirectory.optional(), env: env.optional() };
const fileFields = {
  ...common,
  path: workingDirectory,
  mode: matching(FILE_MODE_RE, "a file mode (octal, e.g. '0644'; quote it in YAML)").optional(),
  owner: matching(OWNER_RE, 'an owner (user or user:group)').optional(),
};
const documentFields = {
  ...common,
  document: matching(DOCUMENT_RE, 'an SSM document name (e.g. AWS-RunPatchBaseline)'),
  parameters: documentParameters.optional(),
};

/** The refusal of a step whose `kind` is missing or not one of `kinds`. */
const kindError = (kinds: readonly string[]) => (iss: { input?: unknown }) => {
  const kind =
    typeof iss.input === 'object' && iss.input !== null ? (iss.input as { kind?: unknown }).kind : undefined;
  return kind === undefined
    ? `needs a kind: one of ${kinds.join(', ')}`
    : `${show(kind)} is not a step kind; use one of ${kinds.join(', ')}`;
};
const stepKindError = kindError(STEP_KINDS);

/** A resolved step, as the workflow runs it: every script and file is content. */
export const recipeStepSchema = z.discriminatedUnion(
  'kind',
  [
    strictObject({ kind: z.literal('shell'), ...commandFields, commands: content('commands') }),
    strictObject({ kind: z.literal('powershell'), ...commandFields, commands: content('commands') }),
    strictObject({
      kind: z.literal('file'),
      ...fileFields,
      content: z.string({ error: 'must be the file content as a string' }).max(MAX_STEP_CONTENT),
    }),
    strictObject({ kind: z.literal('reboot'), ...common }),
    strictObject({ kind: z.literal('document'), ...documentFields }),
  ],
  { error: stepKindError },
);
export type RecipeStep = z.infer<typeof recipeStepSchema>;

export const parentSchema = z
  .strictObject(
    {
      imageId: matching(IMAGE_ID_RE, 'an AMI id (ami- followed by 8 or 17 hex digits)').optional(),
      ssmParameter: matching(
        SSM_PARAM_RE,
        'an SSM parameter name (e.g. /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64)',
      ).optional(),
      filter: strictObject({
        owners: z
          .array(
            matching(ACCOUNT_OR_ALIAS_RE, 'an owner (a 12-digit account, self, amazon or aws-marketplace)'),
          )
          .min(1, { error: 'name at least one owner' }),
        name: z
          .string({ error: "must be an image name pattern (e.g. 'al2023-ami-2023.*-x86_64')" })
          .min(1)
          .max(128),
        architecture: oneOf(ARCHITECTURES, 'an architecture').optional(),
      }).optional(),
    },
    {
      error: (iss) =>
        iss.code === 'unrecognized_keys'
          ? 'is not a known field (known: imageId, ssmParameter, filter)'
          : 'must be a map with one of imageId, ssmParameter, filter',
    },
  )
  .superRefine((p, ctx) => {
    const given = (['imageId', 'ssmParameter', 'filter'] as const).filter((k) => p[k] !== undefined);
    if (given.length !== 1)
      ctx.addIssue({
        code: 'custom',
        message:
          given.length === 0
            ? 'needs one of imageId, ssmParameter or filter'
            : `gives ${given.join(' and ')}; give exactly one of imageId, ssmParameter or filter`,
      });
  });
export type ParentSpec = z.infer<typeof parentSchema>;

export const builderSchema = strictObject({
  /** Tried in order: the next one when EC2 has no capacity for (or does not offer) the previous. */
  instanceTypes: z
    .array(matching(INSTANCE_TYPE_RE, 'an instance type (e.g. t3.small)'), {
      error: 'must be a list of instance types',
    })
    .min(1, { error: 'name at least one instance type' })
    .max(5, { error: 'at most 5 instance types' }),
  subnetId: matching(SUBNET_RE, 'a subnet id (subnet-…)').optional(),
  securityGroupIds: z.array(matching(SG_RE, 'a security group id (sg-…)')).max(5).optional(),
  /** The builder's instance profile name: it must allow SSM (AmazonSSMManagedInstanceCore). */
  instanceProfile: matching(PROFILE_RE, 'an instance profile name').optional(),
  /** No public address unless asked: a builder reaches SSM through NAT or VPC endpoints. */
  associatePublicIp: z.boolean({ error: 'must be true or false' }).optional(),
  rootVolume: strictObject({
    sizeGiB: z
      .number({ error: 'must be a number of GiB from 1 to 16384' })
      .int()
      .min(1)
      .max(16384)
      .optional(),
    type: oneOf(VOLUME_TYPES, 'a volume type').optional(),
    encrypted: z.boolean({ error: 'must be true or false' }).optional(),
    kmsKeyId: z.string().min(1).max(2048).optional(),
  }).optional(),
  tags: userTags.optional(),
  /** Keep a failed build's builder for debugging, for at most `keepBuilderSeconds` (then terminated anyway). */
  keepBuilderOnFailure: z.boolean({ error: 'must be true or false' }).optional(),
  keepBuilderSeconds: seconds(300, 7 * 24 * 3600).optional(),
  platform: z
    .enum(['linux', 'windows'], {
      error: (iss) => `${show(iss.input)} is not a platform; use linux or windows`,
    })
    .optional(),
});
export type BuilderSpec = z.infer<typeof builderSchema>;

export const outputSchema = strictObject({
  /** Placeholders: {{recipe}}, {{hash}} (12 hex), {{date}} (YYYYMMDD), {{time}} (HHMMSS), {{parent}}. */
  imageName: z
    .string({ error: 'must be an image name template, e.g. web-{{date}}-{{hash}}' })
    .superRefine((v, ctx) => {
      for (const [, p] of v.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g))
        if (!(NAME_PLACEHOLDERS as readonly string[]).includes(p ?? ''))
          ctx.addIssue({
            code: 'custom',
            message: `${show(`{{${p}}}`)} is not a placeholder; use ${NAME_PLACEHOLDERS.map((n) => `{{${n}}}`).join(', ')}`,
          });
      if (!/\{\{\s*(hash|date|time)\s*\}\}/.test(v))
        ctx.addIssue({
          code: 'custom',
          message:
            'must hold {{hash}}, {{date}} or {{time}}: image names are unique per region, and each build makes a new one',
        });
    }),
  description: z.string().max(255, { error: 'must be at most 255 characters' }).optional(),
  tags: userTags.optional(),
});

const steps = (phase: Phase) =>
  z
    .array(recipeStepSchema, { error: `must be a list of ${phase} steps` })
    .max(100, { error: 'at most 100 steps per phase' });

export const recipeTimeoutsSchema = strictObject({
  /** The builder running and its SSM agent online. Default 900 s. */
  instanceReadySeconds: seconds(60, 3 * 3600).optional(),
  /** The image available. Default 4 h. */
  imageAvailableSeconds: seconds(60, 7 * 24 * 3600).optional(),
});

/** Where each step's full output goes besides the tail kept in the result (SSM writes it). */
export const logsSchema = strictObject({
  s3Bucket: matching(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name').optional(),
  s3KeyPrefix: z.string().max(500).optional(),
  cloudWatchLogGroup: matching(/^[.\-_/#A-Za-z0-9]{1,512}$/, 'a CloudWatch Logs group name').optional(),
});

/** The workflow's input: a resolved recipe and where to build it. */
export const buildImageInputSchema = strictObject({
  region,
  accountId: accountId.optional(),
  recipe: matching(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a recipe name (lowercase letters, digits and -, up to 63)'),
  parent: parentSchema,
  builder: builderSchema,
  build: steps('build'),
  validate: steps('validate').optional(),
  test: steps('test').optional(),
  output: outputSchema,
  logs: logsSchema.optional(),
  /** Build even when an image of the same content hash exists. */
  force: z.boolean({ error: 'must be true or false' }).optional(),
  timeouts: recipeTimeoutsSchema.optional(),
}).superRefine((input, ctx) => {
  // Names are how a failure, the progress record and SSM's Comment name a step: unique in the run.
  const seen = new Map<string, string>();
  for (const phase of PHASES)
    for (const [i, step] of (input[phase] ?? []).entries()) {
      const key = `${phase}/${step.name}`;
      if (seen.has(key))
        ctx.addIssue({
          code: 'custom',
          path: [phase, i, 'name'],
          message: `${show(step.name)} is used by another ${phase} step (${seen.get(key)}); step names are unique per phase`,
        });
      else seen.set(key, `${phase}[${i}]`);
      if (step.kind === 'powershell' && input.builder.platform !== 'windows')
        ctx.addIssue({
          code: 'custom',
          path: [phase, i, 'kind'],
          message: 'powershell steps need builder.platform: windows',
        });
      if (step.kind === 'shell' && input.builder.platform === 'windows')
        ctx.addIssue({
          code: 'custom',
          path: [phase, i, 'kind'],
          message: 'shell steps need a linux builder; use powershell on windows',
        });
    }
  if (input.build.length === 0)
    ctx.addIssue({ code: 'custom', path: ['build'], message: 'needs at least one build step' });
});
export type BuildImageInput = z.infer<typeof buildImageInputSchema>;

// ---------------------------------------------------------------------------------------------
// The recipe file: what a team writes (scripts by path, components with parameters)
// ---------------------------------------------------------------------------------------------

const fileStepError = kindError(FILE_STEP_KINDS);
const scriptOrInline = {
  commands: content('commands').optional(),
  /** A script file, relative to the recipe file; sent as content. */
  script: z.string({ error: 'must be a path to a script file' }).min(1).optional(),
};
export const recipeFileStepSchema = z.discriminatedUnion(
  'kind',
  [
    strictObject({ kind: z.literal('shell'), ...commandFields, ...scriptOrInline }),
    strictObject({ kind: z.literal('powershell'), ...commandFields, ...scriptOrInline }),
    strictObject({
      kind: z.literal('file'),
      ...fileFields,
      content: z.string({ error: 'must be the file content as a string' }).optional(),
      /** A file next to the recipe, placed as content. */
      source: z.string({ error: 'must be a path to a file' }).min(1).optional(),
    }),
    strictObject({ kind: z.literal('reboot'), ...common }),
    strictObject({ kind: z.literal('document'), ...documentFields }),
    strictObject({
      kind: z.literal('component'),
      name: stepName.optional(),
      component: matching(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a component name'),
      with: z
        .record(
          z.string(),
          z.union([z.string(), z.number(), z.boolean()], {
            error: 'parameter values are strings, numbers or booleans',
          }),
          { error: 'must be a map of parameter → value' },
        )
        .optional(),
    }),
  ],
  { error: fileStepError },
);
export type RecipeFileStep = z.infer<typeof recipeFileStepSchema>;

export const componentSchema = strictObject({
  description: z.string().optional(),
  /** Parameters the steps use as {{ name }}; one without a default must be given by every include. */
  parameters: z
    .record(
      z.string().regex(ENV_NAME_RE, { error: 'parameter names are letters, digits and _' }),
      strictObject({
        default: z.union([z.string(), z.number(), z.boolean()]).optional(),
        description: z.string().optional(),
      }),
      { error: 'must be a map of parameter name → { default, description }' },
    )
    .optional(),
  steps: z
    .array(recipeFileStepSchema, { error: 'must be a list of steps' })
    .min(1, { error: 'needs at least one step' }),
});

export const recipeFileSchema = strictObject({
  apiVersion: z.literal(RECIPE_API_VERSION, { error: `must be ${RECIPE_API_VERSION}` }),
  recipe: buildImageInputSchema.shape.recipe,
  region,
  accountId: accountId.optional(),
  parent: parentSchema,
  builder: builderSchema,
  components: z
    .record(
      z
        .string()
        .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { error: 'component names are lowercase letters, digits and -' }),
      componentSchema,
      { error: 'must be a map of component name → component' },
    )
    .optional(),
  build: z
    .array(recipeFileStepSchema, { error: 'must be a list of build steps' })
    .min(1, { error: 'needs at least one build step' }),
  validate: z.array(recipeFileStepSchema, { error: 'must be a list of validate steps' }).optional(),
  test: z.array(recipeFileStepSchema, { error: 'must be a list of test steps' }).optional(),
  output: outputSchema,
  logs: logsSchema.optional(),
  timeouts: recipeTimeoutsSchema.optional(),
});
export type RecipeFile = z.infer<typeof recipeFileSchema>;

// ---------------------------------------------------------------------------------------------
// Results and progress
// ---------------------------------------------------------------------------------------------

export interface StepOutcome {
  phase: Phase;
  name: string;
  kind: StepKind;
  status: CommandStatus | 'Rebooted';
  commandId?: string;
  exitCode?: number;
  stdoutTail?: string;
  stderrTail?: string;
  seconds: number;
  outputUrl?: string;
}

export interface BuildImageResult {
  recipe: string;
  region: string;
  accountId?: string;
  imageId: string;
  imageName: string;
  /** sha256 of (parent image id, resolved recipe): the image's amiflow:recipe-hash tag. */
  contentHash: string;
  parentImageId: string;
  /** How the parent was found: 'imageId', 'ssm:/aws/…', 'filter: …'. */
  parentSource: string;
  /** true: an available image of the same hash existed, so nothing was built. */
  skipped: boolean;
  builderInstanceId?: string;
  builderInstanceType?: string;
  testInstanceId?: string;
  snapshotIds: string[];
  /**
   * The `imageFromInstance` run that made the image (absent when skipped): the image carries its
   * workflow and run id tags, so whoever takes the image over (a golden run) deletes it by these.
   */
  imageRun?: { workflowId: string; runId: string };
  steps: StepOutcome[];
  startedAt: string;
  finishedAt: string;
}

export const DEFAULT_RECIPE_TIMEOUTS = {
  instanceReadySeconds: 900,
  imageAvailableSeconds: 4 * 3600,
} as const;
export const DEFAULT_KEEP_BUILDER_SECONDS = 4 * 3600;

/** Ends a kept builder's debugging time at once: the run terminates it and ends. */
export const releaseBuilderSignal = defineSignal('releaseBuilder');
