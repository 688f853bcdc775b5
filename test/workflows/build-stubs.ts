/**
 * The buildImage fakes, for its own tests and for goldenImage building from a recipe: every build
 * activity answering as AWS and SSM would for one builder and one test instance, over the
 * activities of whichever workflow tests use them (the imageFromInstance child's included).
 */
import type { Activities } from '../../activities';
import type { CommandOutcome } from '../../activities/run-command';

export const PARENT = 'ami-0aaaaaaaaaaaaaaa1';
export const BUILDER = 'i-0bbbbbbbbbbbbbbb1';
export const TESTER = 'i-0ccccccccccccccc1';
/** The recipe content hash the stubs answer with (its first 12 characters end the image name). */
export const CONTENT_HASH = 'ab'.repeat(32);

/** How an SSM command on the builder ended: success, or `status` with `exitCode` and `stdoutTail`. */
export function commandOutcome(
  commandId: string,
  status: CommandOutcome['status'] = 'Success',
  exitCode = 0,
  stdoutTail = status === 'Success' ? 'ok' : 'building...\nnginx: [emerg] unknown directive',
): CommandOutcome {
  return { commandId, instanceId: BUILDER, status, exitCode, stdoutTail, stderrTail: '' };
}

/**
 * `base` with every build activity succeeding: the parent resolved, nothing unchanged under
 * `contentHash`, the builder and tester launched and online, each step's command a success.
 */
export function buildStubs(base: Activities, contentHash = CONTENT_HASH): Activities {
  return {
    ...base,
    resolveParentImage: () =>
      Promise.resolve({ imageId: PARENT, source: 'imageId', platform: 'linux', rootDeviceName: '/dev/xvda' }),
    findUnchangedImage: () => Promise.resolve({ contentHash }),
    launchBuildInstance: (i) =>
      Promise.resolve({
        instanceId: i.role === 'builder' ? BUILDER : TESTER,
        instanceType: 't3.small',
        created: true,
        skippedTypes: [],
      }),
    waitForAgentOnline: () => Promise.resolve({ pingStatus: 'Online', platform: 'Linux' }),
    sendBuildStep: (i) =>
      Promise.resolve({ commandId: `cmd-${i.idempotencyKey.split('/').slice(-2).join('-')}`, reused: false }),
    waitForCommand: (i) => Promise.resolve(commandOutcome(i.commandId)),
    cancelCommand: () => Promise.resolve({ cancelled: true }),
    terminateBuildInstance: (i) => Promise.resolve({ instanceId: i.instanceId ?? BUILDER, terminated: true }),
    tagBuildResource: (i) => Promise.resolve({ resourceIds: [i.resourceId] }),
  };
}
