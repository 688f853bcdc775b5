/**
 * The pre (quiesce) and post (thaw) steps of mode `app-consistent`, as SSM commands. Each pre script
 * arms an on-instance watchdog BEFORE it freezes anything: after the maximum freeze the watchdog
 * thaws by itself, so a lost worker, a lost SSM agent or a failed post step can never leave the
 * instance frozen. Every script prints its own timestamps (the instance's clock, ms) so the freeze
 * is measured where it happens; the workflow parses them (workflows/app-consistent.ts):
 *
 *   amiflow-watchdog=<systemd-timer|process> max=<s>   amiflow-frozen=<m1,m2>   amiflow-frozen-at=<ms>
 *   amiflow-watchdog-fired-at=<ms>                      amiflow-thawed-at=<ms>
 *
 * The scripts keep their state in /run (tmpfs: never on a frozen file system, gone after a reboot,
 * when nothing can be frozen anyway), in a directory named by a hash of the run.
 */
import { createHash } from 'node:crypto';
import type { AwsTarget, QuiesceSpec } from '../contracts';
import type { ActivityDeps } from './deps';
import type { SentCommand } from './run-command';
import { runCommandActivities } from './run-command';

export interface QuiesceCommandInput {
  target: AwsTarget;
  instanceId: string;
  quiesce: QuiesceSpec;
  maxFreezeSeconds: number;
  /** Names the run on the instance and in the commands' idempotency keys: `${workflowId}/${runId}`. */
  runKey: string;
  /** Execution timeout of the command on the instance. */
  timeoutSeconds: number;
}

export const SHELL_DOCUMENT = 'AWS-RunShellScript';

/** The run's name on the instance: shell-safe, short, the same for pre, post and watchdog. */
export function runTag(runKey: string): string {
  return createHash('sha256').update(runKey).digest('hex').slice(0, 16);
}

/** A single-quoted shell word (the values here are validated paths, but quoting costs nothing). */
function q(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** The common head: strict-ish bash, the run's state directory, a ms clock. */
function head(tag: string, what: string): string[] {
  return [
    '#!/bin/bash',
    `# amiflow app-consistent ${what} (run ${tag}); see docs/consistency-modes.md`,
    'set -u',
    // /run on the instance; AMIFLOW_FREEZE_STATE only lets the tests run the scripts unprivileged.
    `STATE="\${AMIFLOW_FREEZE_STATE:-/run/amiflow-freeze}/${tag}"`,
    `UNIT=amiflow-thaw-${tag}`,
    'ms() { date +%s%3N; }',
    'mkdir -p "$STATE" || { echo "cannot create $STATE" >&2; exit 70; }',
  ];
}

/**
 * Arms the watchdog: `thawCommand` runs after `max` seconds unless the post step disarmed it first.
 * A systemd transient timer survives the SSM agent's restarts; without systemd, a detached process
 * with no open descriptors (the agent waits for a command's descriptors to close).
 */
function armWatchdog(max: number, thawCommand: string): string[] {
  const body = `if [ ! -f "$STATE/thawed-at" ]; then ${thawCommand}; date +%s%3N > "$STATE/watchdog-fired-at"; fi`;
  return [
    `MAX=${max}`,
    `WATCHDOG=${q(body.replace(/\$STATE/g, '__STATE__'))}`,
    'WATCHDOG="${WATCHDOG//__STATE__/$STATE}"',
    'if command -v systemd-run >/dev/null 2>&1 && systemd-run --quiet --collect --unit "$UNIT" --on-active="${MAX}s" /bin/bash -c "$WATCHDOG" >/dev/null 2>&1; then',
    '  echo "amiflow-watchdog=systemd-timer max=$MAX"',
    'else',
    '  setsid nohup /bin/bash -c "sleep $MAX; $WATCHDOG" </dev/null >/dev/null 2>&1 &',
    '  echo $! > "$STATE/watchdog.pid"',
    '  echo "amiflow-watchdog=process max=$MAX"',
    'fi',
  ];
}

const DISARM = [
  'disarm() {',
  '  systemctl stop "$UNIT.timer" >/dev/null 2>&1 || true',
  '  if [ -f "$STATE/watchdog.pid" ]; then kill "$(cat "$STATE/watchdog.pid")" >/dev/null 2>&1 || true; rm -f "$STATE/watchdog.pid"; fi',
  '}',
];

/** Unfreezes what the pre step listed; thawing a file system that is not frozen is harmless (EINVAL). */
const UNFREEZE_LISTED =
  'if [ -f "$STATE/mounts" ]; then while read -r m; do fsfreeze -u "$m" >/dev/null 2>&1 || true; done < "$STATE/mounts"; fi';

/**
 * The EBS data file systems: ext2-4, xfs or btrfs on an EBS device (an NVMe namespace whose model is
 * "Amazon Elastic Block Store", never the instance store; or a Xen xvd/sd device), root excluded
 * unless `freezeRoot`. Explicit mount points replace the discovery.
 */
function discoverMounts(mountPoints: string[] | undefined, freezeRoot: boolean): string[] {
  if (mountPoints) return [`MOUNTS=(${mountPoints.map(q).join(' ')})`];
  return [
    'is_ebs() {',
    '  local dev=${1#/dev/} parent',
    '  case "$dev" in',
    '    nvme*) parent=$(lsblk -no PKNAME "/dev/$dev" 2>/dev/null | head -1); parent=${parent:-$dev}',
    '           grep -q "Elastic Block Store" "/sys/class/block/$parent/device/model" 2>/dev/null ;;',
    '    xvd*|sd*) return 0 ;;',
    '    *) return 1 ;;',
    '  esac',
    '}',
    'MOUNTS=()',
    'while read -r target source fstype; do',
    '  case "$fstype" in ext2|ext3|ext4|xfs|btrfs) ;; *) continue ;; esac',
    `  if [ "$target" = / ] && [ ${freezeRoot ? 1 : 0} -ne 1 ]; then continue; fi`,
    '  is_ebs "$source" && MOUNTS+=("$target")',
    'done < <(findmnt -rn -o TARGET,SOURCE,FSTYPE | sort -u -k1,1)',
  ];
}

function fsfreezePre(tag: string, spec: Extract<QuiesceSpec, { kind: 'fsfreeze' }>, max: number): string {
  return [
    ...head(tag, 'pre step: sync + fsfreeze'),
    ...DISARM,
    ...discoverMounts(spec.mountPoints, spec.freezeRoot === true),
    'if [ ${#MOUNTS[@]} -eq 0 ]; then',
    `  echo "no EBS data file system to freeze on this instance (the root file system is frozen only with freezeRoot: true)" >&2`,
    '  exit 3',
    'fi',
    'printf "%s\\n" "${MOUNTS[@]}" > "$STATE/mounts"',
    'rm -f "$STATE/thawed-at" "$STATE/watchdog-fired-at"',
    `echo "amiflow-pre-started-at=$(ms)"`,
    ...armWatchdog(max, UNFREEZE_LISTED),
    'sync',
    'FROZEN=()',
    'for m in "${MOUNTS[@]}"; do',
    '  if fsfreeze -f "$m"; then FROZEN+=("$m"); else',
    '    echo "amiflow-freeze-failed=$m" >&2',
    '    for f in ${FROZEN[@]+"${FROZEN[@]}"}; do fsfreeze -u "$f" >/dev/null 2>&1 || true; done',
    '    disarm; exit 4',
    '  fi',
    'done',
    'date +%s%3N > "$STATE/frozen-at"',
    'echo "amiflow-frozen=$(IFS=,; echo "${FROZEN[*]}")"',
    'echo "amiflow-frozen-at=$(cat "$STATE/frozen-at")"',
  ].join('\n');
}

const THAW_REPORT = [
  'if [ -f "$STATE/watchdog-fired-at" ]; then echo "amiflow-watchdog-fired-at=$(cat "$STATE/watchdog-fired-at")"; fi',
];

function fsfreezePost(tag: string): string {
  return [
    ...head(tag, 'post step: thaw'),
    ...DISARM,
    ...THAW_REPORT,
    UNFREEZE_LISTED,
    'date +%s%3N > "$STATE/thawed-at"',
    'disarm',
    'echo "amiflow-thawed-at=$(cat "$STATE/thawed-at")"',
  ].join('\n');
}

/** The user's scripts, carried base64 so no quoting of theirs can break ours. */
function scriptPre(tag: string, spec: Extract<QuiesceSpec, { kind: 'script' }>, max: number): string {
  return [
    ...head(tag, 'pre step: user script'),
    ...DISARM,
    `echo ${q(b64(spec.pre))} | base64 -d > "$STATE/pre.sh"`,
    `echo ${q(b64(spec.post))} | base64 -d > "$STATE/post.sh"`,
    'rm -f "$STATE/thawed-at" "$STATE/watchdog-fired-at"',
    `echo "amiflow-pre-started-at=$(ms)"`,
    ...armWatchdog(max, '/bin/bash "$STATE/post.sh" >/dev/null 2>&1'),
    '/bin/bash "$STATE/pre.sh"',
    'rc=$?',
    'if [ $rc -ne 0 ]; then',
    '  echo "amiflow-pre-script-failed=$rc" >&2',
    '  /bin/bash "$STATE/post.sh" || true',
    '  disarm; exit $rc',
    'fi',
    'date +%s%3N > "$STATE/frozen-at"',
    'echo "amiflow-frozen-at=$(cat "$STATE/frozen-at")"',
  ].join('\n');
}

function scriptPost(tag: string, spec: Extract<QuiesceSpec, { kind: 'script' }>): string {
  return [
    ...head(tag, 'post step: user script'),
    ...DISARM,
    ...THAW_REPORT,
    // Written again: the post step must work even if the pre step's state is gone.
    `echo ${q(b64(spec.post))} | base64 -d > "$STATE/post.sh"`,
    '/bin/bash "$STATE/post.sh"',
    'rc=$?',
    'date +%s%3N > "$STATE/thawed-at"',
    'disarm',
    'echo "amiflow-thawed-at=$(cat "$STATE/thawed-at")"',
    'exit $rc',
  ].join('\n');
}

/** An SSM Run Command: the document and its parameters. */
export interface SsmCommand {
  documentName: string;
  parameters: Record<string, string[]>;
}

/** A command run by the shell document (the `fsfreeze` and `script` kinds). */
function shellCommand(command: string): SsmCommand {
  return { documentName: SHELL_DOCUMENT, parameters: { commands: [command] } };
}

/** The document and parameters of the pre step for this spec. */
export function preCommand(spec: QuiesceSpec, runKey: string, max: number): SsmCommand {
  const tag = runTag(runKey);
  switch (spec.kind) {
    case 'fsfreeze':
      return shellCommand(fsfreezePre(tag, spec, max));
    case 'script':
      return shellCommand(scriptPre(tag, spec, max));
    case 'document':
      return {
        documentName: spec.preDocument,
        parameters: { ...spec.preParameters, [spec.maxFreezeParameter]: [String(max)] },
      };
  }
}

/** The document and parameters of the post step (thaw) for this spec. */
export function postCommand(spec: QuiesceSpec, runKey: string): SsmCommand {
  const tag = runTag(runKey);
  switch (spec.kind) {
    case 'fsfreeze':
      return shellCommand(fsfreezePost(tag));
    case 'script':
      return shellCommand(scriptPost(tag, spec));
    case 'document':
      return { documentName: spec.postDocument, parameters: { ...spec.postParameters } };
  }
}

export function freezeScriptActivities(deps: ActivityDeps) {
  const run = runCommandActivities(deps);
  return {
    /** Sends the pre step (watchdog, then quiesce) once per run; wait for it with `waitForCommand`. */
    async sendQuiesceCommand(input: QuiesceCommandInput): Promise<SentCommand> {
      return run.sendCommand({
        target: input.target,
        instanceId: input.instanceId,
        ...preCommand(input.quiesce, input.runKey, input.maxFreezeSeconds),
        timeoutSeconds: input.timeoutSeconds,
        idempotencyKey: `${input.runKey}/quiesce`,
      });
    },

    /**
     * Sends the post step (thaw, disarm the watchdog) once per run and `attempt` (the compensation
     * may need a second thaw after a first that failed); safe on an instance that is not frozen.
     */
    async sendThawCommand(input: QuiesceCommandInput & { attempt?: number }): Promise<SentCommand> {
      return run.sendCommand({
        target: input.target,
        instanceId: input.instanceId,
        ...postCommand(input.quiesce, input.runKey),
        timeoutSeconds: input.timeoutSeconds,
        idempotencyKey: `${input.runKey}/thaw${input.attempt ? `/${input.attempt}` : ''}`,
      });
    },
  };
}
