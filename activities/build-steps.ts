/**
 * A recipe step as the SSM command that runs it. Shell and PowerShell steps run their commands
 * (from a file written on the instance, so a script's shebang and exit codes are its own), with
 * the step's environment and working directory; a file step writes the exact bytes (base64, so no
 * quoting or trailing newline changes them) with its mode and owner; a reboot is SSM's own reboot
 * exit code (194 on Linux, 3010 on Windows): the agent reboots the instance and reports the
 * command's success once it is back, so "the agent is back" is SSM's answer, not a guess from a
 * PingStatus that stays Online for minutes after the instance went down; a document step runs the
 * named SSM document with its parameters.
 */
import { createHash } from 'node:crypto';
import type { AwsTarget } from '../contracts';
import type { BuildImageInput, RecipeStep } from '../contracts/recipe';
import { DEFAULT_STEP_TIMEOUT_SECONDS } from '../contracts/recipe';
import type { ActivityDeps } from './deps';
import type { SendCommandInput, SentCommand } from './run-command';
import { runCommandActivities } from './run-command';

export type Platform = 'linux' | 'windows';

export interface StepCommand {
  documentName: string;
  parameters: Record<string, string[]>;
  timeoutSeconds: number;
}

const shellQuote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
const psQuote = (v: string) => `'${v.replace(/'/g, "''")}'`;
const b64 = (v: string) => Buffer.from(v, 'utf8').toString('base64');

/** The commands that run `script` as a file: its shebang (or bash) and its own exit code. */
function shellScript(step: Extract<RecipeStep, { kind: 'shell' }>): string[] {
  return [
    'set -e',
    ...Object.entries(step.env ?? {}).map(([k, v]) => `export ${k}=${shellQuote(v)}`),
    'f=$(mktemp /tmp/amiflow-step-XXXXXX)',
    `echo ${shellQuote(b64(step.commands))} | base64 -d > "$f"`,
    'chmod 700 "$f"',
    'set +e',
    // A script without a shebang runs under bash, as a script file would be expected to.
    `if head -c2 "$f" | grep -q '^#!'; then "$f"; else bash "$f"; fi; rc=$?`,
    'rm -f "$f"',
    'exit $rc',
  ];
}

function powershellScript(step: Extract<RecipeStep, { kind: 'powershell' }>): string[] {
  return [
    '$ErrorActionPreference = "Stop"',
    ...Object.entries(step.env ?? {}).map(([k, v]) => `$env:${k} = ${psQuote(v)}`),
    '$f = Join-Path $env:TEMP ("amiflow-step-" + [guid]::NewGuid() + ".ps1")',
    `[IO.File]::WriteAllBytes($f, [Convert]::FromBase64String(${psQuote(b64(step.commands))}))`,
    '& $f; $rc = $LASTEXITCODE',
    'Remove-Item -Force $f',
    'exit $rc',
  ];
}

function fileScript(step: Extract<RecipeStep, { kind: 'file' }>, platform: Platform): string[] {
  if (platform === 'windows')
    return [
      '$ErrorActionPreference = "Stop"',
      `New-Item -ItemType Directory -Force -Path (Split-Path ${psQuote(step.path)}) | Out-Null`,
      `[IO.File]::WriteAllBytes(${psQuote(step.path)}, [Convert]::FromBase64String(${psQuote(b64(step.content))}))`,
    ];
  const p = shellQuote(step.path);
  return [
    'set -e',
    `mkdir -p "$(dirname ${p})"`,
    `echo ${shellQuote(b64(step.content))} | base64 -d > ${p}`,
    ...(step.mode ? [`chmod ${step.mode} ${p}`] : []),
    ...(step.owner ? [`chown ${step.owner} ${p}`] : []),
  ];
}

/** The SSM command for `step` on a builder of `platform`. */
export function stepCommand(step: RecipeStep, platform: Platform): StepCommand {
  const timeoutSeconds = step.timeoutSeconds ?? DEFAULT_STEP_TIMEOUT_SECONDS;
  const script = platform === 'windows' ? 'AWS-RunPowerShellScript' : 'AWS-RunShellScript';
  const run = (commands: string[], workingDirectory?: string): StepCommand => ({
    documentName: script,
    parameters: {
      commands,
      executionTimeout: [String(timeoutSeconds)],
      ...(workingDirectory ? { workingDirectory: [workingDirectory] } : {}),
    },
    timeoutSeconds,
  });
  switch (step.kind) {
    case 'shell':
      return run(shellScript(step), step.workingDirectory);
    case 'powershell':
      return run(powershellScript(step), step.workingDirectory);
    case 'file':
      return run(fileScript(step, platform));
    case 'reboot':
      return run([platform === 'windows' ? 'exit 3010' : 'exit 194']);
    case 'document':
      return { documentName: step.document, parameters: step.parameters ?? {}, timeoutSeconds };
  }
}

export interface SendBuildStepInput {
  target: AwsTarget;
  instanceId: string;
  step: RecipeStep;
  platform: Platform;
  /** Unique per run, phase and step, the same for every attempt: SSM's Comment carries it. */
  idempotencyKey: string;
  logs?: BuildImageInput['logs'];
}

/**
 * The recipe's content hash: sha256 of the resolved parent image and everything that decides the
 * image's content (steps, root volume, platform, output name, description and tags). Instance
 * types, subnets and timeouts do not change what is built, so they are left out.
 */
export function recipeContentHash(parentImageId: string, input: BuildImageInput): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : typeof v === 'object' && v !== null
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  const content = {
    v: 1,
    parentImageId,
    build: input.build,
    validate: input.validate ?? [],
    test: input.test ?? [],
    rootVolume: input.builder.rootVolume ?? {},
    platform: input.builder.platform ?? 'linux',
    output: input.output,
  };
  return createHash('sha256')
    .update(JSON.stringify(canonical(content)))
    .digest('hex');
}

export function buildStepActivities(deps: ActivityDeps) {
  const ssm = runCommandActivities(deps);
  return {
    /** Sends one step's command, once per idempotency key (run-command's sendCommand). */
    async sendBuildStep(input: SendBuildStepInput): Promise<SentCommand> {
      const cmd = stepCommand(input.step, input.platform);
      const send: SendCommandInput = {
        target: input.target,
        instanceId: input.instanceId,
        documentName: cmd.documentName,
        parameters: cmd.parameters,
        timeoutSeconds: cmd.timeoutSeconds,
        idempotencyKey: input.idempotencyKey,
        ...(input.logs?.s3Bucket
          ? {
              outputS3: {
                bucket: input.logs.s3Bucket,
                ...(input.logs.s3KeyPrefix ? { keyPrefix: input.logs.s3KeyPrefix } : {}),
              },
            }
          : {}),
        ...(input.logs?.cloudWatchLogGroup ? { cloudWatchLogGroup: input.logs.cloudWatchLogGroup } : {}),
      };
      return ssm.sendCommand(send);
    },
  };
}
